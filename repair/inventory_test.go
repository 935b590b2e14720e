package repair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/shale-store/shale/internal/testclock"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	"github.com/shale-store/shale/storage"
)

// *meta.Store is the InventoryMeta the meta process passes.
var _ repair.InventoryMeta = (*meta.Store)(nil)

// fakeClock is the shared settable test clock.
type fakeClock = testclock.Clock

var errCrash = errors.New("test: gateway crashed")

// crashedGateway is the meta a gateway sees when it dies between writing
// its shards and committing: nothing it would record reaches meta.
type crashedGateway struct{ *meta.Store }

func (crashedGateway) Commit(context.Context, meta.Manifest) (meta.Manifest, error) {
	return meta.Manifest{}, errCrash
}
func (crashedGateway) PutPart(context.Context, string, string, meta.Part) error { return errCrash }
func (crashedGateway) AddGarbage(context.Context, []meta.Garbage) error         { return errCrash }

// listCounter lists a Mem store, counting calls, and fails when told to.
type listCounter struct {
	mem *storage.Mem

	mu    sync.Mutex // guards calls, fail
	calls int
	fail  bool
}

func (l *listCounter) List(ctx context.Context, prefix, after string, limit int) ([]storage.Info, error) {
	l.mu.Lock()
	l.calls++
	fail := l.fail
	l.mu.Unlock()
	if fail {
		return nil, errors.New("test: list failed")
	}
	return l.mem.List(ctx, prefix, after, limit)
}

