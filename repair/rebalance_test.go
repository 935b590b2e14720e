package repair_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/placement"
	"github.com/shale-store/shale/repair"
	"github.com/shale-store/shale/storage"
)

// rebalanceFixture is a loop with a rebalancer over in-memory nodes, whose
// meta counts every shard update so the test can see each commit.
type rebalanceFixture struct {
	md    *meta.Store
	nodes memNodes
	co    *object.Coordinator
	loop  *repair.Loop
	data  map[string][]byte
}

func newRebalanceFixture(t *testing.T, n int, tune ...func(*repair.Config)) *rebalanceFixture {
	t.Helper()
	md, err := meta.Open(meta.Config{FS: vfs.NewMem(), GarbageGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	f := &rebalanceFixture{md: md, nodes: memNodes{}, data: map[string][]byte{}}
	for i := range n {
		f.addNode(t, i)
	}
	co, err := object.New(object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: 8 << 10, GarbageGrace: 1, MapRefresh: time.Nanosecond}, md, f.nodes)
	if err != nil {
		t.Fatal(err)
	}
	f.co = co
	cfg := repair.Config{Concurrency: 2, PublishEvery: -1,
		Rebalance: repair.RebalanceConfig{Mover: co, Scanner: md, ScanPerPass: 7, Settle: -1}}
	for _, f := range tune {
		f(&cfg)
	}
	f.loop = repair.NewLoop(cfg, md, co)
	if err := md.CreateBucket(context.Background(), "b", ""); err != nil {
		t.Fatal(err)
	}
	return f
}

// addNode registers node-i in zone z(i%3) with a store.
func (f *rebalanceFixture) addNode(t *testing.T, i int) {
	t.Helper()
	id := cluster.NodeID(fmt.Sprintf("node-%d", i))
	f.nodes[id] = storage.NewMem(storage.MemConfig{})
	if err := f.md.Heartbeat(context.Background(), meta.NodeReport{ID: id, Addr: string(id), Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%3), Rack: "r", Host: string(id)}, Capacity: 1 << 40, Free: 1 << 40}); err != nil {
		t.Fatal(err)
	}
}

