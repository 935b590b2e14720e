package repair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	"github.com/shale-store/shale/storage"
)

// memNodes serves one in-memory shard store per node.
type memNodes map[cluster.NodeID]*storage.Mem

func (m memNodes) Store(n cluster.Node) (object.ShardStore, error) {
	s, ok := m[n.ID]
	if !ok {
		return nil, fmt.Errorf("no node %s", n.ID)
	}
	return s, nil
}

type fixture struct {
	md    *meta.Store
	nodes memNodes
	co    *object.Coordinator
	loop  *repair.Loop
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	ctx := context.Background()
	md, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	f := &fixture{md: md, nodes: memNodes{}}
	for i := 0; i < n; i++ {
		id := cluster.NodeID(fmt.Sprintf("node-%d", i))
		f.nodes[id] = storage.NewMem(storage.MemConfig{})
		if err := md.Heartbeat(ctx, meta.NodeReport{ID: id, Addr: string(id), Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%4), Rack: "r", Host: string(id)}, Capacity: 1 << 40, Free: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	co, err := object.New(object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: -1, GarbageGrace: 1, MapRefresh: time.Nanosecond}, md, f.nodes)
	if err != nil {
		t.Fatal(err)
	}
	f.co = co
	f.loop = repair.NewLoop(repair.Config{Concurrency: 2, Garbage: repair.NewGarbageCollector(repair.GarbageConfig{}, md, f.nodes)}, md, co)
	if err := md.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) healthyCounts(t *testing.T) map[int]int64 {
	t.Helper()
	st, err := f.md.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.ObjectsByHealthyShards
}

func TestLoopRepairsOutNodeAndBitrot(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	rng := rand.New(rand.NewPCG(1, 2))
	sums := map[string][32]byte{}
	for i := 0; i < 30; i++ {
		body := make([]byte, rng.IntN(60_000))
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		key := fmt.Sprintf("obj-%02d", i)
		if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: key, Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		sums[key] = sha256.Sum256(body)
	}
	// Node 3 goes out (operator), and a shard elsewhere rots.
	if err := f.md.Admin(ctx, "node-3", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	m, err := f.md.Get(ctx, "b", "obj-07")
	if err != nil {
		t.Fatal(err)
	}
	var victim meta.ShardRef
	for _, ref := range m.Segments[0].Shards {
		if ref.Node != "node-3" && ref.Node != "" {
			victim = ref
			break
		}
	}
	if err := f.md.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: victim.Node, ShardID: victim.ID}, Reason: "corrupt"}); err != nil {
		t.Fatal(err)
	}
	if c := f.healthyCounts(t); c[6] == 30 {
		t.Fatalf("nothing looks degraded before repair: %v", c)
	}
	for pass := 0; pass < 5; pass++ {
		res, err := f.loop.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Candidates == 0 {
			break
		}
	}
	if c := f.healthyCounts(t); c[6] != 30 {
		t.Fatalf("after repair, objects by healthy shards = %v, want all 30 at 6", c)
	}
	// No shard of any object is on the out node any more, and the old
	// shards on it are garbage.
	sks, err := f.md.NodeShards(ctx, "node-3", "", 10)
	if err != nil || len(sks) != 0 {
		t.Fatalf("node-3 still holds %v (%v)", sks, err)
	}
	st := f.loop.Stats()
	if st.ShardsRepaired == 0 || st.BytesRepaired == 0 {
		t.Fatalf("stats %+v", st)
	}
	if st.LastTimeToRepairSeconds <= 0 { // node-3 went out: an episode was timed
		t.Fatalf("no time-to-repair measured for the out node: %v", st.LastTimeToRepairSeconds)
	}
	// Everything reads back byte-identical even with two more nodes gone.
	for _, id := range []cluster.NodeID{"node-0", "node-5"} {
		delete(f.nodes, id)
	}
	for key, sum := range sums {
		m, err := f.co.HeadObject(ctx, "b", key)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := f.co.ReadObject(ctx, &buf, m, 0, m.Size); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if sha256.Sum256(buf.Bytes()) != sum {
			t.Fatalf("%s: wrong bytes", key)
		}
	}
}

func TestLoopRetiresDrainedNode(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	for i := 0; i < 10; i++ {
		if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: fmt.Sprint(i), Body: bytes.NewReader(make([]byte, 9000)), Size: 9000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.md.Admin(ctx, "node-1", meta.ActionDrain); err != nil {
		t.Fatal(err)
	}
	for pass := 0; pass < 4; pass++ {
		res, err := f.loop.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("pass %d: %+v", pass, res)
	}
	mp, err := f.md.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := mp.Node("node-1"); n.State != cluster.Out {
		sks, _ := f.md.NodeShards(ctx, "node-1", "", 10)
		t.Fatalf("drained node is %s, want out; it still holds %+v", n.State, sks)
	}
	if c := f.healthyCounts(t); c[6] != 10 {
		t.Fatalf("objects by healthy shards = %v", c)
	}
}

// A part of an upload that was never completed does not keep a draining
// node from going out.
func TestDrainIgnoresAbandonedUploadParts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 6)
	up, err := f.co.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "abandoned"})
	if err != nil {
		t.Fatal(err)
	}
	part, err := f.co.UploadPart(ctx, up.ID, 1, object.PutInput{Bucket: "b", Key: "abandoned", Body: bytes.NewReader(make([]byte, 5000)), Size: 5000})
	if err != nil {
		t.Fatal(err)
	}
	victim := part.Segment.Shards[0].Node
	if err := f.md.Admin(ctx, victim, meta.ActionDrain); err != nil {
		t.Fatal(err)
	}
	if _, err := f.loop.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	mp, err := f.md.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := mp.Node(victim); n.State != cluster.Out {
		t.Fatalf("draining node holding only an abandoned part is %s, want out", n.State)
	}
}
