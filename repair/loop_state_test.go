package repair_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/shale-store/shale/internal/testclock"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	"github.com/shale-store/shale/storage"
)

// clock is the shared settable test clock.
type clock = testclock.Clock

// watched wraps the coordinator and reads meta's status before every
// object it repairs, as an operator's `admin status` would mid-pass.
type watched struct {
	*object.Coordinator
	md *meta.Store
	t  *testing.T

	mu   sync.Mutex
	seen []meta.Status
}

func (w *watched) RepairObject(ctx context.Context, bucket, key string, bad []meta.BadShard, lost object.LostFunc) (object.RepairResult, error) {
	st, err := w.md.Status(ctx)
	if err != nil {
		w.t.Error(err)
	}
	w.mu.Lock()
	w.seen = append(w.seen, st)
	w.mu.Unlock()
	return w.Coordinator.RepairObject(ctx, bucket, key, bad, lost)
}

// While a node-out repair runs, status shows the objects still to repair
// (the degraded queue holds none of them), the bytes left and an ETA.
func TestStatusShowsNodeOutRepairProgress(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	const objects = 12
	f.putThenOut(t, objects, "node-3")
	sks, err := f.md.NodeShards(ctx, "node-3", "", 1000)
	if err != nil || len(sks) == 0 {
		t.Fatalf("node-3 holds %d shards (%v)", len(sks), err)
	}
	w := &watched{Coordinator: f.co, md: f.md, t: t}
	loop := repair.NewLoop(repair.Config{Concurrency: 1, PublishEvery: -1}, f.md, w)
	res, err := loop.Pass(ctx)
	if err != nil || res.Repaired != len(sks) {
		t.Fatalf("pass: %+v %v (want %d repaired)", res, err, len(sks))
	}
	if len(w.seen) != len(sks) {
		t.Fatalf("%d repairs watched, want %d", len(w.seen), len(sks))
	}
	var lastBytes int64
	for i, st := range w.seen {
		left := int64(len(sks) - i)
		if st.DegradedQueue != 0 {
			t.Fatalf("repair %d: degraded queue %d, want 0 (a node out queues nothing)", i, st.DegradedQueue)
		}
		if st.RepairQueue != left || st.Repair == nil || st.Repair.QueueObjects != left {
			t.Fatalf("repair %d: status queue %d (loop %+v), want %d objects left", i, st.RepairQueue, st.Repair, left)
		}
		if st.Repair.QueueBytes <= 0 || (i > 0 && st.Repair.QueueBytes >= lastBytes) {
			t.Fatalf("repair %d: queue bytes %d after %d: not going down", i, st.Repair.QueueBytes, lastBytes)
		}
		lastBytes = st.Repair.QueueBytes
		if i > 0 && st.Repair.ETASeconds <= 0 {
			t.Fatalf("repair %d: no ETA with %d bytes left at %.0f B/s", i, st.Repair.QueueBytes, st.Repair.RateBytesPerSec)
		}
	}
	st, err := f.md.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.RepairQueue != 0 || st.Repair.QueueObjects != 0 || st.Repair.QueueBytes != 0 || st.Repair.ETASeconds != 0 {
		t.Fatalf("after the pass: queue %d, loop %+v", st.RepairQueue, st.Repair)
	}
}

// restartFixture is a cluster whose meta lives in a directory, so the test
// can restart it (and its repair loop) with a clock it controls.
type restartFixture struct {
	dir   string
	clk   *clock
	nodes memNodes
	md    *meta.Store
	co    *object.Coordinator
}

