package meta

import (
	"context"
	"fmt"
	"time"

	"github.com/shale-store/shale/cluster"
)

// nodeRecord is what n/<node> holds.
type nodeRecord struct {
	Node cluster.Node `json:"node"`
	// Admin is the operator's standing order: "" (none), "out" or "drain".
	// It overrides what heartbeats would decide until Admin "in".
	Admin AdminAction `json:"admin,omitempty"`
}

// nodeState is a node's record plus the liveness facts kept only in memory.
type nodeState struct {
	rec       nodeRecord
	seen      time.Time // last heartbeat (or when meta started)
	downSince time.Time // when it became down (or when meta started)
	full      bool      // what its last heartbeat said
}

// heartbeatState is the state a heartbeat puts a node in.
func heartbeatState(st *nodeState) cluster.State {
	switch {
	case st.rec.Admin == ActionOut:
		return cluster.Out
	case st.rec.Admin == ActionDrain:
		return cluster.Draining
	case st.rec.Node.State == cluster.Out:
		return cluster.Out // timed out: stays out until Admin "in"
	case st.full:
		return cluster.Full
	}
	return cluster.Up
}

// gone reports whether a node in state s is leaving the cluster: out or
// draining, its shards re-created elsewhere.
func gone(s cluster.State) bool { return s == cluster.Out || s == cluster.Draining }

// noteSince keeps n.Since after a change of state from prev: set to now
// when the node becomes out or draining (a move between the two keeps it),
// cleared when it becomes anything else.
func noteSince(n *cluster.Node, prev cluster.State, now time.Time) {
	switch {
	case !gone(n.State):
		n.Since = time.Time{}
	case !gone(prev):
		n.Since = now
	}
}

// saveNodes persists the records of the given nodes and a new epoch in one
// synced batch, then advances the epoch. Must hold s.mu.
func (s *Store) saveNodes(sts ...*nodeState) error {
	b := s.db.NewBatch()
	for _, st := range sts {
		_ = b.Set(nodeKey(st.rec.Node.ID), mustJSON(st.rec), nil)
	}
	_ = b.Set(keyEpoch, be64(s.epoch+1), nil)
	if err := s.commit(b); err != nil {
		return err
	}
	s.epoch++
	return nil
}

// Heartbeat registers the node on its first call (state up, or full) and
// afterwards records its address, domain, capacity, usage and the time it
// was seen. A down node that heartbeats is up again; a full one is full
// until it reports otherwise; an out node (timed out or marked by an
// operator) and a draining one stay so until Admin "in". Changes of state,
// address, domain, capacity or PID bump the map epoch and are synced;
// usage alone (Used, Free) is kept in memory and does not bump the epoch.
// ErrInvalidArgument for a malformed id.
func (s *Store) Heartbeat(ctx context.Context, r NodeReport) error {
	if err := cluster.ValidateNodeID(r.ID); err != nil {
		return fmt.Errorf("heartbeat: %w: %v", ErrInvalidArgument, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st, known := s.nodes[r.ID]
	if !known {
		st = &nodeState{rec: nodeRecord{Node: cluster.Node{ID: r.ID}}}
	}
	prev := *st
	st.seen, st.full = now, r.Full
	n := &st.rec.Node
	n.Addr, n.Domain, n.Capacity, n.PID = r.Addr, r.Domain, r.Capacity, r.PID
	n.Used, n.Free = r.Used, r.Free
	n.State = heartbeatState(st)
	noteSince(n, prev.rec.Node.State, now)
	p := prev.rec.Node
	if known && p.Addr == n.Addr && p.Domain == n.Domain && p.Capacity == n.Capacity && p.PID == n.PID && p.State == n.State {
		return nil
	}
	if !known {
		s.nodes[r.ID] = st
	}
	if err := s.saveNodes(st); err != nil {
		if known {
			*st = prev
		} else {
			delete(s.nodes, r.ID)
		}
		return fmt.Errorf("heartbeat of %s: %w", r.ID, err)
	}
	return nil
}

// Map returns the current cluster map (every registered node, whatever its
// state) at the current epoch.
func (s *Store) Map(ctx context.Context) (*cluster.Map, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mapLocked()
}

func (s *Store) mapLocked() (*cluster.Map, error) {
	ns := make([]cluster.Node, 0, len(s.nodes))
	for _, st := range s.nodes {
		ns = append(ns, st.rec.Node)
	}
	m, err := cluster.NewMap(s.epoch, ns)
	if err != nil {
		return nil, fmt.Errorf("cluster map: %w", err)
	}
	return m, nil
}

// Admin applies an operator's action: out (the node is out until "in"; its
// shards are re-created elsewhere), drain (readable, not placed on, until
// repair has copied its shards away and marks it out), in (clears either,
// and a timed-out node's out: the node is up, or full, if it heartbeated
// within DownAfter, else down). The epoch bumps when anything changed.
// ErrNoSuchNode; ErrInvalidArgument for an unknown action.
func (s *Store) Admin(ctx context.Context, id cluster.NodeID, a AdminAction) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.nodes[id]
	if !ok {
		return fmt.Errorf("admin %s %s: %w", a, id, ErrNoSuchNode)
	}
	prev := *st
	now := s.now()
	switch a {
	case ActionOut:
		st.rec.Admin, st.rec.Node.State = ActionOut, cluster.Out
	case ActionDrain:
		st.rec.Admin, st.rec.Node.State = ActionDrain, cluster.Draining
	case ActionIn:
		st.rec.Admin = ""
		switch {
		case now.Sub(st.seen) >= s.cfg.DownAfter:
			if st.rec.Node.State != cluster.Down {
				st.downSince = now
			}
			st.rec.Node.State = cluster.Down
		case st.full:
			st.rec.Node.State = cluster.Full
		default:
			st.rec.Node.State = cluster.Up
		}
	default:
		return fmt.Errorf("admin %q %s: %w: unknown action", a, id, ErrInvalidArgument)
	}
	noteSince(&st.rec.Node, prev.rec.Node.State, now)
	if prev.rec == st.rec {
		return nil
	}
	if err := s.saveNodes(st); err != nil {
		*st = prev
		return fmt.Errorf("admin %s %s: %w", a, id, err)
	}
	return nil
}

// Tick applies the time-based transitions: up or full → down after
// DownAfter without a heartbeat, down → out after OutAfter down. Draining
// and out nodes are left alone. Any change is persisted with one epoch bump.
// Run calls it every TickEvery; tests call it with a fake clock.
func (s *Store) Tick(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var changed []*nodeState
	var prev []nodeState
	for _, st := range s.nodes {
		before := *st
		n := &st.rec.Node
		if (n.State == cluster.Up || n.State == cluster.Full) && now.Sub(st.seen) >= s.cfg.DownAfter {
			n.State = cluster.Down
			st.downSince = st.seen.Add(s.cfg.DownAfter)
		}
		if n.State == cluster.Down && now.Sub(st.downSince) >= s.cfg.OutAfter {
			n.State = cluster.Out
		}
		noteSince(n, before.rec.Node.State, now)
		if n.State != before.rec.Node.State {
			changed = append(changed, st)
			prev = append(prev, before)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	if err := s.saveNodes(changed...); err != nil {
		for i, st := range changed {
			*st = prev[i]
		}
		return fmt.Errorf("tick: %w", err)
	}
	return nil
}

// Run calls Tick every TickEvery until ctx is cancelled (then it returns
// nil) or a Tick fails (then it returns that error).
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Tick(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}
