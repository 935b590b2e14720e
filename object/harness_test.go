package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/shale-store/shale/internal/testclock"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// *meta.Store is the Meta the coordinator runs on in production.
var _ Meta = (*meta.Store)(nil)

// The harness runs a coordinator in process: storage.Mem shard stores
// behind faultStore wrappers, and a real meta.Store on an in-memory
// filesystem whose cluster map the test controls directly.

var (
	errNodeDown = errors.New("test: node down")
	errInjected = errors.New("test: injected fault")
)

// faults is what a faultStore does wrong.
type faults struct {
	down     bool // every call fails
	putErr   bool // Put reads a little, then fails
	stallPut bool // Put reads nothing and blocks until its context ends
	lostAck  bool // Put stores the shard, then fails (the answer was lost)
	getErr   bool // Get fails
	slowGet  bool // Get's reader blocks until its context ends
	slowOpen bool // Get itself blocks until its context ends
}

// faultStore wraps a Mem with injectable faults. It is a ShardStore.
type faultStore struct {
	mem *storage.Mem

	mu sync.Mutex // guards f, puts, gets
	f  faults
	// puts and gets count calls that reached the wrapper.
	puts, gets int
}

func (s *faultStore) set(f faults) {
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
}

func (s *faultStore) faults() faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

func (s *faultStore) Put(ctx context.Context, id string, r io.Reader) (storage.Info, error) {
	s.mu.Lock()
	f := s.f
	s.puts++
	s.mu.Unlock()
	switch {
	case f.down:
		return storage.Info{}, errNodeDown
	case f.stallPut:
		<-ctx.Done()
		return storage.Info{}, ctx.Err()
	case f.putErr:
		_, _ = io.CopyN(io.Discard, r, 100)
		return storage.Info{}, errInjected
	case f.lostAck:
		if _, err := s.mem.Put(ctx, id, r); err != nil {
			return storage.Info{}, err
		}
		return storage.Info{}, errInjected
	}
	return s.mem.Put(ctx, id, r)
}

func (s *faultStore) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	s.mu.Lock()
	f := s.f
	s.gets++
	s.mu.Unlock()
	switch {
	case f.down:
		return nil, errNodeDown
	case f.getErr:
		return nil, errInjected
	case f.slowOpen:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	rc, err := s.mem.Get(ctx, id, off, n)
	if err != nil {
		return nil, err
	}
	if f.slowGet {
		rc.Close()
		return slowReader{ctx}, nil
	}
	return rc, nil
}

func (s *faultStore) Delete(ctx context.Context, id string) error {
	if s.faults().down {
		return errNodeDown
	}
	return s.mem.Delete(ctx, id)
}

// ids lists every shard id the store holds.
func (s *faultStore) ids(t testing.TB) []string {
	t.Helper()
	infos, err := s.mem.List(context.Background(), "", "", 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range infos {
		out = append(out, in.ID)
	}
	return out
}

// slowReader makes no progress until its context ends.
type slowReader struct{ ctx context.Context }

func (r slowReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}
func (r slowReader) Close() error { return nil }

// clock is the shared settable test clock.
type clock = testclock.Clock

// testMeta is the real meta store with a test-controlled cluster map and an
// optional hook before UpdateShards.
type testMeta struct {
	*meta.Store
	h *harness

	hookMu       sync.Mutex
	beforeUpdate func()
	// beforeCommitIf, when set, runs before every conditional commit.
	beforeCommitIf func()
}

func (m *testMeta) CommitIf(ctx context.Context, mf meta.Manifest, cond meta.CommitCondition) (meta.Manifest, error) {
	m.hookMu.Lock()
	f := m.beforeCommitIf
	m.hookMu.Unlock()
	if f != nil {
		f()
	}
	return m.Store.CommitIf(ctx, mf, cond)
}

func (m *testMeta) Map(ctx context.Context) (*cluster.Map, error) { return m.h.clusterMap() }

func (m *testMeta) UpdateShards(ctx context.Context, bucket, key string, gen uint64, upd []meta.ShardUpdate) (meta.Manifest, error) {
	m.hookMu.Lock()
	f := m.beforeUpdate
	m.beforeUpdate = nil
	m.hookMu.Unlock()
	if f != nil {
		f()
	}
	return m.Store.UpdateShards(ctx, bucket, key, gen, upd)
}

type harness struct {
	t     testing.TB
	ctx   context.Context
	clock *clock
	store *meta.Store
	md    *testMeta
	c     *Coordinator

	mu     sync.Mutex // guards states, epoch
	ids    []cluster.NodeID
	stores map[cluster.NodeID]*faultStore
	states map[cluster.NodeID]cluster.State
	epoch  uint64
}

const testBucket = "bkt"

// testConfig is a small, fast layout: 4+2 with 4 KiB blocks, every
// segment erasure coded (no copies for small ones: replicate_test.go covers
// those). Its deadlines
// are generous, since the machine running the tests may be loaded; tests of
// slow nodes shorten them with fastDeadlines (their slow nodes block until
// cancelled, so the outcome never depends on the deadline's length).
func testConfig() Config {
	return Config{
		K: 4, M: 2, BlockSize: 4096, ReplicateMax: -1,
		ReadTimeout: 5 * time.Second,
		WriteStall:  5 * time.Second,
	}
}

// fastDeadlines shortens cfg's deadlines so read-around and write cut-off
// take a fraction of a second.
func fastDeadlines(cfg Config) Config {
	cfg.ReadTimeout = 300 * time.Millisecond
	cfg.WriteStall = 300 * time.Millisecond
	return cfg
}

func newHarness(t testing.TB, nodes int, cfg Config) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		ctx:    context.Background(),
		clock:  testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		stores: map[cluster.NodeID]*faultStore{},
		states: map[cluster.NodeID]cluster.State{},
		epoch:  1,
	}
	for i := range nodes {
		id := cluster.NodeID(fmt.Sprintf("n%02d", i))
		h.ids = append(h.ids, id)
		h.stores[id] = &faultStore{mem: storage.NewMem(storage.MemConfig{Now: h.clock.Now})}
		h.states[id] = cluster.Up
	}
	st, err := meta.Open(meta.Config{FS: vfs.NewMem(), Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.store = st
	h.md = &testMeta{Store: st, h: h}
	cfg.Now = h.clock.Now
	if cfg.Rand == nil {
		cfg.Rand = rand.NewChaCha8([32]byte{1, 2, 3})
	}
	c, err := New(cfg, h.md, h)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	if err := c.CreateBucket(h.ctx, testBucket, ""); err != nil {
		t.Fatal(err)
	}
	return h
}

// Store implements Nodes.
func (h *harness) Store(n cluster.Node) (ShardStore, error) {
	s, ok := h.stores[n.ID]
	if !ok {
		return nil, fmt.Errorf("test: no node %s", n.ID)
	}
	return s, nil
}

func (h *harness) clusterMap() (*cluster.Map, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ns []cluster.Node
	for i, id := range h.ids {
		ns = append(ns, cluster.Node{
			ID:       id,
			Addr:     "127.0.0.1:1",
			Domain:   cluster.Domain{Zone: fmt.Sprintf("z%d", i%3), Rack: "r0", Host: string(id)},
			Capacity: 1 << 40,
			State:    h.states[id],
		})
	}
	return cluster.NewMap(h.epoch, ns)
}

// setState changes a node's state in the map (and its store's down fault to
// match for Down and Out) and lets the coordinator's cached map expire.
func (h *harness) setState(id cluster.NodeID, s cluster.State) {
	h.mu.Lock()
	h.states[id] = s
	h.epoch++
	h.mu.Unlock()
	f := h.stores[id].faults()
	f.down = s == cluster.Down || s == cluster.Out
	h.stores[id].set(f)
	h.clock.Advance(2 * h.c.cfg.MapRefresh)
}

func (h *harness) state(id cluster.NodeID) cluster.State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.states[id]
}

