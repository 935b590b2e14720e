package object

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	if err := c.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.K != 4 || c.M != 2 || c.WriteQuorum != 5 || c.BlockSize != erasure.DefaultBlockSize {
		t.Fatalf("defaults: %+v", c)
	}
	for _, bad := range []Config{{K: 4, M: 2, WriteQuorum: 3}, {K: 4, M: 2, WriteQuorum: 7}, {K: -1}, {K: 4, M: 2, ReadTimeout: -1},
		{K: 4, M: 2, WriteQuorum: 4}, {K: 6, M: 3, WriteQuorum: 6}} { // k: acknowledged without redundancy
		if err := bad.setDefaults(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want ErrInvalidConfig", bad, err)
		}
	}
	c = Config{K: 3, M: 0}
	if err := c.setDefaults(); err != nil || c.WriteQuorum != 3 {
		t.Fatalf("k=3 m=0: quorum %d, %v", c.WriteQuorum, err)
	}
}

func TestRoundTrip(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	bs, k := 4096, 4
	for _, size := range []int{0, 1, bs - 1, bs, bs + 1, k*bs - 1, k * bs, k*bs + 1, 3*k*bs + 17} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := pattern(uint64(size), size)
			key := fmt.Sprintf("obj-%d", size)
			m := h.put(key, data)
			if m.Size != int64(size) || m.ETag != md5hex(data) || m.Generation == 0 {
				t.Fatalf("manifest size %d etag %s gen %d", m.Size, m.ETag, m.Generation)
			}
			if len(m.Segments) != 1 || len(m.Segments[0].Shards) != 6 {
				t.Fatalf("segments %+v", m.Segments)
			}
			nodes := map[cluster.NodeID]bool{}
			for i, r := range m.Segments[0].Shards {
				if r.Node == "" || r.Index != i || r.ID != shardID(m.VersionID, 1, i) {
					t.Fatalf("shard %d: %+v", i, r)
				}
				nodes[r.Node] = true
			}
			if len(nodes) != 6 {
				t.Fatalf("shards on %d distinct nodes", len(nodes))
			}
			head, err := h.c.HeadObject(h.ctx, testBucket, key)
			if err != nil || head.VersionID != m.VersionID {
				t.Fatalf("head: %v %+v", err, head)
			}
			if got := h.mustRead(head, 0, int64(size)); !bytes.Equal(got, data) {
				t.Fatalf("full read differs (%d bytes vs %d)", len(got), size)
			}
			for _, r := range [][2]int{{0, 1}, {size / 2, size / 3}, {size - 1, 1}, {bs - 1, 2}, {k*bs - 1, 2}, {1, size - 2}} {
				off, n := r[0], r[1]
				if off < 0 || n < 0 || off+n > size {
					continue
				}
				if got := h.mustRead(m, int64(off), int64(n)); !bytes.Equal(got, data[off:off+n]) {
					t.Fatalf("range [%d,+%d) differs", off, n)
				}
			}
			if _, err := h.read(m, int64(size), 1); !errors.Is(err, ErrInvalidRange) {
				t.Fatalf("read past end: %v", err)
			}
		})
	}
}

