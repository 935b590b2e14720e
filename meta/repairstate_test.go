package meta_test

import (
	"github.com/shale-store/shale/internal/testclock"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// The repair loop's report survives a restart of meta, its transient
// figures zeroed; the episode start and the last time-to-repair are kept.
func TestRepairStatsPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := meta.Open(meta.Config{Dir: dir})
	must(t, err)
	if _, ok := s.RepairStats(); ok {
		t.Fatal("repair stats before any report")
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetRepairStats(meta.RepairStats{ShardsRepaired: 7, BytesRepaired: 700, QueueObjects: 3, QueueBytes: 300,
		RateBytesPerSec: 10, ETASeconds: 30, LastTimeToRepairSeconds: 42, EpisodeStart: start})
	must(t, s.Close())

	s = openT(t, meta.Config{Dir: dir})
	rs, ok := s.RepairStats()
	if !ok || rs.ShardsRepaired != 7 || rs.BytesRepaired != 700 || rs.LastTimeToRepairSeconds != 42 || !rs.EpisodeStart.Equal(start) {
		t.Fatalf("after restart: %+v %v", rs, ok)
	}
	if rs.QueueObjects != 0 || rs.QueueBytes != 0 || rs.RateBytesPerSec != 0 || rs.ETASeconds != 0 {
		t.Fatalf("transient figures survived the restart: %+v", rs)
	}
	st, err := s.Status(ctx)
	must(t, err)
	if st.Repair == nil || st.Repair.LastTimeToRepairSeconds != 42 {
		t.Fatalf("status after restart: %+v", st.Repair)
	}
}

// Status's repair queue counts the loop's candidates when they outnumber
// the degraded queue (a node out puts nothing in the degraded queue).
func TestStatusRepairQueueCountsLoopCandidates(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	must(t, s.CreateBucket(ctx, "b", ""))
	m := meta.Manifest{Bucket: "b", Key: "k", VersionID: "v", Size: 1,
		Segments: []meta.Segment{{Number: 1, Size: 1, K: 1, M: 1, Shards: []meta.ShardRef{{Index: 0, Node: "n1", ID: "s0"}, {Index: 1}}}}}
	_, err := s.Commit(ctx, m)
	must(t, err)
	st, err := s.Status(ctx)
	must(t, err)
	if st.RepairQueue != 1 || st.DegradedQueue != 1 {
		t.Fatalf("one degraded object: queue %d, degraded %d", st.RepairQueue, st.DegradedQueue)
	}
	s.SetRepairStats(meta.RepairStats{QueueObjects: 25})
	st, err = s.Status(ctx)
	must(t, err)
	if st.RepairQueue != 25 || st.DegradedQueue != 1 {
		t.Fatalf("25 candidates: queue %d, degraded %d", st.RepairQueue, st.DegradedQueue)
	}
	s.SetRepairStats(meta.RepairStats{QueueObjects: 0})
	st, err = s.Status(ctx)
	must(t, err)
	if st.RepairQueue != 1 {
		t.Fatalf("no candidates, one degraded: queue %d", st.RepairQueue)
	}
}

// A node's Since is when it went out (by Tick or Admin), persisted, and
// cleared when it comes back in.
func TestNodeSince(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.New(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	cfg := meta.Config{Dir: dir, Now: clk.Now, DownAfter: 5 * time.Second, OutAfter: time.Minute}
	s, err := meta.Open(cfg)
	must(t, err)
	for _, id := range []cluster.NodeID{"a", "b"} {
		must(t, s.Heartbeat(ctx, meta.NodeReport{ID: id}))
	}
	node := func(s *meta.Store, id cluster.NodeID) cluster.Node {
		t.Helper()
		mp, err := s.Map(ctx)
		must(t, err)
		n, _ := mp.Node(id)
		return n
	}
	clk.Advance(10 * time.Second)
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "b"}))
	must(t, s.Tick(ctx)) // a down
	if n := node(s, "a"); n.State != cluster.Down || !n.Since.IsZero() {
		t.Fatalf("down: %+v", n)
	}
	clk.Advance(time.Minute)
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "b"}))
	must(t, s.Tick(ctx)) // a out
	outAt := clk.Now()
	if n := node(s, "a"); n.State != cluster.Out || !n.Since.Equal(outAt) {
		t.Fatalf("out by Tick: %+v, want since %v", n, outAt)
	}
	clk.Advance(time.Second)
	must(t, s.Admin(ctx, "b", meta.ActionDrain))
	drainAt := clk.Now()
	must(t, s.Close())

	clk.Advance(time.Hour)
	s = openT(t, cfg)
	if n := node(s, "a"); n.State != cluster.Out || !n.Since.Equal(outAt) {
		t.Fatalf("out after restart: %+v, want since %v", n, outAt)
	}
	if n := node(s, "b"); n.State != cluster.Draining || !n.Since.Equal(drainAt) {
		t.Fatalf("draining after restart: %+v, want since %v", n, drainAt)
	}
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "a"}))
	must(t, s.Admin(ctx, "a", meta.ActionIn))
	if n := node(s, "a"); n.State != cluster.Up || !n.Since.IsZero() {
		t.Fatalf("in: %+v", n)
	}
}
