package repair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	"github.com/shale-store/shale/storage"
)

// *meta.Store is the GarbageMeta the meta process passes.
var _ repair.GarbageMeta = (*meta.Store)(nil)

var errNodeDown = errors.New("test: node down")

// delStore is a node's shard store whose deletes the test counts and can
// make fail (down) or hang until cancelled (stall).
type delStore struct {
	*storage.Mem

	mu          sync.Mutex // guards down, stall, dels
	down, stall bool
	dels        int // deletes that reached the store
}

func (s *delStore) set(down, stall bool) {
	s.mu.Lock()
	s.down, s.stall = down, stall
	s.mu.Unlock()
}

func (s *delStore) deletes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dels
}

func (s *delStore) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	down, stall := s.down, s.stall
	s.dels++
	s.mu.Unlock()
	switch {
	case down:
		return errNodeDown
	case stall:
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Mem.Delete(ctx, id)
}

// gcFixture is six nodes (n00…n05, three zones), a real meta store whose
// cluster map the test sets directly, a coordinator to write through and
// the garbage collector under test.
type gcFixture struct {
	t      *testing.T
	ctx    context.Context
	clk    *testclock.Clock
	store  *meta.Store
	co     *object.Coordinator
	gc     *repair.GarbageCollector
	ids    []cluster.NodeID
	stores map[cluster.NodeID]*delStore

	mu     sync.Mutex // guards states, epoch
	states map[cluster.NodeID]cluster.State
	epoch  uint64
}

// gcMeta is the fixture's meta store with the test's cluster map.
type gcMeta struct {
	*meta.Store
	f *gcFixture
}

func (m gcMeta) Map(context.Context) (*cluster.Map, error) { return m.f.clusterMap() }

// Store dials a node (object.Nodes).
func (f *gcFixture) Store(n cluster.Node) (object.ShardStore, error) {
	s, ok := f.stores[n.ID]
	if !ok {
		return nil, fmt.Errorf("test: no node %s", n.ID)
	}
	return s, nil
}

