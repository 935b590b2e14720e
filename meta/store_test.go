package meta_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/shale-store/shale/internal/testclock"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/metatest"
)

var ctx = context.Background()

func openT(t *testing.T, cfg meta.Config) *meta.Store {
	t.Helper()
	s, err := meta.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformanceDisk(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Service {
		return openT(t, meta.Config{Dir: t.TempDir()})
	})
}

func TestConformanceMem(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Service {
		return openT(t, meta.Config{FS: vfs.NewMem()})
	})
}

func TestOpenNeedsDir(t *testing.T) {
	if _, err := meta.Open(meta.Config{}); !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("Open without Dir: %v", err)
	}
}

func nodeState(t *testing.T, s *meta.Store, id cluster.NodeID) (cluster.State, uint64) {
	t.Helper()
	m, err := s.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := m.Node(id)
	if !ok {
		t.Fatalf("node %s not in map", id)
	}
	return n.State, m.Epoch()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestTickTransitions(t *testing.T) {
	clk := testclock.New(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	s := openT(t, meta.Config{FS: vfs.NewMem(), Now: clk.Now, DownAfter: 5 * time.Second, OutAfter: time.Minute})
	for _, id := range []cluster.NodeID{"a", "b", "c"} {
		must(t, s.Heartbeat(ctx, meta.NodeReport{ID: id}))
	}
	must(t, s.Admin(ctx, "c", meta.ActionDrain))
	_, e0 := nodeState(t, s, "a")

	clk.Advance(4 * time.Second)
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "b"}))
	must(t, s.Tick(ctx))
	if st, e := nodeState(t, s, "a"); st != cluster.Up || e != e0 {
		t.Fatalf("before DownAfter: %v epoch %d (was %d)", st, e, e0)
	}
	clk.Advance(time.Second) // a silent for 5s, b for 1s
	must(t, s.Tick(ctx))
	st, e1 := nodeState(t, s, "a")
	if st != cluster.Down || e1 != e0+1 {
		t.Fatalf("after DownAfter: a %v epoch %d, want down epoch %d", st, e1, e0+1)
	}
	if st, _ := nodeState(t, s, "b"); st != cluster.Up {
		t.Fatalf("b = %v", st)
	}
	if st, _ := nodeState(t, s, "c"); st != cluster.Draining {
		t.Fatalf("draining node changed by Tick: %v", st)
	}
	must(t, s.Tick(ctx))
	if _, e := nodeState(t, s, "a"); e != e1 {
		t.Fatalf("a Tick without change bumped the epoch: %d → %d", e1, e)
	}
	// A down node that heartbeats is up again.
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "a"}))
	if st, _ := nodeState(t, s, "a"); st != cluster.Up {
		t.Fatalf("heartbeat while down: %v", st)
	}
	// Silent again: down after 5s, out a minute after that.
	clk.Advance(5 * time.Second)
	must(t, s.Tick(ctx))
	clk.Advance(59 * time.Second)
	must(t, s.Tick(ctx))
	if st, _ := nodeState(t, s, "a"); st != cluster.Down {
		t.Fatalf("before OutAfter: %v", st)
	}
	clk.Advance(time.Second)
	must(t, s.Tick(ctx))
	if st, _ := nodeState(t, s, "a"); st != cluster.Out {
		t.Fatalf("after OutAfter: %v", st)
	}
	if st, _ := nodeState(t, s, "c"); st != cluster.Draining {
		t.Fatalf("draining node changed by Tick: %v", st)
	}
	// A timed-out node stays out when it heartbeats, until Admin in.
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "a"}))
	if st, _ := nodeState(t, s, "a"); st != cluster.Out {
		t.Fatalf("heartbeat while out: %v", st)
	}
	must(t, s.Admin(ctx, "a", meta.ActionIn))
	if st, _ := nodeState(t, s, "a"); st != cluster.Up {
		t.Fatalf("in after heartbeat: %v", st)
	}
	// Admin in for a silent node makes it down, not up.
	must(t, s.Admin(ctx, "b", meta.ActionOut))
	must(t, s.Admin(ctx, "b", meta.ActionIn))
	if st, _ := nodeState(t, s, "b"); st != cluster.Down {
		t.Fatalf("in while silent: %v", st)
	}
	// A long silence goes straight through down to out in one Tick.
	clk.Advance(time.Hour)
	must(t, s.Tick(ctx))
	for _, id := range []cluster.NodeID{"a", "b"} {
		if st, _ := nodeState(t, s, id); st != cluster.Out {
			t.Fatalf("%s after an hour: %v", id, st)
		}
	}
}

