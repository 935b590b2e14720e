package object

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/storage"
)

// rebuildingStore is a node whose store can rebuild a shard itself, as a
// node serving storage/remote's rebuild endpoint does: a faultStore with a
// LocalRebuilder reading from the harness's other nodes.
type rebuildingStore struct {
	*faultStore
	lr *LocalRebuilder

	mu              sync.Mutex
	calls, failures int
	errs            []error
	ids             []string // asked for
	after           func()   // runs after each rebuild (may be nil)
}

func (s *rebuildingStore) RebuildShard(ctx context.Context, id string, req ShardRebuild) (storage.Info, error) {
	info, err := s.lr.RebuildShard(ctx, id, req)
	s.mu.Lock()
	s.calls++
	s.ids = append(s.ids, id)
	if err != nil {
		s.failures++
		s.errs = append(s.errs, err)
	}
	after := s.after
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return info, err
}

// rebuildingNodes dials the harness's nodes as rebuildingStores.
type rebuildingNodes struct {
	h      *harness
	mu     sync.Mutex
	stores map[cluster.NodeID]*rebuildingStore
	after  func() // given to every store it dials
}

func (r *rebuildingNodes) Store(n cluster.Node) (ShardStore, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.stores[n.ID]; ok {
		return s, nil
	}
	fs, ok := r.h.stores[n.ID]
	if !ok {
		return nil, errors.New("test: no such node")
	}
	lr, err := NewLocalRebuilder(testConfig(), r.h, fs)
	if err != nil {
		return nil, err
	}
	s := &rebuildingStore{faultStore: fs, lr: lr, after: r.after}
	r.stores[n.ID] = s
	return s, nil
}

func (r *rebuildingNodes) totals() (calls, failures int, errs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.stores {
		s.mu.Lock()
		calls += s.calls
		failures += s.failures
		errs = append(errs, s.errs...)
		s.mu.Unlock()
	}
	return calls, failures, errs
}

// repairer is a second coordinator over the harness's meta whose nodes
// rebuild shards themselves.
func (h *harness) repairer() (*Coordinator, *rebuildingNodes) {
	h.t.Helper()
	rn := &rebuildingNodes{h: h, stores: map[cluster.NodeID]*rebuildingStore{}}
	cfg := testConfig()
	cfg.Now = h.clock.Now
	c, err := New(cfg, h.md, rn)
	if err != nil {
		h.t.Fatal(err)
	}
	return c, rn
}

// With a node out, the shard's new node rebuilds it itself: nothing is
// streamed from the coordinator (the target's store sees one Put, its own),
// the object is whole, and the new shard's summary is the manifest's.
func TestRepairOnTargetNode(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(50, 3*4*4096+11)
	m := h.put("o", data)
	lostNode := shardNode(m, 1)
	h.setState(lostNode, cluster.Out)
	rc, rn := h.repairer()
	before := map[cluster.NodeID]int{}
	for id, s := range h.stores {
		before[id] = s.puts
	}
	res, err := rc.RepairObject(h.ctx, testBucket, "o", nil, nil)
	if err != nil || res.Rebuilt != 1 || res.Remaining != 0 || res.Conflict {
		t.Fatalf("repair: %+v %v", res, err)
	}
	if calls, failures, errs := rn.totals(); calls != 1 || failures != 0 {
		t.Fatalf("node-side rebuilds: %d calls, %d failures %v", calls, failures, errs)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "o")
	if err != nil {
		t.Fatal(err)
	}
	r1 := got.Segments[0].Shards[1]
	if r1.Node == lostNode || r1.ID == m.Segments[0].Shards[1].ID {
		t.Fatalf("shard 1 not moved: %+v", r1)
	}
	for id, s := range h.stores {
		want := before[id]
		if id == r1.Node {
			want++
		}
		if s.puts != want {
			t.Fatalf("node %s saw %d Puts during the repair, want %d", id, s.puts-before[id], want-before[id])
		}
	}
	info, err := h.stores[r1.Node].mem.Stat(h.ctx, r1.ID)
	if err != nil || info.Checksum != r1.Checksum || info.Size != r1.Size {
		t.Fatalf("stored %+v (%v), manifest %+v", info, err, r1)
	}
	checkWhole(t, h, got, data)
}