func (h *harness) put(key string, data []byte) meta.Manifest {
	h.t.Helper()
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		h.t.Fatalf("put %s (%d bytes): %v", key, len(data), err)
	}
	return m
}

func (h *harness) read(m meta.Manifest, off, n int64) ([]byte, error) {
	var buf bytes.Buffer
	err := h.c.ReadObject(h.ctx, &buf, m, off, n)
	return buf.Bytes(), err
}

func (h *harness) mustRead(m meta.Manifest, off, n int64) []byte {
	h.t.Helper()
	b, err := h.read(m, off, n)
	if err != nil {
		h.t.Fatalf("read %s [%d,+%d): %v", m.Key, off, n, err)
	}
	return b
}

// garbage returns the queued garbage as a set of "node/shard".
func (h *harness) garbage() map[string]bool {
	h.t.Helper()
	gs, err := h.store.ListGarbage(h.ctx, 100000)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]bool{}
	for _, g := range gs {
		out[string(g.Node)+"/"+g.ShardID] = true
	}
	return out
}

// collect stands in for garbage collection (the repair package's, which
// object cannot import): it deletes every due garbage shard on a readable
// node unless meta's index holds it, forgets those entries, and returns how
// many it forgot.
func (h *harness) collect() int {
	h.t.Helper()
	gs, err := h.store.ListGarbagePage(h.ctx, meta.GarbageQuery{DueBy: h.clock.Now(), Limit: 100000})
	if err != nil {
		h.t.Fatal(err)
	}
	var done []meta.Garbage
	for _, g := range gs {
		if !h.state(g.Node).Readable() {
			continue
		}
		held, err := h.store.HasShard(h.ctx, g.Node, g.ShardID)
		if err != nil {
			h.t.Fatal(err)
		}
		if !held {
			if err := h.stores[g.Node].Delete(h.ctx, g.ShardID); err != nil {
				h.t.Fatalf("collect %s/%s: %v", g.Node, g.ShardID, err)
			}
		}
		done = append(done, g)
	}
	if err := h.store.RemoveGarbage(h.ctx, done); err != nil {
		h.t.Fatal(err)
	}
	return len(done)
}

// stored returns every shard on every node as a set of "node/shard".
func (h *harness) stored() map[string]bool {
	out := map[string]bool{}
	for _, id := range h.ids {
		for _, s := range h.stores[id].ids(h.t) {
			out[string(id)+"/"+s] = true
		}
	}
	return out
}

// liveRefs returns the "node/shard" of every shard of m.
func liveRefs(m meta.Manifest) map[string]bool {
	out := map[string]bool{}
	for _, seg := range m.Segments {
		for _, r := range seg.Shards {
			if r.Node != "" {
				out[string(r.Node)+"/"+r.ID] = true
			}
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pattern returns n deterministic pseudo-random bytes.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