func TestOverwriteAndDelete(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	v1 := h.put("k", []byte("first version"))
	v2 := h.put("k", []byte("second"))
	if v1.VersionID == v2.VersionID || v2.Generation <= v1.Generation {
		t.Fatalf("versions %s/%d then %s/%d", v1.VersionID, v1.Generation, v2.VersionID, v2.Generation)
	}
	head, err := h.c.HeadObject(h.ctx, testBucket, "k")
	if err != nil || head.VersionID != v2.VersionID {
		t.Fatalf("head after overwrite: %v %+v", err, head)
	}
	// The old version's shards are garbage, the new one's are not.
	g := h.garbage()
	for r := range liveRefs(v1) {
		if !g[r] {
			t.Errorf("old shard %s not queued as garbage", r)
		}
	}
	for r := range liveRefs(v2) {
		if g[r] {
			t.Errorf("live shard %s queued as garbage", r)
		}
	}
	// A reader holding the old manifest still reads it until collection.
	if got := h.mustRead(v1, 0, v1.Size); string(got) != "first version" {
		t.Fatalf("old version read %q", got)
	}
	lr, err := h.c.ListObjects(h.ctx, testBucket, meta.ListOptions{Limit: 10})
	if err != nil || len(lr.Objects) != 1 || lr.Objects[0].ETag != v2.ETag {
		t.Fatalf("list: %v %+v", err, lr)
	}
	if err := h.c.DeleteObject(h.ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.DeleteObject(h.ctx, testBucket, "k"); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
	if _, err := h.c.HeadObject(h.ctx, testBucket, "k"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("head after delete: %v", err)
	}
	if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: "nope", Key: "k", Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, meta.ErrNoSuchBucket) {
		t.Fatalf("put to missing bucket: %v", err)
	}
}

func TestReadCollectedVersionIsUnreadable(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	v1 := h.put("k", pattern(1, 10000))
	h.put("k", pattern(2, 100))
	h.clock.Advance(time.Hour)
	if n := h.collect(); n != 6 {
		t.Fatalf("collected %d, want 6", n)
	}
	_, err := h.read(v1, 0, v1.Size)
	if !errors.Is(err, ErrUnreadable) {
		t.Fatalf("read of collected version: %v, want ErrUnreadable", err)
	}
}

func TestPutStreamsUnknownSize(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(7, 50000)
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "u", Body: io.MultiReader(bytes.NewReader(data[:10]), bytes.NewReader(data[10:])), Size: -1})
	if err != nil || m.Size != int64(len(data)) {
		t.Fatalf("put unknown size: %v size %d", err, m.Size)
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
		t.Fatal("read differs")
	}
}

func TestPutBodyErrors(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(3, 20000)
	sum := md5.Sum(data)
	cases := []struct {
		name string
		in   PutInput
		want error
	}{
		{"bad digest", PutInput{Body: bytes.NewReader(data), Size: int64(len(data)), ExpectMD5: make([]byte, 16)}, ErrBadDigest},
		{"short body", PutInput{Body: bytes.NewReader(data[:len(data)-1]), Size: int64(len(data))}, ErrIncompleteBody},
		{"long body", PutInput{Body: bytes.NewReader(data), Size: int64(len(data) - 1)}, ErrIncompleteBody},
		{"body error", PutInput{Body: io.MultiReader(bytes.NewReader(data), errReader{errInjected}), Size: -1}, errInjected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Bucket, tc.in.Key = testBucket, "bad"
			_, err := h.c.PutObject(h.ctx, tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := h.c.HeadObject(h.ctx, testBucket, "bad"); !errors.Is(err, meta.ErrNoSuchKey) {
				t.Fatalf("failed put is visible: %v", err)
			}
			// Whatever reached a node is garbage.
			g := h.garbage()
			for s := range h.stored() {
				if !g[s] {
					t.Errorf("shard %s left behind by a failed put is not garbage", s)
				}
			}
		})
	}
	// The right digest passes.
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "good", Body: bytes.NewReader(data), Size: int64(len(data)), ExpectMD5: sum[:]})
	if err != nil || m.ETag != hex.EncodeToString(sum[:]) {
		t.Fatalf("good digest: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestPutDegradedWithNodeDown(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	h.setState("n03", cluster.Down)
	data := pattern(4, 30000)
	m := h.put("d", data)
	unplaced := 0
	for _, r := range m.Segments[0].Shards {
		if r.Node == "" {
			unplaced++
		}
		if r.Node == "n03" {
			t.Fatalf("shard placed on a down node: %+v", r)
		}
	}
	if unplaced != 1 {
		t.Fatalf("%d unplaced shards, want 1", unplaced)
	}
	q, err := h.store.Degraded(h.ctx, 10)
	if err != nil || len(q) != 1 || q[0].Key != "d" {
		t.Fatalf("repair queue: %v %+v", err, q)
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
		t.Fatal("degraded object reads back wrong")
	}
	// Two nodes down: 4 placeable < quorum 5.
	h.setState("n04", cluster.Down)
	if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "e", Body: bytes.NewReader(data), Size: int64(len(data))}); !errors.Is(err, ErrNoPlacement) {
		t.Fatalf("put with 2 of 6 down: %v, want ErrNoPlacement", err)
	}
}

