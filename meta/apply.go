package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/shale-store/shale/cluster"
)

// txn is one command's apply in progress: the batch it stages and the
// in-memory changes to install once the batch is committed.
type txn struct {
	b   *pebble.Batch
	now time.Time
	// gen, when not 0, is the new last generation handed out.
	gen uint64
	// nodes are new states (fresh pointers) to install in s.nodes;
	// removed are nodes to forget.
	nodes   []*nodeState
	removed []cluster.NodeID
	// epoch says the map epoch moves on by one.
	epoch bool
	// repair, when set, is the repair loop's new report.
	repair *RepairStats
	// sync: in local mode, commit with pebble.Sync (every change a caller
	// relies on). Replicated applies never sync: the raft log is the
	// durable record, and the WAL is synced before each snapshot.
	sync bool
}

// putNode stages st's liveness and, when record is set, its record and an
// epoch bump; st is installed after the commit.
func (t *txn) putNode(st *nodeState, record bool) {
	if record {
		_ = t.b.Set(nodeKey(st.rec.Node.ID), mustJSON(st.rec), nil)
		t.epoch, t.sync = true, true
	}
	_ = t.b.Set(livenessKey(st.rec.Node.ID), mustJSON(liveness{
		Seen: st.seen, DownSince: st.downSince, Full: st.full, Used: st.rec.Node.Used, Free: st.rec.Node.Free,
	}), nil)
	t.nodes = append(t.nodes, st)
}

// liveness is what l/<node> holds: the facts about a node that heartbeats
// and ticks change without changing its record. Persisted so that every
// replica (and a restarted one) decides timeouts alike.
type liveness struct {
	Seen      time.Time `json:"seen"`
	DownSince time.Time `json:"down_since"`
	Full      bool      `json:"full,omitempty"`
	Used      int64     `json:"used,omitempty"`
	Free      int64     `json:"free,omitempty"`
}

// requestRecord is what r/<request id> holds.
type requestRecord struct {
	Time   time.Time `json:"time"`
	Result Result    `json:"result"`
	// Op is the operation that used the id (empty in records from before
	// it was kept): a different operation under the same id is refused
	// rather than answered with another command's result.
	Op Op `json:"op,omitempty"`
}

// AppliedIndex returns the raft index of the last command applied (0 for a
// store only ever used locally).
func (s *Store) AppliedIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// Apply applies c as the raft log entry at index (> 0) on this replica:
// it runs the command's batch code with the command's stamps, records the
// result under c.Request for exactly-once, and writes index as the applied
// index, all in one pebble batch. A command at or below the applied index
// was applied before and is skipped (its recorded result, if any, is
// returned). A rejection is a Result (every replica rejects alike); an
// error means the store failed and the replica must not go on (it has not
// applied index). Index 0 applies c locally, unlogged, as the single-process
// Store does: nothing is skipped and the applied index stays.
func (s *Store) Apply(index uint64, c Command) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(index, &c)
}

// proposeLocal is the single-process Store's proposer: stamp with the
// store's clock and apply at once.
func (s *Store) proposeLocal(ctx context.Context, c Command) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	Stamp(ctx, &c, s.now())
	return s.applyLocked(0, &c)
}

func (s *Store) applyLocked(index uint64, c *Command) (Result, error) {
	if index != 0 && index <= s.applied {
		if c.Request != "" {
			if rec, ok, err := s.requestResult(c.Request); err == nil && ok {
				return rec.Result, nil
			}
		}
		return Result{}, nil
	}
	t := &txn{b: s.db.NewBatch(), now: c.Time.UTC().Round(0)}
	var res Result
	var err error
	dup := false
	if c.Request != "" {
		rec, ok, gerr := s.requestResult(c.Request)
		if gerr != nil {
			t.b.Close()
			return Result{}, fmt.Errorf("%s: request %s: %w", c.Op, c.Request, gerr)
		}
		if ok {
			res, dup = rec.Result, true
			if rec.Op != "" && rec.Op != c.Op {
				res, _ = rejection(fmt.Errorf("%w: request id %s was used for %s, not %s", ErrInvalidArgument, c.Request, rec.Op, c.Op))
			}
		}
	}
	if !dup {
		res, err = s.dispatch(t, c)
	}
	if err != nil {
		t.b.Close()
		r, ok := rejection(err)
		if !ok {
			return Result{}, err
		}
		res, t = r, &txn{b: s.db.NewBatch(), now: t.now}
	}
	recorded := c.Request != "" && !dup
	if recorded {
		_ = t.b.Set(requestKey(c.Request), mustJSON(requestRecord{Time: t.now, Result: res, Op: c.Op}), nil)
		_ = t.b.Set(requestAgeKey(t.now, c.Request), nil, nil)
		t.sync = true
	}
	if index != 0 || recorded {
		if err := s.pruneRequests(t, index); err != nil {
			t.b.Close()
			return Result{}, fmt.Errorf("%s: %w", c.Op, err)
		}
	}
	if t.epoch {
		_ = t.b.Set(keyEpoch, be64(s.epoch+1), nil)
	}
	if index != 0 {
		_ = t.b.Set(keyApplied, be64(index), nil)
	}
	if t.b.Empty() {
		t.b.Close()
		return res, nil
	}
	opt := pebble.NoSync
	if index == 0 && t.sync {
		opt = pebble.Sync
	}
	err = t.b.Commit(opt)
	t.b.Close()
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", c.Op, err)
	}
	if t.gen != 0 {
		s.gen = t.gen
	}
	if t.epoch {
		s.epoch++
	}
	for _, st := range t.nodes {
		s.nodes[st.rec.Node.ID] = st
	}
	for _, id := range t.removed {
		delete(s.nodes, id)
	}
	if t.repair != nil {
		s.repair = t.repair
	}
	if index != 0 {
		s.applied = index
	}
	return res, nil
}

