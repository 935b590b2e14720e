package replicated

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
)

// leaderWatch remembers the last leader change this replica observed.
type leaderWatch struct {
	mu     sync.Mutex
	at     time.Time
	leader raft.ServerID
}

// observe follows raft's leader observations until done closes.
func (w *leaderWatch) observe(ch <-chan raft.Observation, done <-chan struct{}) {
	for {
		select {
		case o := <-ch:
			lo, ok := o.Data.(raft.LeaderObservation)
			if !ok {
				continue
			}
			w.mu.Lock()
			if lo.LeaderID != w.leader {
				w.leader, w.at = lo.LeaderID, time.Now()
			}
			w.mu.Unlock()
		case <-done:
			return
		}
	}
}

func (w *leaderWatch) last() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at
}

// LeaderCh says true when this replica becomes leader and false when it
// stops (raft's LeaderCh: it keeps only the latest value). It has one
// reader: the process's leader.Runner. With Barrier, a *Node is a
// leader.Leadership.
func (n *Node) LeaderCh() <-chan bool { return n.raft.LeaderCh() }

// ReplicaStatus is this replica's own view of the group (never forwarded to
// the leader): its state, indexes, leader and configuration.
func (n *Node) ReplicaStatus(ctx context.Context) (meta.ReplicaStatus, error) {
	st := meta.ReplicaStatus{
		ID: n.cfg.ID, Zone: n.cfg.Self.Zone, Addr: n.cfg.Self.Addr,
		State:        stateName(n.raft.State()),
		Term:         n.raft.CurrentTerm(),
		AppliedIndex: n.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		LastIndex:    n.raft.LastIndex(),
		// raft notes its own first leader too; zero before any.
		LastLeaderChange: n.watch.last(),
	}
	if st.Zone == "" {
		if r, ok, err := n.store.Replica(n.cfg.ID); err == nil && ok {
			st.Zone = r.Zone
		}
	}
	_, id := n.raft.LeaderWithID()
	st.LeaderID = string(id)
	if id != "" {
		st.LeaderAddr = n.LeaderAPI(string(id))
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err == nil {
		for _, s := range cf.Configuration().Servers {
			st.Servers = append(st.Servers, meta.ReplicaServer{ID: string(s.ID), Raft: string(s.Address), Voter: s.Suffrage == raft.Voter})
		}
	}
	return st, nil
}

func stateName(s raft.RaftState) string { return strings.ToLower(s.String()) }

// ReplicaHash hashes this replica's whole keyspace (never forwarded):
// replicas at the same applied index hash alike.
func (n *Node) ReplicaHash(ctx context.Context) (meta.ReplicaHash, error) {
	for range 3 { // an apply between the two reads: try again
		before := n.AppliedIndex()
		h, err := n.store.KeyspaceHash(ctx)
		if err != nil {
			return meta.ReplicaHash{}, err
		}
		if n.AppliedIndex() == before {
			return meta.ReplicaHash{AppliedIndex: before, Hash: hex.EncodeToString(h)}, nil
		}
	}
	return meta.ReplicaHash{}, fmt.Errorf("%w: keyspace hash: the store kept moving", meta.ErrUnavailable)
}

// LeaderAPI returns the API address of replica id from the group's
// records, or from the founders this replica was started with; "" when
// neither knows it.
func (n *Node) LeaderAPI(id string) string {
	if id == n.cfg.ID && n.cfg.Self.Addr != "" {
		return n.cfg.Self.Addr
	}
	if r, ok, err := n.store.Replica(id); err == nil && ok {
		return r.Addr
	}
	for _, r := range n.cfg.Founders {
		if r.ID == id {
			return r.Addr
		}
	}
	return ""
}

// AddMember adds replica r to the group, or changes its addresses: its
// record first, so the group can name its API as soon as it may lead, then
// the configuration change. A new replica starts empty (--join) and
// catches up from the leader's log or by snapshot; add it as a non-voter
// first (voter false) and promote it (voter true) once it has caught up,
// so the group's quorum never waits for a replica still copying.
func (n *Node) AddMember(ctx context.Context, r meta.Replica, voter bool) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := n.SetReplica(ctx, r); err != nil {
		return err
	}
	return n.configure(ctx, "add "+r.ID, func(timeout time.Duration) raft.IndexFuture {
		if voter {
			return n.raft.AddVoter(raft.ServerID(r.ID), raft.ServerAddress(r.Raft), 0, timeout)
		}
		return n.raft.AddNonvoter(raft.ServerID(r.ID), raft.ServerAddress(r.Raft), 0, timeout)
	})
}

