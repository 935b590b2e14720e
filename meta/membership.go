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

// applyHeartbeat registers the node on its first call (state up, or full)
// and afterwards records its address, domain, capacity, usage and the time
// it was seen (the command's time). A down node that heartbeats is up
// again; a full one is full until it reports otherwise; an out node (timed
// out or marked by an operator) and a draining one stay so until Admin
// "in". Changes of state, address, domain, capacity or PID bump the map
// epoch and are synced; the liveness alone (seen, usage) is written
// without a sync in local mode and does not bump the epoch.
func (s *Store) applyHeartbeat(t *txn, c *Command) (Result, error) {
	r, now := *c.Report, t.now
	cur, known := s.nodes[r.ID]
	st := &nodeState{rec: nodeRecord{Node: cluster.Node{ID: r.ID}}}
	if known {
		cp := *cur
		st = &cp
	}
	p := st.rec.Node
	st.seen, st.full = now, r.Full || r.Damaged // a damaged store takes nothing new
	n := &st.rec.Node
	n.Addr, n.Domain, n.Capacity, n.PID = r.Addr, r.Domain, r.Capacity, r.PID
	n.Used, n.Free, n.Damaged = r.Used, r.Free, r.Damaged
	n.State = heartbeatState(st)
	noteSince(n, p.State, now)
	same := known && p.Addr == n.Addr && p.Domain == n.Domain && p.Capacity == n.Capacity && p.PID == n.PID && p.State == n.State && p.Damaged == n.Damaged
	t.putNode(st, !same)
	return Result{}, nil
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

// applyAdmin applies an operator's action: out (the node is out until
// "in"; its shards are re-created elsewhere), drain (readable, not placed
// on, until repair has copied its shards away and marks it out), in (clears
// either, and a timed-out node's out: the node is up, or full, if it
// heartbeated within DownAfter, else down). The epoch bumps when anything
// changed. ErrNoSuchNode; ErrInvalidArgument for an unknown action.
func (s *Store) applyAdmin(t *txn, c *Command) (Result, error) {
	id, a, now := c.Node, c.Action, t.now
	cur, ok := s.nodes[id]
	if !ok {
		return Result{}, fmt.Errorf("admin %s %s: %w", a, id, ErrNoSuchNode)
	}
	if a == ActionRemove {
		return Result{}, s.removeNode(t, cur)
	}
	st := *cur
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
		return Result{}, fmt.Errorf("admin %q %s: %w: unknown action", a, id, ErrInvalidArgument)
	}
	noteSince(&st.rec.Node, cur.rec.Node.State, now)
	if cur.rec == st.rec {
		return Result{}, nil
	}
	t.putNode(&st, true)
	return Result{}, nil
}

// removeNode forgets the node of cur (ActionRemove): its record and its
// liveness go in t's batch, and the epoch bumps. Its queued garbage stays:
// the garbage collector forgets the entries of nodes the map no longer
// knows in its bounded pages (one apply deleting a dead node's backlog —
// all its shards — could be gigabytes).
// ErrNodeInUse unless it is out, silent for DownAfter and holds no shard.
func (s *Store) removeNode(t *txn, cur *nodeState) error {
	id := cur.rec.Node.ID
	switch {
	case cur.rec.Node.State != cluster.Out:
		return fmt.Errorf("remove %s: %w: it is %s (drain it, or mark it out, first)", id, ErrNodeInUse, cur.rec.Node.State)
	case t.now.Sub(cur.seen) < s.cfg.DownAfter:
		return fmt.Errorf("remove %s: %w: it still sends heartbeats (stop its process first)", id, ErrNodeInUse)
	}
	held := false
	if err := s.scan(context.Background(), shardIndexPrefix(id), prefixEnd(shardIndexPrefix(id)), func(_, _ []byte) (bool, error) {
		held = true
		return false, nil
	}); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if held {
		return fmt.Errorf("remove %s: %w: meta still places shards on it (wait for repair)", id, ErrNodeInUse)
	}
	_ = t.b.Delete(nodeKey(id), nil)
	_ = t.b.Delete(livenessKey(id), nil)
	t.epoch, t.sync = true, true
	t.removed = append(t.removed, id)
	return nil
}

// applySetWeight sets (or, with 0, clears) the operator's placement weight
// of a node. A change bumps the map epoch. ErrNoSuchNode.
func (s *Store) applySetWeight(t *txn, c *Command) (Result, error) {
	cur, ok := s.nodes[c.Node]
	if !ok {
		return Result{}, fmt.Errorf("weight of %s: %w", c.Node, ErrNoSuchNode)
	}
	if cur.rec.Node.Weighted == c.Weight {
		return Result{}, nil
	}
	st := *cur
	st.rec.Node.Weighted = c.Weight
	t.putNode(&st, true)
	return Result{}, nil
}

// applyTick applies the time-based transitions at the command's time: up
// or full → down after DownAfter without a heartbeat, down → out after
// OutAfter down. Draining and out nodes are left alone. Any change is
// persisted with one epoch bump. Run calls Tick every TickEvery; tests call
// it with a fake clock.
func (s *Store) applyTick(t *txn, _ *Command) (Result, error) {
	now := t.now
	for _, cur := range s.nodes {
		st := *cur
		n := &st.rec.Node
		if (n.State == cluster.Up || n.State == cluster.Full) && now.Sub(st.seen) >= s.cfg.DownAfter {
			n.State = cluster.Down
			st.downSince = st.seen.Add(s.cfg.DownAfter)
		}
		if n.State == cluster.Down && now.Sub(st.downSince) >= s.cfg.OutAfter {
			n.State = cluster.Out
		}
		noteSince(n, cur.rec.Node.State, now)
		if n.State != cur.rec.Node.State {
			t.putNode(&st, true)
		}
	}
	return Result{}, nil
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
