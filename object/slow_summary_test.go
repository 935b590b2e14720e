package object

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// slowFirstWriter takes its first Write longer than ClientYield, as a client
// on a slow link would, and the rest at once.
type slowFirstWriter struct {
	buf   bytes.Buffer
	calls int
	delay time.Duration
}

func (w *slowFirstWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls == 1 {
		time.Sleep(w.delay)
	}
	return w.buf.Write(p)
}

// slowEachWriter stalls longer than ClientYield on every Write whose
// number is in slow (1-based), so the decode restarts at each of them.
type slowEachWriter struct {
	buf   bytes.Buffer
	calls int
	slow  []int
	delay time.Duration
}

func (w *slowEachWriter) Write(p []byte) (int, error) {
	w.calls++
	if slices.Contains(w.slow, w.calls) {
		time.Sleep(w.delay)
	}
	return w.buf.Write(p)
}

// TestSlowClientKeepsSummaryCheck: a whole read that pauses for a slow
// client keeps checking the shards' summaries. The last record of data
// shard 0 is substituted (valid XXH3): a fast read fails with a summary
// mismatch; a read whose client is slow on its first block used to restart
// with ranged shard reads, skip the check and return the substituted bytes.
func TestSlowClientKeepsSummaryCheck(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(23, 3*4*4096)
	m := h.put("three", data)
	ref := m.Segments[0].Shards[0]
	replaceShard(t, h, ref, 2) // the last record of data shard 0
	if _, err := h.read(m, 0, m.Size); !errors.Is(err, errSummaryMismatch) {
		t.Fatalf("fast client: %v, want a summary mismatch", err)
	}
	w := &slowFirstWriter{delay: 300 * time.Millisecond}
	err := h.c.ReadObject(h.ctx, w, m, 0, m.Size)
	if !errors.Is(err, ErrUnreadable) || !errors.Is(err, errSummaryMismatch) {
		t.Fatalf("slow client: err = %v (wrote %d bytes, equal to the object: %v), want ErrUnreadable (summary mismatch)",
			err, w.buf.Len(), bytes.Equal(w.buf.Bytes(), data))
	}
	if r := corruptReports(t, h); r[ref.ID] != "corrupt" {
		t.Fatalf("reports %v; want %s corrupt", r, ref.ID)
	}
}

// TestSlowClientKeepsSummaryCheckMidSegment: the same on an object of eight
// stripes whose client falls behind once or several times in the middle,
// with the substituted record before, at or after the pauses.
func TestSlowClientKeepsSummaryCheckMidSegment(t *testing.T) {
	const stripe = 4 * 4096
	for _, tc := range []struct {
		name  string
		shard int
		which int
		slow  []int // Write numbers (one block each) that stall
	}{
		{"late record, one pause in stripe 2", 0, 7, []int{9}},
		{"late record, pause mid stripe 3", 1, 7, []int{14}},
		{"early record, pause mid stripe 3", 2, 1, []int{14}},
		{"middle record, several pauses", 3, 4, []int{3, 10, 17, 22, 27}},
		{"last record of a short final stripe", 0, 8, []int{6}},
		// Shard 3 holds no object bytes in the short final stripe, so the
		// decode never reads its last record: its summary needs it read.
		{"shard without data in the final stripe, fast client", 3, 3, nil},
		{"shard without data in the final stripe, slow client", 3, 3, []int{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 6, testConfig())
			data := pattern(31, 8*stripe+100) // 8 full stripes and 100 bytes
			m := h.put("eight", data)
			ref := m.Segments[0].Shards[tc.shard]
			replaceShard(t, h, ref, tc.which)
			w := &slowEachWriter{slow: tc.slow, delay: 300 * time.Millisecond}
			err := h.c.ReadObject(h.ctx, w, m, 0, m.Size)
			if !errors.Is(err, ErrUnreadable) || !errors.Is(err, errSummaryMismatch) {
				t.Fatalf("err = %v (wrote %d bytes, equal to the object: %v), want ErrUnreadable (summary mismatch)",
					err, w.buf.Len(), bytes.Equal(w.buf.Bytes(), data))
			}
			if r := corruptReports(t, h); r[ref.ID] != "corrupt" {
				t.Fatalf("reports %v; want %s corrupt", r, ref.ID)
			}
		})
	}
}