func TestPutOneShardFailsStillCommits(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	h.stores["n01"].set(faults{putErr: true})
	m := h.put("p", pattern(5, 40000))
	var failedID string
	for _, r := range m.Segments[0].Shards {
		if r.Node == "" {
			failedID = shardID(m.VersionID, 1, r.Index)
		}
	}
	if failedID == "" {
		t.Fatalf("no shard missing despite a failing node: %+v", m.Segments[0].Shards)
	}
	if !h.garbage()["n01/"+failedID] {
		t.Fatalf("the failed shard write %s is not queued as garbage", failedID)
	}
	if q, _ := h.store.Degraded(h.ctx, 10); len(q) != 1 {
		t.Fatalf("repair queue %+v", q)
	}
}

func TestPutStalledWriterIsCutOff(t *testing.T) {
	h := newHarness(t, 6, fastDeadlines(testConfig()))
	h.stores["n02"].set(faults{stallPut: true})
	data := pattern(6, 3*4*4096+5)
	m := h.put("s", data)
	for _, r := range m.Segments[0].Shards {
		if r.Node == "n02" {
			t.Fatalf("stalled node holds a committed shard: %+v", r)
		}
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
		t.Fatal("read differs")
	}
}

func TestPutBelowQuorum(t *testing.T) {
	for _, tc := range []struct {
		name    string
		f1, f2  faults
		vacuous bool // whether nothing may reach a node
	}{
		// Two nodes store their shard but the answers are lost: 4 of 6
		// acknowledged, quorum 5. Six shards exist and all are garbage.
		{name: "lost acks", f1: faults{lostAck: true}, f2: faults{lostAck: true}},
		// One node fails, one stalls: the encoder stops early and the other
		// writes are aborted, so possibly nothing is stored at all.
		{name: "fail and stall", f1: faults{putErr: true}, f2: faults{stallPut: true}, vacuous: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 6, fastDeadlines(testConfig()))
			h.stores["n01"].set(tc.f1)
			h.stores["n04"].set(tc.f2)
			data := pattern(8, 3*4*4096)
			_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "q", Body: bytes.NewReader(data), Size: int64(len(data))})
			if !errors.Is(err, ErrQuorum) {
				t.Fatalf("got %v, want ErrQuorum", err)
			}
			if _, err := h.c.HeadObject(h.ctx, testBucket, "q"); !errors.Is(err, meta.ErrNoSuchKey) {
				t.Fatalf("object visible after quorum failure: %v", err)
			}
			g := h.garbage()
			if len(g) != 6 {
				t.Errorf("%d garbage entries, want all 6 attempted shards: %v", len(g), sortedKeys(g))
			}
			st := h.stored()
			if len(st) == 0 && !tc.vacuous {
				t.Fatal("test is vacuous: no shard reached a node")
			}
			for s := range st {
				if !g[s] {
					t.Errorf("stored shard %s is not garbage", s)
				}
			}
			// Garbage collection removes them all once due.
			h.stores["n01"].set(faults{})
			h.stores["n04"].set(faults{})
			h.clock.Advance(time.Hour)
			h.collect()
			if left := h.stored(); len(left) != 0 {
				t.Fatalf("shards left after collection: %v", sortedKeys(left))
			}
			if g := h.garbage(); len(g) != 0 {
				t.Fatalf("garbage left after collection: %v", sortedKeys(g))
			}
		})
	}
}

// shardNode returns the node holding shard i of m's first segment.
func shardNode(m meta.Manifest, i int) cluster.NodeID { return m.Segments[0].Shards[i].Node }

func TestReadAroundDownAndSlowNodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(h *harness, id cluster.NodeID)
	}{
		{"down", func(h *harness, id cluster.NodeID) { h.setState(id, cluster.Down) }},
		{"get error", func(h *harness, id cluster.NodeID) { h.stores[id].set(faults{getErr: true}) }},
		{"slow reads", func(h *harness, id cluster.NodeID) { h.stores[id].set(faults{slowGet: true}) }},
		{"slow open", func(h *harness, id cluster.NodeID) { h.stores[id].set(faults{slowOpen: true}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 6, fastDeadlines(testConfig()))
			data := pattern(9, 5*4*4096+3)
			m := h.put("r", data)
			tc.apply(h, shardNode(m, 0))
			tc.apply(h, shardNode(m, 2))
			if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
				t.Fatal("read differs")
			}
			off := int64(4*4096 + 100)
			if !bytes.Equal(h.mustRead(m, off, 9000), data[off:off+9000]) {
				t.Fatal("ranged read differs")
			}
			if bad, _ := h.store.BadReports(h.ctx, 10); len(bad) != 0 {
				t.Fatalf("unavailable/slow shards were reported bad: %+v", bad)
			}
			// A third unavailable shard is one too many.
			tc.apply(h, shardNode(m, 1))
			if _, err := h.read(m, 0, m.Size); !errors.Is(err, ErrUnreadable) {
				t.Fatalf("read with 3 of 6 shards unavailable: %v", err)
			}
		})
	}
}