func (f *rebalanceFixture) put(t *testing.T, rng *rand.Rand, key string) {
	t.Helper()
	body := make([]byte, rng.IntN(40_000))
	for j := range body {
		body[j] = byte(rng.Uint32())
	}
	if _, err := f.co.PutObject(context.Background(), object.PutInput{Bucket: "b", Key: key, Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	f.data[key] = body
}

// manifests returns every manifest.
func (f *rebalanceFixture) manifests(t *testing.T) []meta.Manifest {
	t.Helper()
	ms, err := f.md.ScanManifests(context.Background(), "", "", 100_000)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// minimalMoves is what placement says must move: per segment, the shards
// on nodes outside the set Place now chooses, and their bytes.
func (f *rebalanceFixture) minimalMoves(t *testing.T) (shards int, bytes int64) {
	t.Helper()
	mp, err := f.md.Map(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := placement.NewPlanner(mp)
	for _, m := range f.manifests(t) {
		for _, seg := range m.Segments {
			target, err := p.Place(fmt.Sprintf("%s.%d", m.VersionID, seg.Number), seg.K, len(seg.Shards)-seg.K)
			if err != nil {
				t.Fatal(err)
			}
			in := map[cluster.NodeID]bool{}
			for _, n := range target {
				in[n] = true
			}
			for _, r := range seg.Shards {
				if !in[r.Node] {
					shards++
					bytes += r.Size
				}
			}
		}
	}
	return shards, bytes
}

// runUntilIdle runs passes until the rebalancer is idle, checking after
// every pass that each object keeps all k+m shards healthy.
func (f *rebalanceFixture) runUntilIdle(t *testing.T, maxPasses int) meta.RebalanceStats {
	t.Helper()
	for pass := range maxPasses {
		if _, err := f.loop.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := f.md.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.ObjectsBySpareShards[2] != st.Objects {
			t.Fatalf("pass %d: objects by spare shards %v of %d: a move lowered redundancy", pass, st.ObjectsBySpareShards, st.Objects)
		}
		if rs := f.loop.Stats().Rebalance; rs.State == "idle" && pass > 0 {
			return rs
		}
	}
	t.Fatalf("rebalancer not idle after %d passes: %+v", maxPasses, f.loop.Stats().Rebalance)
	return meta.RebalanceStats{}
}

func (f *rebalanceFixture) checkAll(t *testing.T) {
	t.Helper()
	for key, want := range f.data {
		m, err := f.md.Get(context.Background(), "b", key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		var buf bytes.Buffer
		err = f.co.ReadObject(context.Background(), &buf, m, 0, m.Size)
		if got := buf.Bytes(); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("get %s: %d bytes, want %d (%v)", key, len(got), len(want), err)
		}
	}
}

// TestRebalanceAfterGrowth: 6 nodes over 3 zones grow to 9; the
// rebalancer moves exactly the shards placement wants elsewhere — the
// minimum — never lowering any object's redundancy, and everything reads
// back. A second round finds nothing to move.
func TestRebalanceAfterGrowth(t *testing.T) {
	f := newRebalanceFixture(t, 6)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		f.put(t, rng, fmt.Sprintf("obj-%02d", i))
	}
	// A balanced cluster: the first round plans and finds nothing.
	if rs := f.runUntilIdle(t, 20); rs.ShardsMoved != 0 || rs.LastRoundSeconds < 0 {
		t.Fatalf("moved on a balanced cluster: %+v", rs)
	}
	for i := 6; i < 9; i++ {
		f.addNode(t, i)
	}
	wantShards, wantBytes := f.minimalMoves(t)
	if wantShards == 0 {
		t.Fatal("growth moved nothing in placement: the test shows nothing")
	}
	rs := f.runUntilIdle(t, 50)
	if rs.ShardsMoved != int64(wantShards) || rs.BytesMoved != wantBytes || rs.Failures != 0 || rs.Conflicts != 0 {
		t.Fatalf("moved %d shards, %d bytes (%+v); placement's minimum is %d shards, %d bytes", rs.ShardsMoved, rs.BytesMoved, rs, wantShards, wantBytes)
	}
	if s, _ := f.minimalMoves(t); s != 0 {
		t.Fatalf("%d shards still away from their placement", s)
	}
	for i := 6; i < 9; i++ {
		sks, err := f.md.NodeShards(context.Background(), cluster.NodeID(fmt.Sprintf("node-%d", i)), "", 1000)
		if err != nil || len(sks) == 0 {
			t.Fatalf("new node-%d holds %d shards (%v)", i, len(sks), err)
		}
	}
	f.checkAll(t)
	// The old shards are garbage: collecting it leaves every object whole.
	gc := repair.NewGarbageCollector(repair.GarbageConfig{}, f.md, f.nodes)
	time.Sleep(5 * time.Millisecond) // past the 1 ns grace
	if n, err := gc.Collect(context.Background(), 100_000); err != nil || n < wantShards {
		t.Fatalf("collected %d of %d moved-away shards: %v", n, wantShards, err)
	}
	f.checkAll(t)
	before := rs.ShardsMoved
	if rs := f.runUntilIdle(t, 20); rs.ShardsMoved != before {
		t.Fatalf("a settled cluster moved again: %+v", rs)
	}
	// Metrics export the same figures.
	reg := prometheus.NewRegistry()
	reg.MustRegister(repair.NewCollector(f.loop, f.md))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetName() == "state" && mf.GetName() == "shale_rebalance_state" {
				got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = v
				continue
			}
			got[mf.GetName()] = v
		}
	}
	if got["shale_rebalance_shards_total"] != float64(before) || got["shale_rebalance_bytes_total"] != float64(rs.BytesMoved) ||
		got["shale_rebalance_state/idle"] != 1 || got["shale_rebalance_state/moving"] != 0 || got["shale_rebalance_objects_to_move"] != 0 {
		t.Fatalf("metrics %v", got)
	}
}

// TestRebalanceYieldsToRepair: with a node out and nodes added at once,
// the first passes repair (a few objects per pass, so repair spans many
// passes); nothing moves while an object lacks a shard.
func TestRebalanceYieldsToRepair(t *testing.T) {
	ctx := context.Background()
	f := newRebalanceFixture(t, 7, func(c *repair.Config) { c.MaxPerPass = 2 })
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 30 {
		f.put(t, rng, fmt.Sprintf("obj-%02d", i))
	}
	f.runUntilIdle(t, 20)
	if err := f.md.Admin(ctx, "node-1", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	f.addNode(t, 7)
	f.addNode(t, 8)
	for pass := 0; ; pass++ {
		if pass > 30 {
			t.Fatal("repair did not finish")
		}
		res, err := f.loop.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := f.loop.Stats()
		if res.Candidates > 0 && st.Rebalance.ShardsMoved > 0 {
			t.Fatalf("pass %d moved shards while %d objects needed repair", pass, res.Candidates)
		}
		if res.Candidates == 0 {
			break
		}
	}
	for pass := 0; f.loop.Stats().Rebalance.State != "idle" || pass == 0; pass++ {
		if pass > 50 {
			t.Fatalf("rebalance did not finish: %+v", f.loop.Stats().Rebalance)
		}
		if _, err := f.loop.Pass(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := f.minimalMoves(t); s != 0 {
		t.Fatalf("%d shards still away from their placement", s)
	}
	f.checkAll(t)
}

// TestRebalanceFollowsWeight: raising one node's weight starts a round
// that moves shards to it; a node down (not out) starts none.
func TestRebalanceFollowsWeight(t *testing.T) {
	ctx := context.Background()
	f := newRebalanceFixture(t, 9)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 40 {
		f.put(t, rng, fmt.Sprintf("obj-%02d", i))
	}
	f.runUntilIdle(t, 20)
	held := func(id cluster.NodeID) int {
		sks, err := f.md.NodeShards(ctx, id, "", 10_000)
		if err != nil {
			t.Fatal(err)
		}
		return len(sks)
	}
	before := held("node-4")
	if err := f.md.SetWeight(ctx, "node-4", 8<<40); err != nil {
		t.Fatal(err)
	}
	rs := f.runUntilIdle(t, 50)
	if rs.ShardsMoved == 0 || held("node-4") <= before {
		t.Fatalf("weight x8: node-4 holds %d shards, %d before (%+v)", held("node-4"), before, rs)
	}
	if s, _ := f.minimalMoves(t); s != 0 {
		t.Fatalf("%d shards still away from their placement", s)
	}
	f.checkAll(t)
}

// TestPlacementSignature: a node going down or filling up keeps its
// shards where they are (no new round); a node out, a new node, a weight
// or a domain change starts one.
func TestPlacementSignature(t *testing.T) {
	base := func() []cluster.Node {
		var ns []cluster.Node
		for i := range 4 {
			ns = append(ns, cluster.Node{ID: cluster.NodeID(fmt.Sprintf("n%d", i)), Addr: "a", Domain: cluster.Domain{Zone: "z", Rack: "r", Host: fmt.Sprint(i)}, Capacity: 1 << 40, State: cluster.Up})
		}
		return ns
	}
	sigAt := func(epoch uint64, ns []cluster.Node) uint64 {
		mp, err := cluster.NewMap(epoch, ns)
		if err != nil {
			t.Fatal(err)
		}
		return repair.PlacementSignature(mp)
	}
	sig := func(ns []cluster.Node) uint64 { return sigAt(1, ns) }
	want := sig(base())
	if sigAt(9, base()) != want {
		t.Error("a new map epoch alone changed the placement signature")
	}
	for name, change := range map[string]func([]cluster.Node) []cluster.Node{
		"down":      func(ns []cluster.Node) []cluster.Node { ns[1].State = cluster.Down; return ns },
		"full":      func(ns []cluster.Node) []cluster.Node { ns[1].State = cluster.Full; return ns },
		"used/free": func(ns []cluster.Node) []cluster.Node { ns[1].Used, ns[1].Free = 5, 7; return ns },
	} {
		if got := sig(change(base())); got != want {
			t.Errorf("%s changed the placement signature", name)
		}
	}
	for name, change := range map[string]func([]cluster.Node) []cluster.Node{
		"out":      func(ns []cluster.Node) []cluster.Node { ns[1].State = cluster.Out; return ns },
		"draining": func(ns []cluster.Node) []cluster.Node { ns[1].State = cluster.Draining; return ns },
		"added": func(ns []cluster.Node) []cluster.Node {
			return append(ns, cluster.Node{ID: "n9", Addr: "a", Domain: cluster.Domain{Zone: "z", Rack: "r", Host: "9"}, State: cluster.Up})
		},
		"weight": func(ns []cluster.Node) []cluster.Node { ns[2].Weighted = 1 << 30; return ns },
		"zone":   func(ns []cluster.Node) []cluster.Node { ns[2].Domain.Zone = "y"; return ns },
	} {
		if got := sig(change(base())); got == want {
			t.Errorf("%s did not change the placement signature", name)
		}
	}
}

// TestRebalanceSettles: nodes added one after the other within Settle of
// each other make one round, towards the final placement, once placement
// has held still for Settle; nothing moves meanwhile.
func TestRebalanceSettles(t *testing.T) {
	clk := testclock.New(time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC))
	f := newRebalanceFixture(t, 6, func(c *repair.Config) {
		c.Now = clk.Now
		c.Rebalance.Settle = 10 * time.Second
	})
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 30 {
		f.put(t, rng, fmt.Sprintf("obj-%02d", i))
	}
	f.runUntilIdle(t, 20) // a new leader's first round starts at once
	pass := func() meta.RebalanceStats {
		t.Helper()
		if _, err := f.loop.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		return f.loop.Stats().Rebalance
	}
	for i := 6; i < 9; i++ {
		f.addNode(t, i)
		clk.Advance(4 * time.Second)
		if rs := pass(); rs.State != "settling" || rs.ShardsMoved != 0 || rs.Planned != 0 {
			t.Fatalf("node-%d added: %+v, want settling with nothing planned or moved", i, rs)
		}
	}
	clk.Advance(11 * time.Second)
	wantShards, _ := f.minimalMoves(t)
	rs := f.runUntilIdle(t, 60)
	if rs.ShardsMoved != int64(wantShards) {
		t.Fatalf("moved %d shards, placement's minimum for the final map is %d", rs.ShardsMoved, wantShards)
	}
}

// TestPlanMovesAroundDownNodes: a shard on a down node that placement
// keeps where it is is no reason to skip the object; a move off a down
// node, or onto one, waits; a shard on an out node is repair's.
func TestPlanMovesAroundDownNodes(t *testing.T) {
	var ns []cluster.Node
	for i := range 9 {
		ns = append(ns, cluster.Node{ID: cluster.NodeID(fmt.Sprintf("n%d", i)), Addr: "a:1", State: cluster.Up,
			Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%3), Rack: "r", Host: fmt.Sprint(i)}, Capacity: 1 << 40})
	}
	mapWith := func(states map[cluster.NodeID]cluster.State) *cluster.Map {
		c := slices.Clone(ns)
		for i := range c {
			if s, ok := states[c[i].ID]; ok {
				c[i].State = s
			}
		}
		mp, err := cluster.NewMap(1, c)
		if err != nil {
			t.Fatal(err)
		}
		return mp
	}
	p := placement.NewPlanner(mapWith(nil))
	// An object placed where placement wants it, and one with shard 0
	// moved off its place (to the node placement leaves out).
	placed, err := p.Place("v.1", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(nodes []cluster.NodeID) meta.Manifest {
		seg := meta.Segment{Number: 1, K: 4, M: 2, Size: 4000}
		for i, n := range nodes {
			seg.Shards = append(seg.Shards, meta.ShardRef{Index: i, Node: n, ID: fmt.Sprint(i), Size: 1000})
		}
		return meta.Manifest{VersionID: "v", Segments: []meta.Segment{seg}}
	}
	var spare cluster.NodeID
	for _, n := range ns {
		if !slices.Contains(placed, n.ID) && n.Domain.Zone == ns[slices.IndexFunc(ns, func(x cluster.Node) bool { return x.ID == placed[0] })].Domain.Zone {
			spare = n.ID
		}
	}
	if spare == "" {
		t.Skip("no spare node in shard 0's zone")
	}
	misplaced := slices.Clone(placed)
	misplaced[0] = spare

	down := map[cluster.NodeID]cluster.State{placed[1]: cluster.Down}
	if mv, _, ok := repair.PlanMoves(p, mapWith(down), manifest(placed)); !ok || len(mv) != 0 {
		t.Fatalf("in place with a shard on a down node: %v ok=%v, want nothing to do", mv, ok)
	}
	if mv, _, ok := repair.PlanMoves(p, mapWith(nil), manifest(misplaced)); !ok || len(mv) != 1 || mv[0].From != spare || mv[0].To != placed[0] {
		t.Fatalf("one shard off its place: %+v ok=%v", mv, ok)
	}
	if _, _, ok := repair.PlanMoves(p, mapWith(map[cluster.NodeID]cluster.State{spare: cluster.Down}), manifest(misplaced)); ok {
		t.Fatal("a move off a down node was planned")
	}
	if _, _, ok := repair.PlanMoves(p, mapWith(map[cluster.NodeID]cluster.State{placed[0]: cluster.Full}), manifest(misplaced)); ok {
		t.Fatal("a move onto a full node was planned")
	}
	if _, _, ok := repair.PlanMoves(p, mapWith(map[cluster.NodeID]cluster.State{placed[2]: cluster.Out}), manifest(placed)); ok {
		t.Fatal("an object with a shard on an out node was planned (repair's)")
	}
}

// stallingMover blocks every move until its context ends, and counts them.
type stallingMover struct {
	started chan struct{}
}

func (s stallingMover) MoveShards(ctx context.Context, bucket, key string, gen uint64, moves []object.ShardMove) (object.MoveResult, error) {
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return object.MoveResult{}, ctx.Err()
}

// TestRebalanceYieldsWhenTheMapChanges: a change of the map (here a node
// registering) cuts the moves in flight short within about an Interval,
// so a pass never holds repair back behind a long copy.
func TestRebalanceYieldsWhenTheMapChanges(t *testing.T) {
	f := newRebalanceFixture(t, 6)
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 20 {
		f.put(t, rng, fmt.Sprintf("obj-%02d", i))
	}
	f.runUntilIdle(t, 20)
	sm := stallingMover{started: make(chan struct{}, 1)}
	loop := repair.NewLoop(repair.Config{Concurrency: 1, Interval: 20 * time.Millisecond, PublishEvery: -1,
		Rebalance: repair.RebalanceConfig{Mover: sm, Scanner: f.md, Settle: -1, StepTime: time.Hour}}, f.md, f.co)
	f.addNode(t, 6)
	if _, err := loop.Pass(context.Background()); err != nil { // plans the round
		t.Fatal(err)
	}
	if rs := loop.Stats().Rebalance; rs.State != "moving" {
		t.Fatalf("after one pass: %+v, want moving", rs)
	}
	done := make(chan error, 1)
	go func() { _, err := loop.Pass(context.Background()); done <- err }()
	select {
	case <-sm.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no move started")
	}
	f.addNode(t, 7) // the map's epoch moves on
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a map change did not cut the stalled moves short")
	}
	if rs := loop.Stats().Rebalance; rs.Failures != 0 || rs.ShardsMoved != 0 {
		t.Fatalf("after the cut: %+v (a cut-short move is neither a failure nor a move)", rs)
	}
}