// A corrupt source makes the node-side rebuild fail and keep nothing; the
// coordinator then rebuilds around the source itself, under another id,
// and reports it, as it always has.
func TestRepairOnTargetFallsBackOnBadSource(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(51, 3*4*4096+11)
	m := h.put("o", data)
	lostNode := shardNode(m, 1)
	h.setState(lostNode, cluster.Out)
	r0 := m.Segments[0].Shards[0]
	if err := h.stores[r0.Node].mem.Corrupt(r0.ID, erasure.RecordHeaderSize+1); err != nil {
		t.Fatal(err)
	}
	rc, rn := h.repairer()
	res, err := rc.RepairObject(h.ctx, testBucket, "o", nil, nil)
	calls, failures, errs := rn.totals()
	if calls != 1 || failures != 1 || !errors.Is(errs[0], ErrRebuildSources) {
		t.Fatalf("node-side rebuilds: %d calls, %d failures %v", calls, failures, errs)
	}
	if res.Rebuilt != 1 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "o")
	if err != nil {
		t.Fatal(err)
	}
	r1 := got.Segments[0].Shards[1]
	// The failed attempt kept nothing on the target, and the fallback
	// wrote under another id.
	tried := rn.stores[r1.Node]
	if tried == nil || len(tried.ids) != 1 || tried.ids[0] == r1.ID {
		t.Fatalf("node-side attempt on %s: %+v, fallback shard %s", r1.Node, tried, r1.ID)
	}
	if slices.Contains(h.stores[r1.Node].ids(t), tried.ids[0]) {
		t.Fatalf("the failed node-side rebuild left %s on %s", tried.ids[0], r1.Node)
	}
	bad, err := h.store.BadReports(h.ctx, 10)
	if err != nil || len(bad) != 1 || bad[0].ShardID != r0.ID {
		t.Fatalf("bad reports %+v %v, want the corrupt source %s", bad, err, r0.ID)
	}
	if got.Segments[0].Shards[1].Checksum == 0 || res.Remaining == 0 {
		t.Fatalf("repair %+v: the corrupt source must count as remaining", res)
	}
}

// The local rebuilder refuses a segment without k sources to read and
// keeps nothing.
func TestLocalRebuilderTooFewSources(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	m := h.put("o", pattern(52, 2*4*4096))
	seg := m.Segments[0]
	seg.Shards = slices.Clone(seg.Shards)
	for i := range 3 {
		seg.Shards[i].Node = ""
	}
	target := h.stores[shardNode(m, 5)]
	lr, err := NewLocalRebuilder(testConfig(), h, target)
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := h.clusterMap()
	_, err = lr.RebuildShard(h.ctx, "x.r1", ShardRebuild{Segment: seg, Index: 0, Nodes: mp.Nodes()})
	if !errors.Is(err, ErrRebuildSources) {
		t.Fatalf("rebuild with 2 sources of 4+2: %v", err)
	}
	if _, err := target.mem.Stat(h.ctx, "x.r1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after a refused rebuild: %v", err)
	}
}

// A shard a node rebuilt itself becomes garbage when the repair's commit
// loses to an overwrite: nothing else references it.
func TestRepairOnTargetConflictLeavesNoOrphan(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	m := h.put("o", pattern(51, 3*4*4096+11))
	h.setState(shardNode(m, 1), cluster.Out)
	rc, rn := h.repairer()
	rn.after = func() { h.put("o", pattern(52, 100)) } // the overwrite lands during the repair
	res, err := rc.RepairObject(h.ctx, testBucket, "o", nil, nil)
	if err != nil || !res.Conflict {
		t.Fatalf("repair: %+v %v, want a conflict", res, err)
	}
	var rebuilt []string
	for id, s := range rn.stores {
		for _, sid := range s.ids {
			rebuilt = append(rebuilt, string(id)+"/"+sid)
		}
	}
	if len(rebuilt) != 1 {
		t.Fatalf("node-side rebuilds: %v, want one", rebuilt)
	}
	if g := h.garbage(); !g[rebuilt[0]] {
		t.Fatalf("the rebuilt shard %s is not garbage after the lost commit: %v", rebuilt[0], sortedKeys(g))
	}
}
