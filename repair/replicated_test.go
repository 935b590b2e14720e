package repair_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
)

// TestLoopRepairsReplicatedObjects: small objects stored as M+1 copies
// (object.Config.ReplicateMax) are repaired like coded ones — a node out
// and a rotten copy elsewhere — and read back after M more nodes fail.
func TestLoopRepairsReplicatedObjects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	co, err := object.New(object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: 32 << 10, GarbageGrace: 1, MapRefresh: time.Nanosecond}, f.md, f.nodes)
	if err != nil {
		t.Fatal(err)
	}
	f.co = co
	f.loop = repair.NewLoop(repair.Config{Concurrency: 2, Garbage: repair.NewGarbageCollector(repair.GarbageConfig{}, f.md, f.nodes)}, f.md, co)
	sums := map[string][32]byte{}
	for i := range 20 {
		body := bytes.Repeat([]byte{byte(i)}, i*1500) // 0 … 28,500 bytes: all copies
		key := fmt.Sprintf("small-%02d", i)
		m, err := co.PutObject(ctx, object.PutInput{Bucket: "b", Key: key, Body: bytes.NewReader(body), Size: int64(len(body))})
		if err != nil {
			t.Fatal(err)
		}
		if seg := m.Segments[0]; seg.K != 1 || seg.M != 2 || len(seg.Shards) != 3 {
			t.Fatalf("%s stored %d+%d with %d shards, want 3 copies", key, seg.K, seg.M, len(seg.Shards))
		}
		sums[key] = sha256.Sum256(body)
	}
	if err := f.md.Admin(ctx, "node-3", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	m, err := f.md.Get(ctx, "b", "small-07")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range m.Segments[0].Shards {
		if ref.Node != "node-3" {
			if err := f.md.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: ref.Node, ShardID: ref.ID}, Reason: "corrupt"}); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if c := f.healthyCounts(t); c[3] == 20 {
		t.Fatalf("nothing looks degraded before repair: %v", c)
	}
	for range 5 {
		res, err := f.loop.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Candidates == 0 {
			break
		}
	}
	if c := f.healthyCounts(t); c[3] != 20 {
		t.Fatalf("after repair, objects by healthy shards = %v, want all 20 at 3", c)
	}
	if sks, err := f.md.NodeShards(ctx, "node-3", "", 10); err != nil || len(sks) != 0 {
		t.Fatalf("node-3 still holds %v (%v)", sks, err)
	}
	// Two more nodes gone: every object still reads, from its one copy left
	// at worst.
	for _, id := range []cluster.NodeID{"node-0", "node-5"} {
		delete(f.nodes, id)
	}
	for key, sum := range sums {
		m, err := co.HeadObject(ctx, "b", key)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := co.ReadObject(ctx, &buf, m, 0, m.Size); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if sha256.Sum256(buf.Bytes()) != sum {
			t.Fatalf("%s reads back different bytes", key)
		}
	}
}