func (l *listCounter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

type invFixture struct {
	ctx     context.Context
	clk     *fakeClock
	md      *meta.Store
	nodes   memNodes
	listers map[cluster.NodeID]*listCounter
	co      *object.Coordinator // a healthy gateway
	crashed *object.Coordinator // a gateway that dies before every commit
	inv     *repair.Inventory
}

func newInvFixture(t *testing.T, cfg repair.InventoryConfig) *invFixture {
	t.Helper()
	f := &invFixture{
		ctx:     context.Background(),
		clk:     testclock.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)),
		nodes:   memNodes{},
		listers: map[cluster.NodeID]*listCounter{},
	}
	md, err := meta.Open(meta.Config{FS: vfs.NewMem(), Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	f.md = md
	for i := range 6 {
		id := cluster.NodeID(fmt.Sprintf("node-%d", i))
		f.nodes[id] = storage.NewMem(storage.MemConfig{Now: f.clk.Now})
		f.listers[id] = &listCounter{mem: f.nodes[id]}
		if err := md.Heartbeat(f.ctx, meta.NodeReport{ID: id, Addr: string(id), Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%3), Rack: "r", Host: string(id)}, Capacity: 1 << 40, Free: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	ocfg := object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: -1, MapRefresh: time.Nanosecond, Now: f.clk.Now}
	if f.co, err = object.New(ocfg, md, f.nodes); err != nil {
		t.Fatal(err)
	}
	if f.crashed, err = object.New(ocfg, crashedGateway{md}, f.nodes); err != nil {
		t.Fatal(err)
	}
	if err := md.CreateBucket(f.ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	cfg.Now = f.clk.Now
	f.inv = repair.NewInventory(cfg, md, repair.ListerFunc(func(n cluster.Node) (repair.ShardLister, error) {
		l, ok := f.listers[n.ID]
		if !ok {
			return nil, fmt.Errorf("no node %s", n.ID)
		}
		return l, nil
	}))
	return f
}

// stored is every shard on every node as "node/id".
func (f *invFixture) stored(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for id, m := range f.nodes {
		infos, err := m.List(f.ctx, "", "", 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			out[string(id)+"/"+in.ID] = true
		}
	}
	return out
}

// garbage is the queued garbage as "node/id" → number of entries.
func (f *invFixture) garbage(t *testing.T) map[string]int {
	t.Helper()
	gs, err := f.md.ListGarbage(f.ctx, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, g := range gs {
		out[string(g.Node)+"/"+g.ShardID]++
	}
	return out
}

func refs(segs ...meta.Segment) map[string]bool {
	out := map[string]bool{}
	for _, s := range segs {
		for _, r := range s.Shards {
			if r.Node != "" {
				out[string(r.Node)+"/"+r.ID] = true
			}
		}
	}
	return out
}

func body(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// crashPut runs a PUT through the crashing gateway and returns the shards
// it left behind.
func (f *invFixture) crashPut(t *testing.T, key string) map[string]bool {
	t.Helper()
	before := f.stored(t)
	data := body(20000, 3)
	if _, err := f.crashed.PutObject(f.ctx, object.PutInput{Bucket: "b", Key: key, Body: bytes.NewReader(data), Size: int64(len(data))}); !errors.Is(err, errCrash) {
		t.Fatalf("crashed PUT: %v", err)
	}
	left := map[string]bool{}
	for s := range f.stored(t) {
		if !before[s] {
			left[s] = true
		}
	}
	if len(left) != 6 {
		t.Fatalf("crashed PUT left %d shards, want 6", len(left))
	}
	return left
}

// sweep steps until the sweep in progress (or one started now) ends.
func (f *invFixture) sweep(t *testing.T) int {
	t.Helper()
	queued := 0
	for i := 0; ; i++ {
		r, err := f.inv.Step(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		queued += r.Queued
		if r.Finished {
			return queued
		}
		if i > 1000 {
			t.Fatal("sweep does not end")
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestInventoryCollectsOnlyOldOrphans(t *testing.T) {
	f := newInvFixture(t, repair.InventoryConfig{Grace: time.Hour, Every: 10 * time.Minute})
	ctx := f.ctx
	live, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: "live", Body: bytes.NewReader(body(30000, 1)), Size: 30000})
	if err != nil {
		t.Fatal(err)
	}
	// An overwrite: meta queues the old version's shards as garbage itself.
	old, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: "over", Body: bytes.NewReader(body(9000, 2)), Size: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: "over", Body: bytes.NewReader(body(100, 4)), Size: 100}); err != nil {
		t.Fatal(err)
	}
	// An upload in progress, which stays in progress for hours.
	up, err := f.co.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	part, err := f.co.UploadPart(ctx, up.ID, 1, object.PutInput{Bucket: "b", Key: "mp", Body: bytes.NewReader(body(12000, 5)), Size: 12000})
	if err != nil {
		t.Fatal(err)
	}
	// A gateway dies mid-PUT: shards on every node, nothing in meta.
	orphans := f.crashPut(t, "lost")
	// And one dies mid-part-upload.
	for s := range f.crashPartUpload(t, up.ID) {
		orphans[s] = true
	}
	keep := refs(live.Segments...)
	for s := range refs(part.Segment) {
		keep[s] = true
	}
	queuedByMeta := refs(old.Segments...)
	if g := f.garbage(t); len(g) != len(queuedByMeta) {
		t.Fatalf("garbage before any sweep: %v", keys(g))
	}

	// 30 minutes on, the orphans are younger than the grace: untouched.
	f.clk.Advance(30 * time.Minute)
	if n := f.sweep(t); n != 0 {
		t.Fatalf("a sweep within the grace queued %d shards", n)
	}
	// A second crash, 50 minutes in.
	f.clk.Advance(20 * time.Minute)
	young := f.crashPut(t, "young")

	// 61 minutes in: the first orphans are past the grace, the young not.
	f.clk.Advance(11 * time.Minute)
	if n := f.sweep(t); n != len(orphans) {
		t.Fatalf("sweep queued %d shards, want the %d old orphans", n, len(orphans))
	}
	g := f.garbage(t)
	for s, n := range g {
		if n != 1 {
			t.Fatalf("%s queued %d times", s, n)
		}
		if !orphans[s] && !queuedByMeta[s] {
			t.Fatalf("queued %s, which is no orphan (young: %v, kept: %v)", s, young[s], keep[s])
		}
	}
	for s := range orphans {
		if g[s] != 1 {
			t.Fatalf("orphan %s not queued", s)
		}
	}
	// Another sweep before collection queues nothing twice.
	f.clk.Advance(10 * time.Minute)
	if n := f.sweep(t); n != 0 {
		t.Fatalf("a second sweep queued %d more", n)
	}
	if g2 := f.garbage(t); len(g2) != len(g) {
		t.Fatalf("garbage grew from %d to %d entries", len(g), len(g2))
	}

	// The collector deletes them; everything referenced is intact.
	if _, err := repair.NewGarbageCollector(repair.GarbageConfig{Now: f.clk.Now}, f.md, f.nodes).Collect(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	st := f.stored(t)
	for s := range orphans {
		if st[s] {
			t.Fatalf("orphan %s still stored", s)
		}
	}
	for s := range young {
		if !st[s] {
			t.Fatalf("young orphan %s collected", s)
		}
	}
	for s := range keep {
		if !st[s] {
			t.Fatalf("referenced shard %s collected", s)
		}
	}
	var buf bytes.Buffer
	if err := f.co.ReadObject(ctx, &buf, live, 0, live.Size); err != nil || !bytes.Equal(buf.Bytes(), body(30000, 1)) {
		t.Fatalf("live object after collection: %v", err)
	}
	m, err := f.co.CompleteUpload(ctx, "b", "mp", up.ID, []object.CompletePart{{Number: 1, ETag: part.Segment.ETag}})
	if err != nil {
		t.Fatalf("complete the upload after collection: %v", err)
	}
	buf.Reset()
	if err := f.co.ReadObject(ctx, &buf, m, 0, m.Size); err != nil || !bytes.Equal(buf.Bytes(), body(12000, 5)) {
		t.Fatalf("completed upload after collection: %v", err)
	}

	// An hour later the young orphans are old too.
	f.clk.Advance(time.Hour)
	if n := f.sweep(t); n != len(young) {
		t.Fatalf("sweep queued %d, want the %d young orphans, now old", n, len(young))
	}
	if s := f.inv.Stats(); s.Sweeps != 4 || s.Queued != int64(len(orphans)+len(young)) || s.Last.Nodes != 6 {
		t.Fatalf("stats %+v", s)
	}
}

// crashPartUpload uploads a part through the crashing gateway and returns
// the shards it left behind.
func (f *invFixture) crashPartUpload(t *testing.T, uploadID string) map[string]bool {
	t.Helper()
	before := f.stored(t)
	data := body(7000, 9)
	if _, err := f.crashed.UploadPart(f.ctx, uploadID, 2, object.PutInput{Bucket: "b", Key: "mp", Body: bytes.NewReader(data), Size: int64(len(data))}); !errors.Is(err, errCrash) {
		t.Fatalf("crashed part upload: %v", err)
	}
	left := map[string]bool{}
	for s := range f.stored(t) {
		if !before[s] {
			left[s] = true
		}
	}
	if len(left) != 6 {
		t.Fatalf("crashed part upload left %d shards, want 6", len(left))
	}
	return left
}

func TestInventoryIsPaced(t *testing.T) {
	f := newInvFixture(t, repair.InventoryConfig{Grace: time.Hour, Every: 10 * time.Minute, PageSize: 2, PagesPerStep: 3})
	for i := range 5 {
		f.crashPut(t, fmt.Sprintf("lost-%d", i)) // 5 shards on every node: 3 pages of 2 and an empty one
	}
	if err := f.md.Admin(f.ctx, "node-4", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	f.listers["node-2"].fail = true
	f.clk.Advance(2 * time.Hour)

	total := func() int {
		n := 0
		for _, l := range f.listers {
			n += l.count()
		}
		return n
	}
	steps, queued := 0, 0
	var errs []error
	for {
		before := total()
		r, err := f.inv.Step(f.ctx)
		steps++
		if err != nil {
			errs = append(errs, err)
		}
		if got := total() - before; got > 3 || got != r.Pages {
			t.Fatalf("step %d made %d List calls (says %d), bound 3", steps, got, r.Pages)
		}
		queued += r.Queued
		if r.Finished {
			break
		}
		if steps > 100 {
			t.Fatal("sweep does not end")
		}
	}
	// 4 readable nodes × 4 pages + 1 failed call = 17 calls: at least 6 steps.
	if steps < 6 || total() != 17 {
		t.Fatalf("sweep took %d steps and %d List calls, want ≥ 6 and 17", steps, total())
	}
	if queued != 4*5 {
		t.Fatalf("queued %d, want the 20 orphans on the 4 listable nodes", queued)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "node-2") {
		t.Fatalf("errors %v, want one naming node-2", errs)
	}
	if n := f.listers["node-4"].count(); n != 0 {
		t.Fatalf("the out node was listed %d times", n)
	}
	for s := range f.garbage(t) {
		if strings.HasPrefix(s, "node-2/") || strings.HasPrefix(s, "node-4/") {
			t.Fatalf("queued %s on an unlisted node", s)
		}
	}

	// Until Every has passed since the sweep started, steps do nothing.
	before := total()
	for range 3 {
		if r, err := f.inv.Step(f.ctx); err != nil || r.Pages != 0 {
			t.Fatalf("step between sweeps: %+v %v", r, err)
		}
	}
	f.clk.Advance(10 * time.Minute)
	if r, err := f.inv.Step(f.ctx); err != nil && r.Pages == 0 {
		t.Fatalf("no sweep once Every passed: %+v %v", r, err)
	}
	if total() == before {
		t.Fatal("no sweep once Every passed")
	}
}

func TestLoopRunsInventory(t *testing.T) {
	f := newInvFixture(t, repair.InventoryConfig{Grace: time.Hour})
	loop := repair.NewLoop(repair.Config{Now: f.clk.Now, Inventory: f.inv,
		Garbage: repair.NewGarbageCollector(repair.GarbageConfig{Now: f.clk.Now}, f.md, f.nodes)}, f.md, f.co)
	orphans := f.crashPut(t, "lost")
	// A sweep takes 3 passes (6 nodes × 2 pages, 4 pages a step).
	for range 5 {
		if res, err := loop.Pass(f.ctx); err != nil || res.Orphans != 0 || res.Garbage != 0 {
			t.Fatalf("pass within the grace: %+v %v", res, err)
		}
	}
	f.clk.Advance(time.Hour)
	queued, collected := 0, 0
	for range 5 {
		res, err := loop.Pass(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		queued += res.Orphans
		collected += res.Garbage
	}
	if queued != len(orphans) || collected != len(orphans) {
		t.Fatalf("passes queued %d and collected %d, want %d", queued, collected, len(orphans))
	}
	st := f.stored(t)
	for s := range orphans {
		if st[s] {
			t.Fatalf("orphan %s still stored", s)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(repair.NewCollector(loop, f.md))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetCounter() != nil {
			got[mf.GetName()] = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if got["shale_orphans_queued_total"] != float64(len(orphans)) || got["shale_orphan_sweeps_total"] < 2 {
		t.Fatalf("metrics %v", got)
	}
}

// flakyMeta fails AddGarbage while fail is set.
type flakyMeta struct {
	*meta.Store
	fail bool
}

func (m *flakyMeta) AddGarbage(ctx context.Context, g []meta.Garbage) error {
	if m.fail {
		return errCrash
	}
	return m.Store.AddGarbage(ctx, g)
}

func TestInventoryRetriesPageAfterMetaFailure(t *testing.T) {
	f := newInvFixture(t, repair.InventoryConfig{})
	orphans := f.crashPut(t, "lost")
	fm := &flakyMeta{Store: f.md, fail: true}
	inv := repair.NewInventory(repair.InventoryConfig{Now: f.clk.Now, PagesPerStep: 1}, fm,
		repair.ListerFunc(func(n cluster.Node) (repair.ShardLister, error) { return f.listers[n.ID], nil }))
	f.clk.Advance(2 * time.Hour)
	if _, err := inv.Step(f.ctx); !errors.Is(err, errCrash) {
		t.Fatalf("step with meta failing: %v", err)
	}
	fm.fail = false
	queued := 0
	for range 100 {
		r, err := inv.Step(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		queued += r.Queued
		if r.Finished {
			break
		}
	}
	if queued != len(orphans) || len(f.garbage(t)) != len(orphans) {
		t.Fatalf("queued %d after the failure, want all %d orphans", queued, len(orphans))
	}
}
