package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shale-store/shale/cluster"
)

// Replica is one replica of the metadata service as the group records it:
// where clients reach its API and the other replicas its raft transport,
// and its failure domain. The leader proposes its own record when it takes
// office and an operator's membership change proposes the others', so every
// replica can tell a client where the leader's API is.
type Replica struct {
	// ID is its raft server id (the rules of a node id).
	ID string `json:"id"`
	// Addr is its HTTP API, host:port.
	Addr string `json:"addr"`
	// Raft is its raft transport's address, host:port.
	Raft string `json:"raft"`
	// Zone is its failure domain; "" unknown.
	Zone string `json:"zone,omitempty"`
}

// Validate checks the record's shape. ErrInvalidArgument.
func (r Replica) Validate() error {
	if err := cluster.ValidateNodeID(cluster.NodeID(r.ID)); err != nil {
		return fmt.Errorf("%w: replica id: %v", ErrInvalidArgument, err)
	}
	if r.Addr == "" || r.Raft == "" || len(r.Addr) > 255 || len(r.Raft) > 255 || len(r.Zone) > 255 {
		return fmt.Errorf("%w: replica %s needs an API and a raft address", ErrInvalidArgument, r.ID)
	}
	return nil
}

// ReplicaStatus is one replica's own view of the group, for operators:
// what `shale admin status` shows per replica.
type ReplicaStatus struct {
	ID    string `json:"id"`
	Zone  string `json:"zone,omitempty"`
	Addr  string `json:"addr,omitempty"`
	State string `json:"state"` // leader, follower, candidate, shutdown
	// LeaderID and LeaderAddr name the leader this replica knows ("" none);
	// LeaderAddr is its API address when the group has its record.
	LeaderID   string `json:"leader_id,omitempty"`
	LeaderAddr string `json:"leader_addr,omitempty"`
	Term       uint64 `json:"term"`
	// AppliedIndex is the log index of the last command its store holds;
	// CommitIndex the highest it knows committed; LastIndex its log's end.
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	LastIndex    uint64 `json:"last_index"`
	// LastLeaderChange is when this replica last saw the leader change
	// (zero: not since it started).
	LastLeaderChange time.Time `json:"last_leader_change,omitzero"`
	// Servers is the group's configuration as this replica knows it.
	Servers []ReplicaServer `json:"servers,omitempty"`
}

// ReplicaServer is one member of the raft configuration.
type ReplicaServer struct {
	ID    string `json:"id"`
	Raft  string `json:"raft"`
	Voter bool   `json:"voter"`
}

// ReplicaHash is a hash of one replica's whole keyspace at an applied
// index: replicas at the same index must hash alike.
type ReplicaHash struct {
	AppliedIndex uint64 `json:"applied_index"`
	Hash         string `json:"hash"`
}

// SetReplica records (or replaces) a replica's addresses.
func (m Mutations) SetReplica(ctx context.Context, r Replica) error {
	_, err := m.run(ctx, Command{Op: OpSetReplica, Replica: &r})
	return err
}

// RemoveReplica forgets a replica's record; a missing one is no error.
func (m Mutations) RemoveReplica(ctx context.Context, id string) error {
	_, err := m.run(ctx, Command{Op: OpRemoveReplica, Replica: &Replica{ID: id}})
	return err
}

func (s *Store) applySetReplica(t *txn, c *Command) (Result, error) {
	_ = t.b.Set(replicaKey(c.Replica.ID), mustJSON(*c.Replica), nil)
	return Result{}, nil
}

func (s *Store) applyRemoveReplica(t *txn, c *Command) (Result, error) {
	_ = t.b.Delete(replicaKey(c.Replica.ID), nil)
	return Result{}, nil
}

// Replicas lists the replica records this store holds, by id. It reads
// this store as it is (on a follower, possibly behind the leader).
func (s *Store) Replicas(ctx context.Context) ([]Replica, error) {
	defer s.read()()
	var out []Replica
	err := s.scan(ctx, pfxReplica, prefixEnd(pfxReplica), func(_, v []byte) (bool, error) {
		var r Replica
		if err := json.Unmarshal(v, &r); err != nil {
			return false, fmt.Errorf("%w: replica record: %v", ErrCorrupt, err)
		}
		out = append(out, r)
		return true, nil
	})
	return out, err
}

// Replica returns the record of replica id, if the store holds one.
func (s *Store) Replica(id string) (Replica, bool, error) {
	defer s.read()()
	v, ok, err := s.get(replicaKey(id))
	if err != nil || !ok {
		return Replica{}, false, err
	}
	var r Replica
	if err := json.Unmarshal(v, &r); err != nil {
		return Replica{}, false, fmt.Errorf("%w: replica record %s: %v", ErrCorrupt, id, err)
	}
	return r, true, nil
}

func replicaKey(id string) []byte { return cat(pfxReplica, []byte(id)) }