// dispatch runs c's batch code. Must hold s.mu.
func (s *Store) dispatch(t *txn, c *Command) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	switch c.Op {
	case OpCreateBucket:
		return s.applyCreateBucket(t, c)
	case OpDeleteBucket:
		return s.applyDeleteBucket(t, c)
	case OpCommit:
		return s.applyCommit(t, c)
	case OpDelete:
		return s.applyDelete(t, c)
	case OpUpdateShards:
		return s.applyUpdateShards(t, c)
	case OpCreateUpload:
		return s.applyCreateUpload(t, c)
	case OpPutPart:
		return s.applyPutPart(t, c)
	case OpCompleteUpload:
		return s.applyCompleteUpload(t, c)
	case OpAbortUpload:
		return s.applyAbortUpload(t, c)
	case OpHeartbeat:
		return s.applyHeartbeat(t, c)
	case OpAdmin:
		return s.applyAdmin(t, c)
	case OpSetWeight:
		return s.applySetWeight(t, c)
	case OpTick:
		return s.applyTick(t, c)
	case OpGrace:
		return s.applyGrace(t, c)
	case OpReportBad:
		return s.applyReportBad(t, c)
	case OpAddGarbage:
		return s.applyAddGarbage(t, c)
	case OpRemoveGarbage:
		return s.applyRemoveGarbage(t, c)
	case OpResolveDegraded:
		return s.applyResolveDegraded(t, c)
	case OpSetReplica:
		return s.applySetReplica(t, c)
	case OpRemoveReplica:
		return s.applyRemoveReplica(t, c)
	case OpSetRepairStats:
		rs := *c.Repair
		_ = t.b.Set(keyRepairStats, mustJSON(rs), nil)
		t.repair = &rs
		return Result{}, nil
	}
	return Result{}, fmt.Errorf("%w: unknown command %q", ErrInvalidArgument, c.Op)
}

func (s *Store) requestResult(id string) (requestRecord, bool, error) {
	v, ok, err := s.get(requestKey(id))
	if err != nil || !ok {
		return requestRecord{}, false, err
	}
	var rec requestRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return requestRecord{}, false, fmt.Errorf("%w: request record %s: %v", ErrCorrupt, id, err)
	}
	return rec, true, nil
}

// pruneRequests forgets, in t's batch, request records older than
// RequestRetention before t.now. It reads only the store, the command's
// time and its log index, so every replica forgets the same ones.
func (s *Store) pruneRequests(t *txn, index uint64) error {
	// An iterator per command costs a replica more than the rest of a
	// small commit's apply: replicas prune at every command whose log
	// index is a multiple of pruneEvery, whatever the command (the same
	// entries on every replica, so their stores stay equal), up to
	// pruneBatch records, more than pruneEvery commands add; the
	// single-process store (index 0) prunes a smaller batch with every
	// request it records.
	const pruneEvery, pruneBatch = 16, 1024
	limit := pruneBatch
	switch {
	case index == 0:
		limit = pruneBatch / pruneEvery
	case index%pruneEvery != 0:
		return nil
	}
	hi := cat(pfxRequestAge, timeKey(t.now.Add(-s.cfg.RequestRetention)))
	n := 0
	return s.scan(context.Background(), pfxRequestAge, hi, func(k, _ []byte) (bool, error) {
		_ = t.b.Delete(k, nil)
		_ = t.b.Delete(requestKey(string(k[len(pfxRequestAge)+8:])), nil)
		n++
		return n < limit, nil
	})
}

// applyGrace: see OpGrace. It also zeroes the repair loop's transient
// figures: the loop that reported them no longer runs.
func (s *Store) applyGrace(t *txn, _ *Command) (Result, error) {
	for _, cur := range s.nodes {
		st := *cur
		st.seen = t.now
		st.downSince = t.now
		t.putNode(&st, false)
	}
	if s.repair != nil {
		rs := *s.repair
		rs.RateBytesPerSec, rs.ETASeconds, rs.QueueBytes, rs.QueueObjects = 0, 0, 0, 0
		_ = t.b.Set(keyRepairStats, mustJSON(rs), nil)
		t.repair = &rs
	}
	return Result{}, nil
}
