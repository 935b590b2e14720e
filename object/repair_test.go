package object

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
)

// checkWhole asserts that every shard of m is placed on a distinct Up node
// that holds it, and that the object reads back with any m of its nodes
// unavailable (so all k+m shards are healthy).
func checkWhole(t *testing.T, h *harness, m meta.Manifest, data []byte) {
	t.Helper()
	for si, seg := range m.Segments {
		seen := map[cluster.NodeID]bool{}
		for i, r := range seg.Shards {
			if r.Node == "" || seen[r.Node] || h.state(r.Node) != cluster.Up {
				t.Fatalf("segment %d shard %d: %+v (node state %v)", si, i, r, h.state(r.Node))
			}
			seen[r.Node] = true
			if _, err := h.stores[r.Node].mem.Stat(h.ctx, r.ID); err != nil {
				t.Fatalf("segment %d shard %d (%s on %s): %v", si, i, r.ID, r.Node, err)
			}
		}
		// Read with the data shards' nodes failing reads in pairs: every
		// parity shard must be intact.
		k := seg.K
		for a := 0; a+1 < k; a += 2 {
			na, nb := seg.Shards[a].Node, seg.Shards[a+1].Node
			h.stores[na].set(faults{getErr: true})
			h.stores[nb].set(faults{getErr: true})
			got, err := h.read(m, 0, m.Size)
			h.stores[na].set(faults{})
			h.stores[nb].set(faults{})
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read without shards %d,%d: %v", a, a+1, err)
			}
		}
	}
	if bad, _ := h.store.BadReports(h.ctx, 10); len(bad) != 0 {
		t.Fatalf("bad reports left: %+v", bad)
	}
}

func TestRepairOutNode(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(40, 3*4*4096+11)
	m := h.put("o", data)
	lostNode := shardNode(m, 1)
	h.setState(lostNode, cluster.Out)
	res, err := h.c.RepairObject(h.ctx, testBucket, "o", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rebuilt != 1 || res.Remaining != 0 || res.Conflict || res.Bytes == 0 {
		t.Fatalf("result %+v", res)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "o")
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != res.Generation || got.Generation <= m.Generation {
		t.Fatalf("generation %d, result %d, before %d", got.Generation, res.Generation, m.Generation)
	}
	r1 := got.Segments[0].Shards[1]
	if r1.Node == lostNode || r1.ID == m.Segments[0].Shards[1].ID {
		t.Fatalf("shard 1 not moved: %+v", r1)
	}
	for i, r := range got.Segments[0].Shards {
		if i != 1 && r != m.Segments[0].Shards[i] {
			t.Fatalf("shard %d changed: %+v", i, r)
		}
	}
	if !h.garbage()[string(lostNode)+"/"+m.Segments[0].Shards[1].ID] {
		t.Fatal("replaced shard is not garbage")
	}
	checkWhole(t, h, got, data)
	// Nothing left to do: a second repair is a no-op.
	res, err = h.c.RepairObject(h.ctx, testBucket, "o", nil, nil)
	if err != nil || res.Rebuilt != 0 || res.Remaining != 0 {
		t.Fatalf("second repair: %+v %v", res, err)
	}
}

func TestRepairDegradedPut(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	h.setState("n05", cluster.Down)
	data := pattern(41, 2*4*4096)
	m := h.put("d", data)
	h.setState("n05", cluster.Up)
	res, err := h.c.RepairObject(h.ctx, testBucket, "d", nil, nil)
	if err != nil || res.Rebuilt != 1 || res.Remaining != 0 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "d")
	checkWhole(t, h, got, data)
	if q, _ := h.store.Degraded(h.ctx, 10); len(q) != 0 {
		t.Fatalf("still queued: %+v", q)
	}
	_ = m
}

func TestRepairReportedCorruptShard(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(42, 2*4*4096+5)
	m := h.put("c", data)
	r2 := m.Segments[0].Shards[2]
	if err := h.stores[r2.Node].mem.Corrupt(r2.ID, erasure.RecordHeaderSize+1); err != nil {
		t.Fatal(err)
	}
	h.mustRead(m, 0, m.Size) // reports the corrupt shard
	bad, err := h.store.BadReports(h.ctx, 10)
	if err != nil || len(bad) != 1 {
		t.Fatalf("reports: %v %+v", err, bad)
	}
	// Every node is in use (6 nodes, 4+2): the shard is rewritten on its
	// own node under a new id.
	res, err := h.c.RepairObject(h.ctx, testBucket, "c", bad, nil)
	if err != nil || res.Rebuilt != 1 || res.Remaining != 0 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "c")
	n2 := got.Segments[0].Shards[2]
	if n2.ID == r2.ID {
		t.Fatalf("corrupt shard kept: %+v", n2)
	}
	checkWhole(t, h, got, data)
}