func newGCFixture(t *testing.T, cfg repair.GarbageConfig) *gcFixture {
	t.Helper()
	f := &gcFixture{
		t: t, ctx: context.Background(),
		clk:    testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		stores: map[cluster.NodeID]*delStore{},
		states: map[cluster.NodeID]cluster.State{},
		epoch:  1,
	}
	for i := range 6 {
		id := cluster.NodeID(fmt.Sprintf("n%02d", i))
		f.ids = append(f.ids, id)
		f.stores[id] = &delStore{Mem: storage.NewMem(storage.MemConfig{Now: f.clk.Now})}
		f.states[id] = cluster.Up
	}
	st, err := meta.Open(meta.Config{FS: vfs.NewMem(), Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.store = st
	md := gcMeta{Store: st, f: f}
	f.co, err = object.New(object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: -1, MapRefresh: time.Nanosecond, Now: f.clk.Now}, md, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.co.CreateBucket(f.ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	cfg.Now = f.clk.Now
	f.gc = repair.NewGarbageCollector(cfg, md, f)
	return f
}

func (f *gcFixture) clusterMap() (*cluster.Map, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ns []cluster.Node
	for i, id := range f.ids {
		ns = append(ns, cluster.Node{ID: id, Addr: "127.0.0.1:1",
			Domain:   cluster.Domain{Zone: fmt.Sprintf("z%d", i%3), Rack: "r0", Host: string(id)},
			Capacity: 1 << 40, State: f.states[id]})
	}
	return cluster.NewMap(f.epoch, ns)
}

// setState changes a node's state in the map; a down or out node's store
// fails (a live out node is set up by the test after this).
func (f *gcFixture) setState(id cluster.NodeID, s cluster.State) {
	f.mu.Lock()
	f.states[id] = s
	f.epoch++
	f.mu.Unlock()
	f.stores[id].set(s == cluster.Down || s == cluster.Out, false)
	f.clk.Advance(time.Millisecond) // past the coordinator's cached map
}

func (f *gcFixture) state(id cluster.NodeID) cluster.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[id]
}

func (f *gcFixture) put(key string, data []byte) meta.Manifest {
	f.t.Helper()
	m, err := f.co.PutObject(f.ctx, object.PutInput{Bucket: "b", Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
	return m
}

func (f *gcFixture) collect(limit int) (int, error) { return f.gc.Collect(f.ctx, limit) }

// garbage is the queued garbage as a set of "node/shard".
func (f *gcFixture) garbage() map[string]bool {
	f.t.Helper()
	gs, err := f.store.ListGarbage(f.ctx, 100000)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, g := range gs {
		out[string(g.Node)+"/"+g.ShardID] = true
	}
	return out
}

// garbageOn counts the queued entries on node id.
func (f *gcFixture) garbageOn(id cluster.NodeID) int {
	n := 0
	for g := range f.garbage() {
		if strings.HasPrefix(g, string(id)+"/") {
			n++
		}
	}
	return n
}

// stored is every shard on every node as a set of "node/shard".
func (f *gcFixture) stored() map[string]bool {
	f.t.Helper()
	out := map[string]bool{}
	for _, id := range f.ids {
		infos, err := f.stores[id].List(f.ctx, "", "", 100000)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, in := range infos {
			out[string(id)+"/"+in.ID] = true
		}
	}
	return out
}

// overwritten puts and overwrites n keys, so every node holds n garbage
// shards (one of each first version), and returns the first versions.
func (f *gcFixture) overwritten(n int) []meta.Manifest {
	var olds []meta.Manifest
	for i := range n {
		k := string(rune('a' + i))
		olds = append(olds, f.put(k, body(5000, byte(60+i))))
		f.put(k, body(100, byte(70+i)))
	}
	return olds
}

// shardNode is the node holding shard i of m's first segment.
func shardNode(m meta.Manifest, i int) cluster.NodeID { return m.Segments[0].Shards[i].Node }

// An out node that is alive again has its stale shards deleted; while it
// is dead, the first failure ends the try and puts the node off for
// OutRetry.
func TestCollectGarbageOnOutNodeThatIsAlive(t *testing.T) {
	f := newGCFixture(t, repair.GarbageConfig{})
	olds := f.overwritten(2)
	out := shardNode(olds[0], 0)
	f.setState(out, cluster.Out) // and its store fails: out and dead
	f.clk.Advance(time.Hour)

	n, err := f.collect(100)
	if err != nil || n != 10 {
		t.Fatalf("collect with a dead out node: %d %v (want 10, no error)", n, err)
	}
	if g := f.garbageOn(out); g != 2 || len(f.garbage()) != 2 {
		t.Fatalf("garbage left: %v, want the 2 entries on %s", keys(f.garbage()), out)
	}
	tried := f.stores[out].deletes()
	if tried != 1 {
		t.Fatalf("%d deletes tried on the dead out node, want 1 (the first failure ends the try)", tried)
	}

	// The node comes back but stays out (until an operator's "in"). Within
	// OutRetry of the failed try it is left alone.
	f.stores[out].set(false, false)
	f.clk.Advance(time.Minute / 2)
	if n, err := f.collect(100); err != nil || n != 0 {
		t.Fatalf("collect within OutRetry: %d %v", n, err)
	}
	if got := f.stores[out].deletes(); got != tried {
		t.Fatalf("the out node was tried again within OutRetry (%d deletes)", got-tried)
	}
	f.clk.Advance(time.Minute / 2)
	if n, err := f.collect(100); err != nil || n != 2 {
		t.Fatalf("collect once OutRetry passed: %d %v (want 2)", n, err)
	}
	if g := f.garbage(); len(g) != 0 {
		t.Fatalf("garbage left: %v", keys(g))
	}
	for _, m := range olds {
		for _, r := range m.Segments[0].Shards {
			if f.stored()[string(r.Node)+"/"+r.ID] {
				t.Fatalf("stale shard %s/%s still stored", r.Node, r.ID)
			}
		}
	}
	if f.state(out) != cluster.Out {
		t.Fatal("collection changed the node's state")
	}
}

// A blackholed out node costs one OutTimeout per OutRetry, and no error.
func TestCollectGarbageStalledOutNodeIsBounded(t *testing.T) {
	f := newGCFixture(t, repair.GarbageConfig{OutTimeout: 300 * time.Millisecond})
	olds := f.overwritten(3)
	out := shardNode(olds[0], 0)
	f.setState(out, cluster.Out)
	f.stores[out].set(false, true) // a blackholed address: no answer
	f.clk.Advance(time.Hour)

	// Returns (each delete there is cut off after OutTimeout) with every
	// other node's garbage collected and no error for the out node.
	n, err := f.collect(100)
	if err != nil || n != 15 {
		t.Fatalf("collect with a stalled out node: %d %v (want 15, no error)", n, err)
	}
	if g := f.garbageOn(out); g != 3 {
		t.Fatalf("%d entries left on the stalled out node, want 3", g)
	}
	if d := f.stores[out].deletes(); d != 1 {
		t.Fatalf("%d deletes tried on the stalled out node, want 1", d)
	}
	// Put off: the next calls within OutRetry do not wait on it at all.
	for range 3 {
		if n, err := f.collect(100); err != nil || n != 0 {
			t.Fatalf("collect again: %d %v", n, err)
		}
	}
	if d := f.stores[out].deletes(); d != 1 {
		t.Fatalf("%d deletes tried within OutRetry, want 1", d)
	}
}

// A down node is not tried (its entries wait); entries of a node the map
// no longer knows are dropped.
func TestCollectGarbageSkipsDownNodeButNotUnknown(t *testing.T) {
	f := newGCFixture(t, repair.GarbageConfig{})
	olds := f.overwritten(1)
	down := shardNode(olds[0], 1)
	f.setState(down, cluster.Down)
	f.stores[down].set(false, false) // alive or not, a down node is not tried
	f.clk.Advance(time.Hour)
	if err := f.store.AddGarbage(f.ctx, []meta.Garbage{{Node: "gone", ShardID: "x", NotBefore: f.clk.Now()}}); err != nil {
		t.Fatal(err)
	}
	n, err := f.collect(100)
	if err != nil || n != 6 {
		t.Fatalf("collect: %d %v (want 5 deleted + 1 unknown node dropped)", n, err)
	}
	if d := f.stores[down].deletes(); d != 0 {
		t.Fatalf("%d deletes on a down node", d)
	}
	if g := f.garbage(); len(g) != 1 || f.garbageOn(down) != 1 {
		t.Fatalf("garbage left: %v", keys(g))
	}
}

// Nothing is collected before it is due; a down node's garbage waits for
// the node and live shards are never collected.
func TestCollectGarbageSkipsDownNodes(t *testing.T) {
	f := newGCFixture(t, repair.GarbageConfig{})
	v1 := f.put("k", body(20000, 49))
	v2 := f.put("k", body(100, 50))
	down := shardNode(v1, 0)
	f.setState(down, cluster.Down)
	// Not due yet: nothing happens.
	if n, err := f.collect(100); err != nil || n != 0 {
		t.Fatalf("collect before due: %d %v", n, err)
	}
	f.clk.Advance(time.Hour)
	n, err := f.collect(100)
	if err != nil || n != 5 {
		t.Fatalf("collect with one node down: %d %v", n, err)
	}
	if g := f.garbage(); len(g) != 1 || !g[string(down)+"/"+v1.Segments[0].Shards[0].ID] {
		t.Fatalf("garbage left: %v", keys(g))
	}
	f.setState(down, cluster.Up)
	n, err = f.collect(100)
	if err != nil || n != 1 {
		t.Fatalf("collect after the node returned: %d %v", n, err)
	}
	st := f.stored()
	live := refs(v2.Segments...)
	if len(st) != len(live) {
		t.Fatalf("stored %v, live %v", keys(st), keys(live))
	}
	for s := range live {
		if !st[s] {
			t.Fatalf("live shard %s collected", s)
		}
	}
	var buf bytes.Buffer
	if err := f.co.ReadObject(f.ctx, &buf, v2, 0, v2.Size); err != nil || !bytes.Equal(buf.Bytes(), body(100, 50)) {
		t.Fatalf("live object damaged by collection: %v", err)
	}
}

// A dead node's backlog at the front of the queue (a node that died
// leaves all its shards there as garbage once repair replaced them) does
// not keep the other nodes' garbage from being collected, whatever the
// limit.
func TestCollectGarbageNotStalledByDownNodeBacklog(t *testing.T) {
	for _, state := range []cluster.State{cluster.Down, cluster.Out} {
		t.Run(state.String(), func(t *testing.T) {
			f := newGCFixture(t, repair.GarbageConfig{})
			dead := cluster.NodeID("n05")
			// 50 entries on the dead node, due long before anything else.
			var backlog []meta.Garbage
			early := f.clk.Now().Add(-time.Hour)
			for i := range 50 {
				backlog = append(backlog, meta.Garbage{Node: dead, ShardID: fmt.Sprintf("old-%02d", i), NotBefore: early})
			}
			if err := f.store.AddGarbage(f.ctx, backlog); err != nil {
				t.Fatal(err)
			}
			olds := f.overwritten(2) // 2 garbage shards on every node, due later
			f.setState(dead, state)
			f.clk.Advance(time.Hour)
			if state == cluster.Out {
				// The dead out node was tried and put off.
				repair.OutTried(f.gc, dead, f.clk.Now(), false)
			}

			n, err := f.collect(20)
			if err != nil || n != 10 {
				t.Fatalf("collect(20) behind a backlog of 50 on %s node: %d %v (want the 10 on live nodes)", state, n, err)
			}
			if g := f.garbage(); len(g) != 52 || f.garbageOn(dead) != 52 {
				t.Fatalf("garbage left: %d entries, %d on %s", len(g), f.garbageOn(dead), dead)
			}
			for _, m := range olds {
				for _, r := range m.Segments[0].Shards {
					if r.Node != dead && f.stored()[string(r.Node)+"/"+r.ID] {
						t.Fatalf("stale shard %s/%s still stored", r.Node, r.ID)
					}
				}
			}
			if d := f.stores[dead].deletes(); d != 0 {
				t.Fatalf("%d deletes tried on the %s node", d, state)
			}
		})
	}
}

// The limit is shared among the nodes: a limit smaller than the due
// garbage still reaches every node, and leftover share goes to the nodes
// that have more.
func TestCollectGarbageSharesLimitAmongNodes(t *testing.T) {
	f := newGCFixture(t, repair.GarbageConfig{})
	// n00 has a backlog of 30 entries due first; every node gets 1 more.
	var gs []meta.Garbage
	early := f.clk.Now().Add(-time.Hour)
	for i := range 30 {
		gs = append(gs, meta.Garbage{Node: "n00", ShardID: fmt.Sprintf("b-%02d", i), NotBefore: early})
	}
	if err := f.store.AddGarbage(f.ctx, gs); err != nil {
		t.Fatal(err)
	}
	f.overwritten(1)
	f.clk.Advance(time.Hour)

	n, err := f.collect(12)
	if err != nil || n != 12 {
		t.Fatalf("collect(12): %d %v", n, err)
	}
	for _, id := range f.ids {
		if id == "n00" {
			continue
		}
		if g := f.garbageOn(id); g != 0 {
			t.Fatalf("%s still has %d entries after a call with room for everyone's share", id, g)
		}
	}
	if g := f.garbageOn("n00"); g != 31-7 {
		t.Fatalf("n00 has %d entries left, want %d (its share plus the others' leftover)", g, 31-7)
	}
	// Later calls drain the backlog.
	for range 3 {
		if _, err := f.collect(12); err != nil {
			t.Fatal(err)
		}
	}
	if g := f.garbage(); len(g) != 0 {
		t.Fatalf("garbage left: %v", keys(g))
	}
}

// A shard can be queued as garbage and then become referenced again: a
// commit whose reply was lost (the writer saw an ambiguous error, found the
// version not yet visible and queued its shards) lands afterwards. The
// collector must not delete a shard meta's index holds; it only drops the
// stale entry.
func TestCollectGarbageSparesReferencedShards(t *testing.T) {
	f := newGCFixture(t, repair.GarbageConfig{})
	data := body(9000, 5)
	m := f.put("k", data)
	if err := f.co.DeleteObject(f.ctx, "b", "k"); err != nil {
		t.Fatal(err)
	}
	if len(f.garbage()) != 6 {
		t.Fatalf("garbage after delete = %v", keys(f.garbage()))
	}
	// The late commit: the same shards are referenced again while their
	// garbage entries stay queued.
	m2, err := f.store.Commit(f.ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour)
	n, err := f.collect(100)
	if err != nil || n != 6 {
		t.Fatalf("collect = %d, %v; want 6 entries dropped", n, err)
	}
	if g := f.garbage(); len(g) != 0 {
		t.Fatalf("garbage left: %v", keys(g))
	}
	for ref := range refs(m2.Segments...) {
		if !f.stored()[ref] {
			t.Fatalf("referenced shard %s was deleted", ref)
		}
	}
	var buf bytes.Buffer
	if err := f.co.ReadObject(f.ctx, &buf, m2, 0, m2.Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("object reads back wrong: %v", err)
	}
}