func TestRunTicks(t *testing.T) {
	clk := testclock.New(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	s := openT(t, meta.Config{FS: vfs.NewMem(), Now: clk.Now, TickEvery: time.Millisecond})
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "a"}))
	clk.Advance(time.Minute)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	for {
		st, _ := nodeState(t, s, "a")
		if st == cluster.Down {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.New(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	cfg := meta.Config{Dir: dir, Now: clk.Now}
	s, err := meta.Open(cfg)
	must(t, err)
	must(t, s.CreateBucket(ctx, "b", "r"))
	m := meta.Manifest{Bucket: "b", Key: "k\x00é", VersionID: "v1", Size: 3, ETag: "e",
		Segments: []meta.Segment{{Number: 1, Size: 3, K: 1, M: 1, Shards: []meta.ShardRef{{Index: 0, Node: "n1", ID: "s0"}, {Index: 1}}}}}
	c, err := s.Commit(ctx, m)
	must(t, err)
	u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "mp"})
	must(t, err)
	must(t, s.PutPart(ctx, "b", "mp", meta.Part{UploadID: u.ID, Segment: meta.Segment{Number: 1, K: 1, M: 0, Shards: []meta.ShardRef{{Index: 0, Node: "n1", ID: "p1"}}}}))
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "n1", Addr: "x:1"}))
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "n2", Addr: "x:2"}))
	must(t, s.Admin(ctx, "n2", meta.ActionOut))
	must(t, s.AddGarbage(ctx, []meta.Garbage{{Node: "n1", ShardID: "g"}}))
	mp0, err := s.Map(ctx)
	must(t, err)
	must(t, s.Close())

	clk.Advance(time.Hour) // meta was off for an hour
	s = openT(t, cfg)
	got, err := s.Get(ctx, "b", "k\x00é")
	must(t, err)
	if got.Generation != c.Generation || got.VersionID != "v1" {
		t.Fatalf("manifest after restart: %+v", got)
	}
	if _, err := s.GetUpload(ctx, "b", "mp", u.ID); err != nil {
		t.Fatal(err)
	}
	ps, err := s.ListParts(ctx, "b", "mp", u.ID)
	must(t, err)
	if len(ps) != 1 {
		t.Fatalf("parts after restart: %+v", ps)
	}
	mp, err := s.Map(ctx)
	must(t, err)
	if mp.Epoch() != mp0.Epoch() || mp.Len() != 2 {
		t.Fatalf("map after restart: epoch %d (was %d), %d nodes", mp.Epoch(), mp0.Epoch(), mp.Len())
	}
	if n, _ := mp.Node("n2"); n.State != cluster.Out {
		t.Fatalf("n2 after restart: %v", n.State)
	}
	// The hour meta was off does not count against the nodes.
	must(t, s.Tick(ctx))
	if st, _ := nodeState(t, s, "n1"); st != cluster.Up {
		t.Fatalf("n1 right after restart: %v", st)
	}
	gs, err := s.ListGarbage(ctx, 10)
	must(t, err)
	if len(gs) != 1 || gs[0].ShardID != "g" {
		t.Fatalf("garbage after restart: %+v", gs)
	}
	q, err := s.Degraded(ctx, 10)
	must(t, err)
	if len(q) != 1 || q[0].Generation != c.Generation {
		t.Fatalf("repair queue after restart: %+v", q)
	}
	sk, err := s.NodeShards(ctx, "n1", "", 10)
	must(t, err)
	if len(sk) != 2 {
		t.Fatalf("index after restart: %+v", sk)
	}
	// Generations keep growing across the restart.
	c2, err := s.Commit(ctx, m)
	must(t, err)
	if c2.Generation <= c.Generation {
		t.Fatalf("generation after restart %d ≤ %d", c2.Generation, c.Generation)
	}
	bs, err := s.ListBuckets(ctx)
	must(t, err)
	if len(bs) != 1 || bs[0].Region != "r" {
		t.Fatalf("buckets after restart: %+v", bs)
	}
}

func TestScanManifests(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	var want []string
	for _, b := range []string{"a", "a-b", "b"} {
		must(t, s.CreateBucket(ctx, b, ""))
		for _, k := range []string{"x", "x\x00", "y"} {
			_, err := s.Commit(ctx, meta.Manifest{Bucket: b, Key: k})
			must(t, err)
			want = append(want, b+"/"+k)
		}
	}
	var got []string
	ab, ak := "", ""
	for {
		ms, err := s.ScanManifests(ctx, ab, ak, 2)
		must(t, err)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			got = append(got, m.Bucket+"/"+m.Key)
		}
		ab, ak = ms[len(ms)-1].Bucket, ms[len(ms)-1].Key
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("scan = %q\nwant %q", got, want)
	}
}

func TestCancelledContext(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CreateBucket(cctx, "b", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateBucket with a cancelled context: %v", err)
	}
	if _, err := s.HeadBucket(ctx, "b"); !errors.Is(err, meta.ErrNoSuchBucket) {
		t.Fatalf("bucket created despite cancelled context: %v", err)
	}
}

func TestRepairStatsInStatus(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	st, err := s.Status(ctx)
	must(t, err)
	if st.Repair != nil {
		t.Fatalf("repair stats before any report: %+v", st.Repair)
	}
	s.SetRepairStats(meta.RepairStats{ShardsRepaired: 7})
	st, err = s.Status(ctx)
	must(t, err)
	if st.Repair == nil || st.Repair.ShardsRepaired != 7 {
		t.Fatalf("repair stats = %+v", st.Repair)
	}
}