func TestReadCorruptAndMissingShardsAreReported(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(10, 3*4*4096)
	m := h.put("c", data)
	r0, r1 := m.Segments[0].Shards[0], m.Segments[0].Shards[1]
	if err := h.stores[r0.Node].mem.Corrupt(r0.ID, erasure.RecordHeaderSize+7); err != nil {
		t.Fatal(err)
	}
	if err := h.stores[r1.Node].mem.Delete(h.ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
		t.Fatal("read differs")
	}
	bad, err := h.store.BadReports(h.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range bad {
		got[b.ShardID] = b.Reason
		if b.Key != "c" || b.Generation != m.Generation {
			t.Errorf("report %+v", b)
		}
	}
	if got[r0.ID] != "corrupt" || got[r1.ID] != "missing" || len(got) != 2 {
		t.Fatalf("reports %v; want %s corrupt and %s missing", got, r0.ID, r1.ID)
	}
	if q, _ := h.store.Degraded(h.ctx, 10); len(q) != 1 {
		t.Fatalf("object not queued for repair: %+v", q)
	}
}

func TestCopyObject(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(11, 2*4*4096+99)
	src := h.put("src", data)
	dst, err := h.c.CopyObject(h.ctx, src, PutInput{Bucket: testBucket, Key: "dst", ContentType: "text/x"})
	if err != nil {
		t.Fatal(err)
	}
	if dst.ETag != src.ETag || dst.ContentType != "text/x" || !bytes.Equal(h.mustRead(dst, 0, dst.Size), data) {
		t.Fatalf("copy: %+v", dst)
	}
	// Same-key copy replaces the version with an identical one.
	same, err := h.c.CopyObject(h.ctx, src, PutInput{Bucket: testBucket, Key: "src", UserMeta: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if same.VersionID == src.VersionID || same.UserMeta["a"] != "b" || !bytes.Equal(h.mustRead(same, 0, same.Size), data) {
		t.Fatalf("same-key copy: %+v", same)
	}
	// A source that cannot be read fails the copy and commits nothing.
	gone := src
	gone.Key = "src-gone"
	for i := 0; i < 3; i++ {
		h.stores[shardNode(src, i)].set(faults{getErr: true})
	}
	if _, err := h.c.CopyObject(h.ctx, gone, PutInput{Bucket: testBucket, Key: "dst2"}); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("copy of unreadable source: %v", err)
	}
	if _, err := h.c.HeadObject(h.ctx, testBucket, "dst2"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("failed copy visible: %v", err)
	}
}

func TestMultipart(t *testing.T) {
	cfg := testConfig()
	cfg.BlockSize = 64 << 10
	h := newHarness(t, 6, cfg)
	u, err := h.c.CreateUpload(h.ctx, meta.Upload{Bucket: testBucket, Key: "mp", ContentType: "application/x-test", UserMeta: map[string]string{"x": "y"}})
	if err != nil || u.ID == "" {
		t.Fatalf("create upload: %v %+v", err, u)
	}
	part1 := pattern(21, MinPartSize)
	part2 := pattern(22, MinPartSize+3)
	part3 := pattern(23, 1000)
	upload := func(n int, data []byte) meta.Part {
		t.Helper()
		p, err := h.c.UploadPart(h.ctx, u.ID, n, PutInput{Bucket: testBucket, Key: "mp", Body: bytes.NewReader(data), Size: int64(len(data))})
		if err != nil {
			t.Fatalf("upload part %d: %v", n, err)
		}
		if p.Segment.ETag != md5hex(data) || p.Segment.Number != n {
			t.Fatalf("part %d: %+v", n, p.Segment)
		}
		return p
	}
	// Part 2 is uploaded twice; the retry has fresh shard ids and the first
	// attempt's shards become garbage.
	first := upload(2, part3)
	p1 := upload(1, part1)
	p2 := upload(2, part2)
	if first.Segment.Shards[0].ID == p2.Segment.Shards[0].ID {
		t.Fatal("retried part reuses shard ids")
	}
	if !h.garbage()[string(first.Segment.Shards[0].Node)+"/"+first.Segment.Shards[0].ID] {
		t.Fatal("replaced part's shards are not garbage")
	}
	p3 := upload(3, part3)
	p4 := upload(4, part3) // never completed
	parts, err := h.c.ListParts(h.ctx, testBucket, "mp", u.ID)
	if err != nil || len(parts) != 4 {
		t.Fatalf("list parts: %v %d", err, len(parts))
	}
	ups, err := h.c.ListUploads(h.ctx, testBucket, meta.UploadListOptions{Prefix: "m"})
	if err != nil || len(ups.Uploads) != 1 {
		t.Fatalf("list uploads: %v %+v", err, ups)
	}
	cp := func(ps ...meta.Part) []CompletePart {
		var out []CompletePart
		for _, p := range ps {
			out = append(out, CompletePart{Number: p.Segment.Number, ETag: `"` + p.Segment.ETag + `"`})
		}
		return out
	}
	for _, bad := range []struct {
		name  string
		parts []CompletePart
		want  error
	}{
		{"descending", cp(p2, p1), ErrInvalidPartOrder},
		{"repeated", cp(p1, p1), ErrInvalidPartOrder},
		{"stale etag", []CompletePart{{1, p1.Segment.ETag}, {2, first.Segment.ETag}}, ErrInvalidPart},
		{"unknown part", append(cp(p1, p2), CompletePart{Number: 5, ETag: p3.Segment.ETag}), ErrInvalidPart},
		{"small part not last", cp(p1, p3, p4), ErrEntityTooSmall},
		{"no parts", nil, ErrInvalidPart},
	} {
		if _, err := h.c.CompleteUpload(h.ctx, testBucket, "mp", u.ID, bad.parts); !errors.Is(err, bad.want) {
			t.Errorf("%s: %v, want %v", bad.name, err, bad.want)
		}
	}
	m, err := h.c.CompleteUpload(h.ctx, testBucket, "mp", u.ID, cp(p1, p2, p3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.CompleteUpload(h.ctx, testBucket, "mp", u.ID, cp(p1, p2, p3)); !errors.Is(err, meta.ErrNoSuchUpload) {
		t.Fatalf("complete of a completed upload: %v", err)
	}
	if head, err := h.c.HeadObject(h.ctx, testBucket, "mp"); err != nil || head.VersionID != m.VersionID {
		t.Fatalf("head: %v", err)
	}
	want := append(append(append([]byte(nil), part1...), part2...), part3...)
	wantETag, _ := MultipartETag([]string{md5hex(part1), md5hex(part2), md5hex(part3)})
	if m.ETag != wantETag || !strings.HasSuffix(m.ETag, "-3") || m.Size != int64(len(want)) || m.ContentType != "application/x-test" || m.UserMeta["x"] != "y" {
		t.Fatalf("manifest etag %s size %d type %s meta %v", m.ETag, m.Size, m.ContentType, m.UserMeta)
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), want) {
		t.Fatal("multipart read differs")
	}
	off := int64(MinPartSize - 10)
	if !bytes.Equal(h.mustRead(m, off, 20), want[off:off+20]) {
		t.Fatal("read across the part boundary differs")
	}
	off = int64(2*MinPartSize + 3 - 5)
	if !bytes.Equal(h.mustRead(m, off, 10), want[off:off+10]) {
		t.Fatal("read across the second part boundary differs")
	}
	// The unused part 4 became garbage on completion.
	g := h.garbage()
	for r := range liveRefs(meta.Manifest{Segments: []meta.Segment{p4.Segment}}) {
		if !g[r] {
			t.Errorf("unused part shard %s is not garbage", r)
		}
	}
}

func TestMultipartETagKnownAnswer(t *testing.T) {
	// md5("a") and md5("b") concatenated, hashed: computed independently.
	a, b := md5.Sum([]byte("a")), md5.Sum([]byte("b"))
	whole := md5.Sum(append(a[:], b[:]...))
	got, err := MultipartETag([]string{hex.EncodeToString(a[:]), hex.EncodeToString(b[:])})
	if err != nil || got != hex.EncodeToString(whole[:])+"-2" {
		t.Fatalf("got %s, %v", got, err)
	}
	if _, err := MultipartETag([]string{"xyz"}); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("bad etag: %v", err)
	}
}

func TestMultipartTooSmallAndCopy(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	src := h.put("src", pattern(30, 3*4096))
	u, err := h.c.CreateUpload(h.ctx, meta.Upload{Bucket: testBucket, Key: "m2"})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := h.c.UploadPartCopy(h.ctx, u.ID, 1, testBucket, "m2", src, 100, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Segment.Size != 5000 || p1.Segment.ETag != md5hex(pattern(30, 3*4096)[100:5100]) {
		t.Fatalf("part copy: %+v", p1.Segment)
	}
	p2, err := h.c.UploadPart(h.ctx, u.ID, 2, PutInput{Bucket: testBucket, Key: "m2", Body: strings.NewReader("tail"), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.c.CompleteUpload(h.ctx, testBucket, "m2", u.ID, []CompletePart{{1, p1.Segment.ETag}, {2, p2.Segment.ETag}})
	if !errors.Is(err, ErrEntityTooSmall) {
		t.Fatalf("small non-last part: %v", err)
	}
	if _, err := h.c.UploadPart(h.ctx, u.ID, 0, PutInput{Bucket: testBucket, Key: "m2", Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("part 0: %v", err)
	}
	if _, err := h.c.UploadPart(h.ctx, "nosuch", 1, PutInput{Bucket: testBucket, Key: "m2", Body: strings.NewReader("x"), Size: 1}); !errors.Is(err, meta.ErrNoSuchUpload) {
		t.Fatalf("unknown upload: %v", err)
	}
	// A single small part is fine: it is the last.
	m, err := h.c.CompleteUpload(h.ctx, testBucket, "m2", u.ID, []CompletePart{{1, p1.Segment.ETag}})
	if err != nil || !bytes.Equal(h.mustRead(m, 0, m.Size), pattern(30, 3*4096)[100:5100]) {
		t.Fatalf("complete single part: %v", err)
	}
	if err := h.c.AbortUpload(h.ctx, testBucket, "m2", u.ID); !errors.Is(err, meta.ErrNoSuchUpload) {
		t.Fatalf("abort completed upload: %v", err)
	}
}
