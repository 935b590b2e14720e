package object

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// freeNode returns a node of h that holds no shard of m's first segment.
func freeNode(t *testing.T, h *harness, m meta.Manifest) cluster.NodeID {
	t.Helper()
	used := map[cluster.NodeID]bool{}
	for _, r := range m.Segments[0].Shards {
		used[r.Node] = true
	}
	for _, id := range h.ids {
		if !used[id] {
			return id
		}
	}
	t.Fatal("no free node")
	return ""
}

func TestMoveShards(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(50, 3*4*4096+7)
	m := h.put("o", data)
	old := m.Segments[0].Shards[2]
	to := freeNode(t, h, m)
	res, err := h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{{Segment: 0, Index: 2, From: old.Node, To: to}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 1 || res.Bytes != old.Size || res.Conflict || res.Generation <= m.Generation {
		t.Fatalf("result %+v", res)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "o")
	if err != nil {
		t.Fatal(err)
	}
	nr := got.Segments[0].Shards[2]
	if nr.Node != to || nr.ID == old.ID || nr.Size != old.Size || nr.Checksum != old.Checksum || nr.Index != 2 {
		t.Fatalf("moved shard %+v, was %+v", nr, old)
	}
	for i, r := range got.Segments[0].Shards {
		if i != 2 && r != m.Segments[0].Shards[i] {
			t.Fatalf("shard %d changed: %+v", i, r)
		}
	}
	// The old shard stays on its node until garbage collection (the grace
	// lets readers of the old placement finish): never fewer than k+m.
	if _, err := h.stores[old.Node].mem.Stat(h.ctx, old.ID); err != nil {
		t.Fatalf("old shard gone at once: %v", err)
	}
	if !h.garbage()[string(old.Node)+"/"+old.ID] {
		t.Fatal("the moved-away shard is not garbage")
	}
	if h.garbage()[string(to)+"/"+nr.ID] {
		t.Fatal("the committed copy is garbage")
	}
	checkWhole(t, h, got, data)
	if !bytesEqual(h.mustRead(got, 0, got.Size), data) {
		t.Fatal("read after move differs")
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestMoveShardsLosesToOverwrite: an overwrite that lands between the copy
// and the commit wins; the copy becomes garbage.
func TestMoveShardsLosesToOverwrite(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	m := h.put("o", pattern(51, 2*4*4096))
	old := m.Segments[0].Shards[0]
	to := freeNode(t, h, m)
	newer := pattern(52, 4096)
	h.md.hookMu.Lock()
	h.md.beforeUpdate = func() { h.put("o", newer) }
	h.md.hookMu.Unlock()
	res, err := h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{{Segment: 0, Index: 0, From: old.Node, To: to}})
	if err != nil || !res.Conflict || res.Moved != 0 || res.Bytes != old.Size {
		t.Fatalf("result %+v, err %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "o")
	if !bytesEqual(h.mustRead(got, 0, got.Size), newer) {
		t.Fatal("the overwrite did not win")
	}
	var copyID string
	for g := range h.garbage() {
		if len(g) > len(to) && g[:len(to)+1] == string(to)+"/" {
			copyID = g
		}
	}
	if copyID == "" {
		t.Fatal("the lost copy is not garbage")
	}
	// A plan made on a generation that is gone commits nothing.
	res, err = h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{{Segment: 0, Index: 0, From: old.Node, To: to}})
	if err != nil || !res.Conflict || res.Bytes != 0 {
		t.Fatalf("stale plan: %+v %v", res, err)
	}
}

func TestMoveShardsRefusals(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	m := h.put("o", pattern(53, 2*4*4096))
	seg := m.Segments[0]
	to := freeNode(t, h, m)
	cases := map[string]ShardMove{
		"wrong source":          {Segment: 0, Index: 1, From: seg.Shards[2].Node, To: to},
		"destination holds one": {Segment: 0, Index: 1, From: seg.Shards[1].Node, To: seg.Shards[3].Node},
		"no such shard":         {Segment: 0, Index: 9, From: seg.Shards[1].Node, To: to},
		"no such segment":       {Segment: 3, Index: 0, From: seg.Shards[0].Node, To: to},
	}
	for name, mv := range cases {
		res, err := h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{mv})
		if !errors.Is(err, ErrMoveRefused) || res.Moved != 0 || res.Bytes != 0 {
			t.Errorf("%s: %+v %v", name, res, err)
		}
	}
	h.setState(to, cluster.Down)
	if _, err := h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{{Segment: 0, Index: 1, From: seg.Shards[1].Node, To: to}}); !errors.Is(err, ErrMoveRefused) {
		t.Errorf("destination down: %v", err)
	}
	h.setState(to, cluster.Full)
	if _, err := h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{{Segment: 0, Index: 1, From: seg.Shards[1].Node, To: to}}); !errors.Is(err, ErrMoveRefused) {
		t.Errorf("destination full: %v", err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "o")
	if got.Generation != m.Generation {
		t.Fatal("a refused move committed")
	}
}

// TestMoveShardsCorruptSource: a source whose records are corrupt is not
// copied (the destination's Put verifies every record); it is reported bad
// for repair. The segment's other move, though it copied fine, does not
// commit alone (one move of a pair can crowd a failure domain): its copy
// is garbage too. Another segment's moves still commit.
func TestMoveShardsCorruptSource(t *testing.T) {
	cfg := testConfig()
	cfg.BlockSize = 64 << 10
	h := newHarness(t, 9, cfg)
	u, err := h.c.CreateUpload(h.ctx, meta.Upload{Bucket: testBucket, Key: "o"})
	if err != nil {
		t.Fatal(err)
	}
	p1data, p2data := pattern(54, MinPartSize), pattern(57, 3*4*4096)
	p1, err := h.c.UploadPart(h.ctx, u.ID, 1, PutInput{Bucket: testBucket, Key: "o", Body: bytes.NewReader(p1data), Size: int64(len(p1data))})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := h.c.UploadPart(h.ctx, u.ID, 2, PutInput{Bucket: testBucket, Key: "o", Body: bytes.NewReader(p2data), Size: int64(len(p2data))})
	if err != nil {
		t.Fatal(err)
	}
	m, err := h.c.CompleteUpload(h.ctx, testBucket, "o", u.ID, []CompletePart{{1, p1.Segment.ETag}, {2, p2.Segment.ETag}})
	if err != nil || len(m.Segments) != 2 {
		t.Fatalf("complete: %d segments, %v", len(m.Segments), err)
	}
	free := func(si int) []cluster.NodeID {
		used := map[cluster.NodeID]bool{}
		for _, r := range m.Segments[si].Shards {
			used[r.Node] = true
		}
		var out []cluster.NodeID
		for _, id := range h.ids {
			if !used[id] {
				out = append(out, id)
			}
		}
		return out
	}
	f0, f1 := free(0), free(1)
	seg := m.Segments[0]
	bad := seg.Shards[0]
	if err := h.stores[bad.Node].mem.Corrupt(bad.ID, 100); err != nil {
		t.Fatal(err)
	}
	res, err := h.c.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{
		{Segment: 0, Index: 0, From: bad.Node, To: f0[0]},
		{Segment: 0, Index: 1, From: seg.Shards[1].Node, To: f0[1]},
		{Segment: 1, Index: 2, From: m.Segments[1].Shards[2].Node, To: f1[0]},
	})
	if err == nil || res.Moved != 1 {
		t.Fatalf("result %+v, err %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "o")
	if got.Segments[0].Shards[0] != bad || got.Segments[0].Shards[1] != seg.Shards[1] {
		t.Fatalf("segment 0 after a failed move: %+v, want unchanged", got.Segments[0].Shards[:2])
	}
	if got.Segments[1].Shards[2].Node != f1[0] {
		t.Fatalf("segment 1's move did not commit: %+v", got.Segments[1].Shards[2])
	}
	reports, _ := h.store.BadReports(h.ctx, 10)
	if len(reports) != 1 || reports[0].ShardID != bad.ID {
		t.Fatalf("bad reports %+v", reports)
	}
	garbageOn := func(n cluster.NodeID) bool {
		for g := range h.garbage() {
			if strings.HasPrefix(g, string(n)+"/") {
				return true
			}
		}
		return false
	}
	if !garbageOn(f0[0]) || !garbageOn(f0[1]) {
		t.Fatal("the copies of the segment that did not move are not garbage")
	}
}

// TestRepairCopiesFromDrainingNode: a draining node's shard is copied as
// stored to its new node (one read of its bytes, from that node only),
// not rebuilt from k others; a draining node that cannot be read has its
// shard rebuilt instead.
func TestRepairCopiesFromDrainingNode(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(55, 3*4*4096+1)
	m := h.put("o", data)
	drain := m.Segments[0].Shards[3]
	h.setState(drain.Node, cluster.Draining)
	gets := map[cluster.NodeID]int{}
	for id, s := range h.stores {
		s.mu.Lock()
		gets[id] = s.gets
		s.mu.Unlock()
	}
	res, err := h.c.RepairObject(h.ctx, testBucket, "o", nil, nil)
	if err != nil || res.Rebuilt != 1 || res.Remaining != 0 || res.Bytes != drain.Size {
		t.Fatalf("repair: %+v %v", res, err)
	}
	for id, s := range h.stores {
		s.mu.Lock()
		n := s.gets - gets[id]
		s.mu.Unlock()
		want := 0
		if id == drain.Node {
			want = 1
		}
		if n != want {
			t.Errorf("node %s served %d reads, want %d (a copy reads the draining node once, nothing else)", id, n, want)
		}
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "o")
	if r := got.Segments[0].Shards[3]; r.Node == drain.Node || r.Checksum != drain.Checksum {
		t.Fatalf("shard 3 after the drain: %+v (was %+v)", r, drain)
	}
	checkWhole(t, h, got, data)

	// Unreadable while draining: rebuilt from the others.
	m2 := h.put("p", data)
	d2 := m2.Segments[0].Shards[0]
	h.setState(d2.Node, cluster.Draining)
	h.stores[d2.Node].set(faults{getErr: true})
	res, err = h.c.RepairObject(h.ctx, testBucket, "p", nil, nil)
	if err != nil || res.Rebuilt == 0 || res.Remaining != 0 {
		t.Fatalf("repair around an unreadable draining node: %+v %v", res, err)
	}
	h.stores[d2.Node].set(faults{})
}

// With nodes that copy shards themselves, a move is pulled by its new node
// from the source (one Get there, one Put on the destination, both the
// node's own: calls on the rebuilding store), and commits as the relayed
// copy does. A corrupt source fails the node-side copy, keeping nothing,
// and the move falls back to the relay, which refuses the bad records and
// reports the shard for repair.
func TestMoveShardsOnTargetNode(t *testing.T) {
	h := newHarness(t, 9, testConfig())
	data := pattern(56, 3*4*4096+3)
	m := h.put("o", data)
	rc, rn := h.repairer()
	old := m.Segments[0].Shards[4]
	to := freeNode(t, h, m)
	res, err := rc.MoveShards(h.ctx, testBucket, "o", m.Generation, []ShardMove{{Segment: 0, Index: 4, From: old.Node, To: to}})
	if err != nil || res.Moved != 1 {
		t.Fatalf("move: %+v %v", res, err)
	}
	if calls, failures, errs := rn.totals(); calls != 1 || failures != 0 {
		t.Fatalf("node-side copies: %d calls, %d failures %v", calls, failures, errs)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "o")
	nr := got.Segments[0].Shards[4]
	info, err := h.stores[to].mem.Stat(h.ctx, nr.ID)
	if nr.Node != to || err != nil || info.Checksum != old.Checksum || info.Size != old.Size {
		t.Fatalf("moved shard %+v, stored %+v (%v)", nr, info, err)
	}
	checkWhole(t, h, got, data)

	// A corrupt source: the node keeps nothing, the relay reports it.
	bad := got.Segments[0].Shards[0]
	if err := h.stores[bad.Node].mem.Corrupt(bad.ID, 50); err != nil {
		t.Fatal(err)
	}
	free := freeNode(t, h, got)
	res, err = rc.MoveShards(h.ctx, testBucket, "o", got.Generation, []ShardMove{{Segment: 0, Index: 0, From: bad.Node, To: free}})
	if err == nil || res.Moved != 0 {
		t.Fatalf("move of a corrupt shard: %+v %v", res, err)
	}
	if _, failures, _ := rn.totals(); failures != 1 {
		t.Fatalf("node-side copy of a corrupt shard did not fail (%d failures)", failures)
	}
	if ids := h.stores[free].ids(t); len(ids) != 0 {
		t.Fatalf("the destination kept %v", ids)
	}
	if reports, _ := h.store.BadReports(h.ctx, 10); len(reports) != 1 || reports[0].ShardID != bad.ID {
		t.Fatalf("bad reports %+v", reports)
	}
}

// A copy whose destination refuses it at once (no such bucket, no such
// upload) says so, not "context canceled": the read side, cut short when
// the write side gave up, does not take the write side's error's place.
func TestCopyIntoMissingDestinationSaysWhy(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	for _, size := range []int{5, 300_000} {
		src := h.put(fmt.Sprintf("src-%d", size), pattern(58, size))
		for range 10 {
			_, err := h.c.CopyObject(h.ctx, src, PutInput{Bucket: "no-such-bucket", Key: "dst"})
			if !errors.Is(err, meta.ErrNoSuchBucket) {
				t.Fatalf("copy of %d bytes into a missing bucket: %v, want no such bucket", size, err)
			}
			_, err = h.c.UploadPartCopy(h.ctx, "no-such-upload", 1, testBucket, "dst", src, 0, src.Size)
			if !errors.Is(err, meta.ErrNoSuchUpload) {
				t.Fatalf("part copy of %d bytes into a missing upload: %v, want no such upload", size, err)
			}
		}
	}
}