func TestRepairMultipartSegments(t *testing.T) {
	cfg := testConfig()
	cfg.BlockSize = 64 << 10
	h := newHarness(t, 7, cfg)
	u, err := h.c.CreateUpload(h.ctx, meta.Upload{Bucket: testBucket, Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	p1data, p2data := pattern(43, MinPartSize), pattern(44, 777)
	p1, err := h.c.UploadPart(h.ctx, u.ID, 1, PutInput{Bucket: testBucket, Key: "mp", Body: bytes.NewReader(p1data), Size: int64(len(p1data))})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := h.c.UploadPart(h.ctx, u.ID, 2, PutInput{Bucket: testBucket, Key: "mp", Body: bytes.NewReader(p2data), Size: int64(len(p2data))})
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.c.CompleteUpload(h.ctx, testBucket, "mp", u.ID, []CompletePart{{1, p1.Segment.ETag}, {2, p2.Segment.ETag}})
	if err != nil {
		t.Fatal(err)
	}
	// Out a node used by both segments.
	var out cluster.NodeID
	for _, a := range m.Segments[0].Shards {
		for _, b := range m.Segments[1].Shards {
			if a.Node == b.Node {
				out = a.Node
			}
		}
	}
	h.setState(out, cluster.Out)
	res, err := h.c.RepairObject(h.ctx, testBucket, "mp", nil, nil)
	if err != nil || res.Rebuilt != 2 || res.Remaining != 0 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "mp")
	checkWhole(t, h, got, append(append([]byte(nil), p1data...), p2data...))
}

func TestRepairConflictKeepsOverwrite(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	m := h.put("k", pattern(45, 30000))
	h.setState(shardNode(m, 0), cluster.Out)
	newer := pattern(46, 1234)
	var v2 meta.Manifest
	h.md.hookMu.Lock()
	h.md.beforeUpdate = func() { v2 = h.put("k", newer) }
	h.md.hookMu.Unlock()
	res, err := h.c.RepairObject(h.ctx, testBucket, "k", nil, nil)
	if err != nil || !res.Conflict || res.Rebuilt != 0 || res.Bytes == 0 {
		t.Fatalf("repair across an overwrite: %+v %v", res, err)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "k")
	if err != nil || got.VersionID != v2.VersionID || got.Generation != v2.Generation {
		t.Fatalf("head: %v %+v", err, got)
	}
	if !bytes.Equal(h.mustRead(got, 0, got.Size), newer) {
		t.Fatal("overwrite damaged")
	}
	// The repair's new shard is garbage; nothing live is.
	g := h.garbage()
	live := liveRefs(got)
	found := false
	for s := range g {
		if live[s] {
			t.Fatalf("live shard %s queued as garbage", s)
		}
		if bytes.Contains([]byte(s), []byte(".r")) {
			found = true
		}
	}
	if !found {
		t.Fatalf("repair's shard not queued as garbage: %v", sortedKeys(g))
	}
	// Deleted meanwhile: same outcome.
	h.setState(shardNode(got, 1), cluster.Out)
	h.md.hookMu.Lock()
	h.md.beforeUpdate = func() {
		if err := h.c.DeleteObject(h.ctx, testBucket, "k"); err != nil {
			t.Error(err)
		}
	}
	h.md.hookMu.Unlock()
	res, err = h.c.RepairObject(h.ctx, testBucket, "k", nil, nil)
	if err != nil || !res.Conflict {
		t.Fatalf("repair across a delete: %+v %v", res, err)
	}
	if _, err := h.c.RepairObject(h.ctx, testBucket, "k", nil, nil); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("repair of a deleted key: %v", err)
	}
}

func TestRepairTooFewShards(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	m := h.put("k", pattern(47, 30000))
	for i := 0; i < 3; i++ {
		h.setState(shardNode(m, i), cluster.Out)
	}
	res, err := h.c.RepairObject(h.ctx, testBucket, "k", nil, nil)
	if !errors.Is(err, ErrUnreadable) || res.Remaining != 3 || res.Rebuilt != 0 {
		t.Fatalf("repair with 3 of 6 lost: %+v %v", res, err)
	}
}

func TestRepairWithPolicyTreatsDownAsLost(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(48, 20000)
	m := h.put("k", data)
	down := shardNode(m, 4)
	h.setState(down, cluster.Down)
	res, err := h.c.RepairObject(h.ctx, testBucket, "k", nil, nil)
	if err != nil || res.Rebuilt != 0 {
		t.Fatalf("default policy repaired a down node: %+v %v", res, err)
	}
	downIsLost := func(seg int, ref meta.ShardRef, n cluster.Node, known bool) bool {
		return DefaultLost(seg, ref, n, known) || n.State == cluster.Down
	}
	res, err = h.c.RepairObject(h.ctx, testBucket, "k", nil, downIsLost)
	if err != nil || res.Rebuilt != 1 {
		t.Fatalf("down-is-lost policy: %+v %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "k")
	checkWhole(t, h, got, data)
}

func TestRepairReadsFromUpNodes(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(51, 3*4*4096)
	m := h.put("k", data)
	full := shardNode(m, 2)
	h.setState(shardNode(m, 0), cluster.Out)
	h.setState(full, cluster.Full)
	h.stores[full].mu.Lock()
	before := h.stores[full].gets
	h.stores[full].mu.Unlock()
	res, err := h.c.RepairObject(h.ctx, testBucket, "k", nil, nil)
	if err != nil || res.Rebuilt != 1 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	h.stores[full].mu.Lock()
	after := h.stores[full].gets
	h.stores[full].mu.Unlock()
	if after != before {
		t.Fatalf("repair read from a full node (%d gets) while 4 up nodes held shards", after-before)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "k")
	if got.Segments[0].Shards[2].Node != full {
		t.Fatal("a full node's healthy shard was moved")
	}
	if !bytes.Equal(h.mustRead(got, 0, got.Size), data) {
		t.Fatal("read differs")
	}
}