// TestSlowClientReadsCorrectData: intact shards read by a client that falls
// behind several times give the object, and nothing is reported — also
// when a data node is down (parity used from the first stripe) or a data
// shard's stream breaks part-way (parity opened mid-segment, its earlier
// records read to check its summary; the broken shard's later records read
// again to check its own).
func TestSlowClientReadsCorrectData(t *testing.T) {
	const stripe = 4 * 4096
	for _, tc := range []struct {
		name string
		prep func(h *harness, m metaManifest)
	}{
		{"healthy", func(*harness, metaManifest) {}},
		{"data node down", func(h *harness, m metaManifest) {
			h.stores[shardNode(m, 1)].set(faults{down: true})
		}},
		{"data shard's stream breaks mid-segment", func(h *harness, m metaManifest) {
			ref := m.Segments[0].Shards[2]
			h.c.nodes = failAfterNodes{inner: h, id: ref.ID, after: 3 * (4096 + 24), once: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 6, testConfig())
			data := pattern(32, 8*stripe+100)
			m := h.put("eight", data)
			tc.prep(h, m)
			w := &slowEachWriter{slow: []int{2, 9, 14, 30}, delay: 300 * time.Millisecond}
			if err := h.c.ReadObject(h.ctx, w, m, 0, m.Size); err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(w.buf.Bytes(), data) {
				t.Fatalf("read %d bytes, not the object", w.buf.Len())
			}
			if r := corruptReports(t, h); len(r) != 0 {
				t.Fatalf("reports %v, want none", r)
			}
		})
	}
}

// TestShardDyingMidReadIsReadAround: a data shard whose node dies after its
// first records were used cannot have its summary checked; the read goes on
// with parity and succeeds with the right bytes (the used records passed
// their record checksums), for a slow client as for a fast one, so a node
// failing mid-read does not fail the read. (Repair, whose output joins the
// manifest, refuses such a source instead: TestRepairChecksParityOpenedMidSegment.)
func TestShardDyingMidReadIsReadAround(t *testing.T) {
	for _, slow := range [][]int{nil, {2, 9}} {
		h := newHarness(t, 6, testConfig())
		data := pattern(35, 8*4*4096+100)
		m := h.put("eight", data)
		ref := m.Segments[0].Shards[2]
		h.c.nodes = failAfterNodes{inner: h, id: ref.ID, after: 3 * (4096 + 24)}
		w := &slowEachWriter{slow: slow, delay: 300 * time.Millisecond}
		if err := h.c.ReadObject(h.ctx, w, m, 0, m.Size); err != nil {
			t.Fatalf("slow writes %v: %v, want the read carried on by parity", slow, err)
		}
		if !bytes.Equal(w.buf.Bytes(), data) {
			t.Fatalf("slow writes %v: wrote %d bytes, not the object", slow, w.buf.Len())
		}
	}
}

// TestSlowClientRangedReopenMustMatch: a node that serves a shard honestly
// to whole reads and substitutes records in ranged ones (it can tell them
// apart) gains nothing when the client is slow: the records a restarted
// decode reads again, behind those it had read ahead, must carry the
// checksums they had the first time. Substituted records past the read
// ahead fail the summary.
func TestSlowClientRangedReopenMustMatch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		which int // record substituted in a ranged read: -1 every one, else the range's first + which
	}{
		{"the first record read again", 0},
		{"every record", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 6, testConfig())
			data := pattern(33, 8*4*4096)
			m := h.put("eight", data)
			ref := m.Segments[0].Shards[0]
			h.c.nodes = rangedLiarNodes{t: t, inner: h, id: ref.ID, which: tc.which}
			if got, err := h.read(m, 0, m.Size); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("fast client: %v, equal %v", err, bytes.Equal(got, data))
			}
			w := &slowEachWriter{slow: []int{5}, delay: 300 * time.Millisecond}
			err := h.c.ReadObject(h.ctx, w, m, 0, m.Size)
			if !errors.Is(err, ErrUnreadable) || !errors.Is(err, errSummaryMismatch) {
				t.Fatalf("slow client: %v (wrote %d bytes, equal to the object: %v), want ErrUnreadable (summary mismatch)",
					err, w.buf.Len(), bytes.Equal(w.buf.Bytes(), data))
			}
			if r := corruptReports(t, h); r[ref.ID] != "corrupt" {
				t.Fatalf("reports %v; want %s corrupt", r, ref.ID)
			}
		})
	}
}

// TestReadChecksParityOpenedMidSegment: a whole read whose data shard's
// stream breaks part-way reads on from a parity shard opened at that
// stripe; that shard's summary is checked all the same (its earlier
// records are read for their checksums), for a fast client and a slow one.
func TestReadChecksParityOpenedMidSegment(t *testing.T) {
	for _, slow := range [][]int{nil, {14}, {2, 14, 20}} {
		h := newHarness(t, 6, testConfig())
		data := pattern(36, 8*4*4096+100)
		m := h.put("eight", data)
		r2, p4 := m.Segments[0].Shards[2], m.Segments[0].Shards[4]
		replaceShard(t, h, p4, 5)
		h.c.nodes = failAfterNodes{inner: h, id: r2.ID, after: 3 * (4096 + 24), once: true}
		w := &slowEachWriter{slow: slow, delay: 300 * time.Millisecond}
		err := h.c.ReadObject(h.ctx, w, m, 0, m.Size)
		if !errors.Is(err, ErrUnreadable) || !errors.Is(err, errSummaryMismatch) {
			t.Fatalf("slow writes %v: %v (wrote %d bytes, equal to the object: %v), want ErrUnreadable (summary mismatch)",
				slow, err, w.buf.Len(), bytes.Equal(w.buf.Bytes(), data))
		}
		if r := corruptReports(t, h); r[p4.ID] != "corrupt" {
			t.Fatalf("reports %v; want %s corrupt", r, p4.ID)
		}
	}
}