// RemoveMember removes replica id from the group and forgets its record
// (removing the leader itself makes it step down once the change commits;
// the next leader forgets its record).
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if !n.members()[id] {
		return fmt.Errorf("%w: no replica %q in the group", meta.ErrInvalidArgument, id)
	}
	if err := n.configure(ctx, "remove "+id, func(timeout time.Duration) raft.IndexFuture {
		return n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	}); err != nil {
		return err
	}
	if id == n.cfg.ID {
		return nil // no longer in the group: the next leader's takeOffice forgets the record
	}
	return n.RemoveReplica(ctx, id)
}

// TransferLeadership hands leadership to replica id ("" the most
// up-to-date follower) and returns once it did or failed.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	// The new leader is elected by votes that ignore stickiness: reads
	// here confirm leadership each until the transfer is over.
	defer n.beginTransfer()()
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		var addr raft.ServerAddress
		if cf := n.raft.GetConfiguration(); cf.Error() == nil {
			for _, s := range cf.Configuration().Servers {
				if string(s.ID) == id {
					addr = s.Address
				}
			}
		}
		if addr == "" {
			return fmt.Errorf("%w: no replica %q in the group", meta.ErrInvalidArgument, id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := waitFuture(ctx, f); err != nil {
		return fmt.Errorf("%w: transfer leadership: %v", meta.ErrUnavailable, err)
	}
	return nil
}

// configure runs one membership change on the leader.
func (n *Node) configure(ctx context.Context, what string, change func(time.Duration) raft.IndexFuture) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	ctx, cancel := n.timeout(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	err := waitFuture(ctx, change(time.Until(deadline)))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return n.notLeader()
	}
	return fmt.Errorf("%w: %s: %v", meta.ErrUnavailable, what, err)
}

// waitFuture waits for f or ctx, whichever ends first.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Membership is the leader's share of cluster membership, a leader-only
// task: when it takes office it gives every node the restart grace (it
// heard no heartbeats while it did not lead), records its own addresses
// and those of founders the group has no record of, then ticks every
// tick until ctx ends. A tick that fails for want of a quorum is retried
// at the next; losing leadership ends the task quietly (the next term
// starts it again).
func (n *Node) Membership(tick time.Duration, logger *slog.Logger) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			err := n.takeOffice(ctx)
			if err == nil {
				break
			}
			if err = quiet(ctx, err); err != nil || ctx.Err() != nil || !n.IsLeader() {
				return err
			}
			logger.Warn("new leader's grace failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if err := n.Tick(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if err = quiet(ctx, err); err != nil {
					return err
				}
				if !n.IsLeader() {
					return nil // the next term starts the task again
				}
				// Still leader: a leadership transfer that failed, or a
				// quorum briefly out of reach.
				logger.Warn("membership tick failed; retrying at the next", "err", err)
			}
		}
	}
}

// takeOffice proposes the restart grace and the replica records a new
// leader owes: its own (when it knows its API address), those of founders
// the group has no record of, and none of replicas no longer in the group.
func (n *Node) takeOffice(ctx context.Context) error {
	if err := n.Grace(ctx); err != nil {
		return err
	}
	members := n.members()
	have, err := n.store.Replicas(ctx)
	if err != nil {
		return err
	}
	recorded := map[string]meta.Replica{}
	for _, r := range have {
		if !members[r.ID] {
			if err := n.RemoveReplica(ctx, r.ID); err != nil {
				return err
			}
			continue
		}
		recorded[r.ID] = r
	}
	var owed []meta.Replica
	if own := n.ownRecord(); own.Addr != "" && recorded[own.ID] != own {
		owed = append(owed, own)
	}
	for _, f := range n.cfg.Founders {
		if _, ok := recorded[f.ID]; !ok && f.ID != n.cfg.ID && members[f.ID] {
			owed = append(owed, f) // a founder's record, once made, is the group's
		}
	}
	for _, r := range owed {
		if err := n.SetReplica(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// ownRecord is this replica's record as it is now.
func (n *Node) ownRecord() meta.Replica {
	own := n.cfg.Self
	own.ID = n.cfg.ID
	own.Raft = string(n.cfg.Transport.LocalAddr())
	return own
}

// quiet turns the errors of lost leadership, of a quorum out of reach and
// of ctx ending into nil: the caller tries again or stops.
func quiet(ctx context.Context, err error) error {
	var nl *meta.NotLeaderError
	if ctx.Err() != nil || errors.As(err, &nl) || errors.Is(err, meta.ErrUnavailable) {
		return nil
	}
	return err
}

// members returns the ids in the group's configuration.
func (n *Node) members() map[string]bool {
	out := map[string]bool{}
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			out[string(s.ID)] = true
		}
	}
	return out
}