func (f *restartFixture) open(t *testing.T) {
	t.Helper()
	md, err := meta.Open(meta.Config{Dir: f.dir, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if f.md == nil {
		t.Cleanup(func() { f.md.Close() }) // the store open at the end
	}
	co, err := object.New(object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: -1, MapRefresh: time.Nanosecond, Now: f.clk.Now}, md, f.nodes)
	if err != nil {
		t.Fatal(err)
	}
	f.md, f.co = md, co
}

func (f *restartFixture) restart(t *testing.T) *repair.Loop {
	t.Helper()
	if err := f.md.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	return f.loop()
}

func (f *restartFixture) loop() *repair.Loop {
	return repair.NewLoop(repair.Config{Concurrency: 1, MaxPerPass: 3, Now: f.clk.Now}, f.md, f.co)
}

// Time-to-repair runs from the node going out, across a restart of meta
// (and of its repair loop) in the middle of the repair, and a restart after
// the repair neither loses it nor starts a new episode for the same node.
func TestTimeToRepairAcrossMetaRestart(t *testing.T) {
	ctx := context.Background()
	f := &restartFixture{dir: t.TempDir(), clk: testclock.New(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)), nodes: memNodes{}}
	f.open(t)
	for i := range 8 {
		id := cluster.NodeID(fmt.Sprintf("node-%d", i))
		f.nodes[id] = storage.NewMem(storage.MemConfig{})
		if err := f.md.Heartbeat(ctx, meta.NodeReport{ID: id, Addr: string(id), Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%4), Host: string(id)}, Capacity: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.md.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	// 20 objects on 6 of 8 nodes each: more than 3 have a shard on node-2
	// but for a chance of about 1e-8 (with 10 it was 0.35 %, seen once).
	for i := range 20 {
		if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: fmt.Sprint(i), Body: bytes.NewReader(make([]byte, 9000)), Size: 9000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.md.Admin(ctx, "node-2", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	// The loop runs one pass (3 objects at most) a minute later, then meta
	// restarts; the new loop finishes the repair ten minutes after the node
	// went out.
	f.clk.Advance(time.Minute)
	if res, err := f.loop().Pass(ctx); err != nil || res.Repaired == 0 || !res.More {
		t.Fatalf("first pass: %+v %v (want some, not all, repaired)", res, err)
	}
	f.clk.Advance(9 * time.Minute)
	loop := f.restart(t)
	for pass := 0; ; pass++ {
		res, err := loop.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Candidates == 0 && !res.More {
			break
		}
		if pass > 10 {
			t.Fatal("repair does not finish")
		}
	}
	st, err := f.md.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Repair == nil || st.Repair.LastTimeToRepairSeconds != (10*time.Minute).Seconds() {
		t.Fatalf("time to repair across a meta restart: %+v, want 600 s", st.Repair)
	}
	if st.ObjectsByHealthyShards[6] != 20 {
		t.Fatalf("objects by healthy shards %v", st.ObjectsByHealthyShards)
	}
	repaired := st.Repair.ShardsRepaired

	// Another restart an hour later: the figures are still there, and the
	// node that is still out does not start a new episode.
	f.clk.Advance(time.Hour)
	loop = f.restart(t)
	if _, err := loop.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	st, err = f.md.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Repair.LastTimeToRepairSeconds != (10*time.Minute).Seconds() || st.Repair.ShardsRepaired != repaired || !st.Repair.EpisodeStart.IsZero() {
		t.Fatalf("after an idle restart: %+v, want time to repair 600 s and %d shards repaired", st.Repair, repaired)
	}

	// A node going out later starts a new episode from its own departure.
	if err := f.md.Admin(ctx, "node-5", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(30 * time.Second)
	for pass := 0; ; pass++ {
		res, err := loop.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Candidates == 0 {
			break
		}
		if pass > 10 {
			t.Fatal("second repair does not finish")
		}
	}
	if st := loop.Stats(); st.LastTimeToRepairSeconds != 30 {
		t.Fatalf("second episode: time to repair %v, want 30 s", st.LastTimeToRepairSeconds)
	}
}

// A loop that runs again after another leader's loop repaired meanwhile (a
// new term of leadership) carries on from the figures in meta, not from
// its own stale ones, which would otherwise overwrite the other's.
func TestLoopRunAgainResumesFromMeta(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	first := repair.NewLoop(repair.Config{Interval: time.Hour}, f.md, f.co)
	run := func() { // one term: the first pass, then the loss of leadership
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- first.Run(rctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for first.Stats().Updated.IsZero() || first.Stats() != mustStats(t, f.md) {
			if time.Now().After(deadline) {
				t.Fatalf("the loop's figures %+v never matched meta's %+v", first.Stats(), mustStats(t, f.md))
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
	}
	run()
	for i := range 6 {
		if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: fmt.Sprint(i), Body: bytes.NewReader(make([]byte, 9000)), Size: 9000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.md.Admin(ctx, "node-1", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	// Another leader repairs.
	if res, err := f.loop.Pass(ctx); err != nil || res.Repaired == 0 {
		t.Fatalf("the other leader's pass: %+v %v", res, err)
	}
	repaired := mustStats(t, f.md).ShardsRepaired
	run()
	if got := first.Stats().ShardsRepaired; got != repaired {
		t.Fatalf("after its new term the loop counts %d shards repaired, meta %d", got, repaired)
	}
}

func mustStats(t *testing.T, md *meta.Store) meta.RepairStats {
	t.Helper()
	rs, _ := md.RepairStats()
	return rs
}

// countingMeta counts the loop's per-object meta writes.
type countingMeta struct {
	*meta.Store
	mu              sync.Mutex
	stats, resolves int
}

func (c *countingMeta) SetRepairStats(rs meta.RepairStats) {
	c.mu.Lock()
	c.stats++
	c.mu.Unlock()
	c.Store.SetRepairStats(rs)
}

func (c *countingMeta) ResolveDegraded(ctx context.Context, bucket, key string, gen uint64) error {
	c.mu.Lock()
	c.resolves++
	c.mu.Unlock()
	return c.Store.ResolveDegraded(ctx, bucket, key, gen)
}

// A node-out pass makes one meta write per object (the repair's commit),
// not three: objects found through the out node's shard index were never
// in the degraded queue, so there is nothing to resolve, and the figures
// are published at most every PublishEvery (here the clock stands still:
// once when the queue is set, once at the first object, once at the end).
// An object that was in the degraded queue is still resolved.
func TestNodeOutPassWritesMetaOncePerObject(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	const objects = 12
	f.putThenOut(t, objects, "node-3")
	sks, err := f.md.NodeShards(ctx, "node-3", "", 1000)
	if err != nil || len(sks) < 2 {
		t.Fatalf("node-3 holds %d shards (%v)", len(sks), err)
	}
	// One of them is also in the degraded queue, as a read that found its
	// shard missing would have put it.
	man, err := f.md.Get(ctx, "b", sks[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	sk := sks[0]
	sk.Generation = man.Generation
	if err := f.md.ReportBad(ctx, meta.BadShard{ShardKey: sk, Reason: "missing", Reported: time.Unix(1_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	cm := &countingMeta{Store: f.md}
	clk := testclock.New(time.Unix(1_000_000, 0))
	loop := repair.NewLoop(repair.Config{Concurrency: 2, Now: clk.Now}, cm, f.co)
	res, err := loop.Pass(ctx)
	if err != nil || res.Repaired != len(sks) {
		t.Fatalf("pass: %+v %v (want %d repaired)", res, err, len(sks))
	}
	if cm.resolves != 1 {
		t.Errorf("%d ResolveDegraded calls for %d objects repaired, one of them queued: want 1", cm.resolves, len(sks))
	}
	if cm.stats > 3 {
		t.Errorf("%d SetRepairStats calls in a pass of %d objects with the clock standing still: want at most 3", cm.stats, len(sks))
	}
	st, err := f.md.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.DegradedQueue != 0 || st.RepairQueue != 0 || st.Repair.ShardsRepaired != int64(len(sks)) {
		t.Fatalf("after the pass: degraded %d, queue %d, loop %+v", st.DegradedQueue, st.RepairQueue, st.Repair)
	}
}

// putThenOut PUTs objects of 20,000 bytes (keys "0", "1", …) and takes
// node out.
func (f *fixture) putThenOut(t *testing.T, objects int, node cluster.NodeID) {
	t.Helper()
	ctx := context.Background()
	for i := range objects {
		body := bytes.Repeat([]byte{byte(i)}, 20_000)
		if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: fmt.Sprint(i), Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.md.Admin(ctx, node, meta.ActionOut); err != nil {
		t.Fatal(err)
	}
}