// TestRepairChecksParityOpenedMidSegment: a rebuild whose data source fails
// part-way turns to a parity shard from that stripe on; that shard's
// summary is checked all the same (its earlier records are read for it),
// so substituted parity records do not make a committed shard.
func TestRepairChecksParityOpenedMidSegment(t *testing.T) {
	h := newHarness(t, 12, testConfig())
	data := pattern(34, 3*4*4096+11)
	m := h.put("p", data)
	r0, p5 := m.Segments[0].Shards[0], m.Segments[0].Shards[5]
	// Sources are shards 0, 2, 3 and 4; shard 0 fails its own check at
	// stripe 1, and parity shard 5 is opened there.
	if err := h.stores[r0.Node].mem.Corrupt(r0.ID, (4096+24)+24+5); err != nil {
		t.Fatal(err)
	}
	replaceShard(t, h, p5, 1)
	h.setState(shardNode(m, 1), cluster.Out)
	res, err := h.c.RepairObject(h.ctx, testBucket, "p", nil, nil)
	if err == nil || res.Rebuilt != 0 {
		got, _ := h.c.HeadObject(h.ctx, testBucket, "p")
		t.Fatalf("repair through a substituted parity record: %+v, %v; want it refused (shard 1 now %+v)", res, err, got.Segments[0].Shards[1])
	}
	if r := corruptReports(t, h); r[p5.ID] != "corrupt" {
		t.Fatalf("reports %v; want %s corrupt", r, p5.ID)
	}
}

type metaManifest = meta.Manifest

// failAfterNodes: the shard id's reads fail after `after` bytes of the
// stream (counted from the shard's start), as a node that dies part-way;
// once: only a read from the start fails (a connection that broke), later
// ones work.
type failAfterNodes struct {
	inner Nodes
	id    string
	after int64
	once  bool
}

func (n failAfterNodes) Store(node cluster.Node) (ShardStore, error) {
	st, err := n.inner.Store(node)
	if err != nil {
		return nil, err
	}
	return failAfterStore{ShardStore: st, n: n}, nil
}

type failAfterStore struct {
	ShardStore
	n failAfterNodes
}

func (s failAfterStore) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if id != s.n.id {
		return s.ShardStore.Get(ctx, id, off, n)
	}
	if s.n.once && off > 0 {
		return s.ShardStore.Get(ctx, id, off, n)
	}
	if off >= s.n.after {
		return nil, errInjected
	}
	rc, err := s.ShardStore.Get(ctx, id, off, n)
	if err != nil {
		return nil, err
	}
	return &failAfterReader{ReadCloser: rc, left: s.n.after - off}, nil
}

type failAfterReader struct {
	io.ReadCloser
	left int64
}

func (r *failAfterReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errInjected
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	return n, err
}

// rangedLiarNodes: the shard id is served as stored to reads from its
// start, and with records substituted (valid XXH3) to reads from an
// offset: every record (which < 0), or the range's first + which.
type rangedLiarNodes struct {
	t     testing.TB
	inner Nodes
	id    string
	which int
}

func (n rangedLiarNodes) Store(node cluster.Node) (ShardStore, error) {
	st, err := n.inner.Store(node)
	if err != nil {
		return nil, err
	}
	return rangedLiarStore{ShardStore: st, n: n}, nil
}

type rangedLiarStore struct {
	ShardStore
	n rangedLiarNodes
}

func (s rangedLiarStore) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if id != s.n.id || off == 0 {
		return s.ShardStore.Get(ctx, id, off, n)
	}
	rc, err := s.ShardStore.Get(ctx, id, 0, -1)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	which := s.n.which
	if which >= 0 {
		which += int(off / (4096 + 24))
	}
	sub := substitute(s.n.t, b, which)
	if off > int64(len(sub)) {
		return nil, errInjected
	}
	sub = sub[off:]
	if n >= 0 && n < int64(len(sub)) {
		sub = sub[:n]
	}
	return io.NopCloser(strings.NewReader(string(sub))), nil
}
