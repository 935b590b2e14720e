package remote

import (
	"context"

	"github.com/shale-store/shale/meta"
)

// Replicas is what a raft replica of meta (meta/replicated.Node) serves
// beside Backend: its own status and keyspace hash, answered by the
// replica asked (never redirected), and membership changes, which only the
// leader makes (a follower answers NotLeader and the client follows).
type Replicas interface {
	ReplicaStatus(ctx context.Context) (meta.ReplicaStatus, error)
	ReplicaHash(ctx context.Context) (meta.ReplicaHash, error)
	AddMember(ctx context.Context, r meta.Replica, voter bool) error
	RemoveMember(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
}

type idReq struct {
	ID string `json:"id"`
}

type addReq struct {
	Replica meta.Replica `json:"replica"`
	Voter   bool         `json:"voter"`
}

// replicaRoutes adds the Replicas methods to r.
func replicaRoutes(rb Replicas, reg func(name string, h func(ctx context.Context, body []byte) (any, error))) {
	reg("ReplicaStatus", call(func(ctx context.Context, _ empty) (any, error) { return rb.ReplicaStatus(ctx) }))
	reg("ReplicaHash", call(func(ctx context.Context, _ empty) (any, error) { return rb.ReplicaHash(ctx) }))
	reg("AddReplica", call(func(ctx context.Context, q addReq) (any, error) {
		return empty{}, rb.AddMember(ctx, q.Replica, q.Voter)
	}))
	reg("RemoveReplica", call(func(ctx context.Context, q idReq) (any, error) { return empty{}, rb.RemoveMember(ctx, q.ID) }))
	reg("TransferLeader", call(func(ctx context.Context, q idReq) (any, error) {
		return empty{}, rb.TransferLeadership(ctx, q.ID)
	}))
}

// ReplicaStatus asks the replica at the client's address (build the client
// with that one address) for its own view of the group.
func (c *Client) ReplicaStatus(ctx context.Context) (meta.ReplicaStatus, error) {
	var out meta.ReplicaStatus
	return out, c.call(ctx, "ReplicaStatus", empty{}, &out)
}

// ReplicaHash asks the replica at the client's address for the hash of its
// keyspace.
func (c *Client) ReplicaHash(ctx context.Context) (meta.ReplicaHash, error) {
	var out meta.ReplicaHash
	return out, c.call(ctx, "ReplicaHash", empty{}, &out)
}

// AddMember adds replica r to the group (through the leader), as a voter
// or a non-voter that copies the log without counting for the quorum.
func (c *Client) AddMember(ctx context.Context, r meta.Replica, voter bool) error {
	return c.call(ctx, "AddReplica", addReq{Replica: r, Voter: voter}, nil)
}

// RemoveMember removes replica id from the group (through the leader).
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.call(ctx, "RemoveReplica", idReq{ID: id}, nil)
}

// TransferLeadership hands leadership to replica id ("" any up-to-date
// follower).
func (c *Client) TransferLeadership(ctx context.Context, id string) error {
	return c.call(ctx, "TransferLeader", idReq{ID: id}, nil)
}
