package meta_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
)

// TestRemoveNode: `remove` forgets a node only once it is out, silent and
// holds no shard; the epoch moves on (its queued garbage is left to the
// collector's bounded pages), and
// the node stays forgotten across a restart. A node that heartbeats
// afterwards registers anew.
func TestRemoveNode(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	cfg := meta.Config{Dir: dir, Now: clk.Now, DownAfter: 5 * time.Second, OutAfter: time.Hour}
	s, err := meta.Open(cfg)
	must(t, err)
	for _, id := range []cluster.NodeID{"n0", "n1", "n2"} {
		must(t, s.Heartbeat(ctx, meta.NodeReport{ID: id, Addr: string(id) + ":1"}))
	}
	must(t, s.CreateBucket(ctx, "b", ""))
	m := meta.Manifest{Bucket: "b", Key: "k", VersionID: "v1", Size: 200, ETag: "x", Created: clk.Now(), Segments: []meta.Segment{oneSegment(1, "obj")}}
	_, err = s.Commit(ctx, m) // shards on n0, n1, n2
	must(t, err)
	must(t, s.AddGarbage(ctx, []meta.Garbage{{Node: "n1", ShardID: "old-1"}, {Node: "n2", ShardID: "old-2"}}))

	inUse := func(what string, id cluster.NodeID) {
		t.Helper()
		if err := s.Admin(ctx, id, meta.ActionRemove); !errors.Is(err, meta.ErrNodeInUse) {
			t.Fatalf("%s: remove %s: %v, want ErrNodeInUse", what, id, err)
		}
	}
	inUse("up", "n1")
	must(t, s.Admin(ctx, "n1", meta.ActionOut))
	inUse("out but heartbeating", "n1")
	clk.Advance(10 * time.Second)
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "n0", Addr: "n0:1"}))
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "n2", Addr: "n2:1"}))
	inUse("out, silent, holding a shard", "n1")
	if err := s.Admin(ctx, "nope", meta.ActionRemove); !errors.Is(err, meta.ErrNoSuchNode) {
		t.Fatalf("remove an unknown node: %v", err)
	}

	// Repair moves n1's shard to n2's slot… here: the object goes away.
	_, err = s.Delete(ctx, "b", "k")
	must(t, err)
	mp0, err := s.Map(ctx)
	must(t, err)
	must(t, s.Admin(ctx, "n1", meta.ActionRemove))
	mp, err := s.Map(ctx)
	must(t, err)
	if _, ok := mp.Node("n1"); ok || mp.Len() != 2 || mp.Epoch() <= mp0.Epoch() {
		t.Fatalf("after remove: %d nodes, n1 known %v, epoch %d (was %d)", mp.Len(), ok, mp.Epoch(), mp0.Epoch())
	}
	// Its garbage stays queued, for the collector to forget in pages.
	nodes, err := s.GarbageNodes(ctx)
	must(t, err)
	if !slices.Contains(nodes, "n1") {
		t.Fatal("the removed node's garbage went in the remove's own apply")
	}
	gs, err := s.ListGarbagePage(ctx, meta.GarbageQuery{Node: "n2", Limit: 100})
	must(t, err)
	if len(gs) == 0 {
		t.Fatal("another node's garbage went with the removed one")
	}

	must(t, s.Close())
	s = openT(t, cfg)
	mp, err = s.Map(ctx)
	must(t, err)
	if _, ok := mp.Node("n1"); ok {
		t.Fatal("the removed node is back after a restart")
	}
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "n1", Addr: "n1:1"}))
	if st, _ := nodeState(t, s, "n1"); st != cluster.Up {
		t.Fatalf("a removed node that heartbeats again: %v, want up (registered anew)", st)
	}
}
