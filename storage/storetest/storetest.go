// Package storetest is the conformance suite for storage.Store. Every
// implementation (storage.Disk, storage.Mem, the storage/remote client, fault
// wrappers) runs the same Run so that they agree on the contract in
// storage/store.go: verification of uploads, atomic replacement, ranged reads
// on record boundaries, idempotent deletes, listing with a cursor, the error
// sentinels, and context cancellation.
//
// The suite makes its shard streams with the erasure codec at run time (a
// small block size keeps them a few KiB), so it needs no test data files.
// It does not test durability across crashes or on-disk corruption: those are
// properties of one implementation and are tested beside it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/storage"
)

// Layout of the shard streams the suite makes: K data + M parity shards with
// BlockSize-byte blocks, so a full record is RecordSize bytes and an object of
// StripeBytes*s bytes gives each shard exactly s records.
const (
	K           = 2
	M           = 1
	BlockSize   = 512
	RecordSize  = erasure.RecordHeaderSize + BlockSize
	StripeBytes = K * BlockSize
)

// Shards encodes a deterministic pseudo-random object of size bytes (seeded
// by seed) and returns its K+M shard streams. It fails the test if the codec
// does.
func Shards(t testing.TB, seed int64, size int) [][]byte {
	t.Helper()
	c, err := erasure.New(K, M, BlockSize)
	if err != nil {
		t.Fatalf("erasure.New(%d, %d, %d): %v", K, M, BlockSize, err)
	}
	obj := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(obj)
	bufs := make([]*bytes.Buffer, K+M)
	ws := make([]io.Writer, K+M)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	res, err := c.Encode(context.Background(), bytes.NewReader(obj), ws, K+M)
	if err != nil {
		t.Fatalf("encode %d bytes: %v", size, err)
	}
	for i, e := range res.ShardErrs {
		if e != nil {
			t.Fatalf("encode %d bytes: shard %d: %v", size, i, e)
		}
	}
	out := make([][]byte, K+M)
	for i, b := range bufs {
		out[i] = b.Bytes()
	}
	return out
}

// Stream returns shard 0 of Shards(t, seed, stripes*StripeBytes): a stream of
// exactly `stripes` records of RecordSize bytes.
func Stream(t testing.TB, seed int64, stripes int) []byte {
	t.Helper()
	return Shards(t, seed, stripes*StripeBytes)[0]
}

// Run runs the conformance suite. open must return a new, empty store for
// each call; the suite closes nothing (use t.Cleanup in open).
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"PutGetStat", testPutGetStat},
		{"EmptyStream", testEmptyStream},
		{"PartialLastStripe", testPartialLastStripe},
		{"RangedGet", testRangedGet},
		{"BadRanges", testBadRanges},
		{"NotFound", testNotFound},
		{"InvalidIDs", testInvalidIDs},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"Overwrite", testOverwrite},
		{"ReaderOutlivesOverwrite", testReaderOutlivesOverwrite},
		{"CorruptUploadRefused", testCorruptUpload},
		{"TruncatedUploadRefused", testTruncatedUpload},
		{"CorruptUploadKeepsOld", testCorruptUploadKeepsOld},
		{"ReaderErrorKeepsNothing", testReaderError},
		{"CancelDuringPut", testCancelDuringPut},
		{"CancelledContext", testCancelledContext},
		{"List", testList},
		{"ListPaging", testListPaging},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Usage", testUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ctxT(t *testing.T) context.Context { return t.Context() }

func mustPut(t *testing.T, s storage.Store, id string, data []byte) storage.Info {
	t.Helper()
	info, err := s.Put(ctxT(t), id, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", id, len(data), err)
	}
	return info
}

// readAll gets [off, off+n) of id and reads it to the end.
func readAll(t *testing.T, s storage.Store, id string, off, n int64) ([]byte, error) {
	t.Helper()
	rc, err := s.Get(ctxT(t), id, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func mustRead(t *testing.T, s storage.Store, id string, off, n int64) []byte {
	t.Helper()
	b, err := readAll(t, s, id, off, n)
	if err != nil {
		t.Fatalf("Get(%q, %d, %d): %v", id, off, n, err)
	}
	return b
}

func summary(t *testing.T, stream []byte) uint64 {
	t.Helper()
	v := erasure.NewVerifier(-1)
	if _, err := v.Write(stream); err != nil {
		t.Fatalf("verifier: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("verifier close: %v", err)
	}
	return v.Summary()
}

func mustAbsent(t *testing.T, s storage.Store, id string) {
	t.Helper()
	if _, err := s.Stat(ctxT(t), id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(%q) after failed put: err = %v, want ErrNotFound", id, err)
	}
	if _, err := readAll(t, s, id, 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) after failed put: err = %v, want ErrNotFound", id, err)
	}
	infos, err := s.List(ctxT(t), id, "", 10)
	if err != nil {
		t.Fatalf("List(%q): %v", id, err)
	}
	for _, in := range infos {
		if in.ID == id {
			t.Fatalf("List shows %q after a failed put: %+v", id, in)
		}
	}
}

func testPutGetStat(t *testing.T, s storage.Store) {
	for i, sh := range Shards(t, 1, 3*StripeBytes) {
		id := fmt.Sprintf("obj.0.%d", i)
		info := mustPut(t, s, id, sh)
		if info.ID != id || info.Size != int64(len(sh)) {
			t.Fatalf("Put info = %+v, want id %q size %d", info, id, len(sh))
		}
		if want := summary(t, sh); info.Checksum != want {
			t.Fatalf("Put checksum = %#x, want verifier summary %#x", info.Checksum, want)
		}
		if info.Created.IsZero() {
			t.Fatalf("Put info has zero Created")
		}
		st, err := s.Stat(ctxT(t), id)
		if err != nil {
			t.Fatalf("Stat(%q): %v", id, err)
		}
		if st.ID != info.ID || st.Size != info.Size || st.Checksum != info.Checksum || !st.Created.Equal(info.Created) {
			t.Fatalf("Stat = %+v, Put returned %+v", st, info)
		}
		if got := mustRead(t, s, id, 0, -1); !bytes.Equal(got, sh) {
			t.Fatalf("Get(%q) returned %d bytes differing from the %d put", id, len(got), len(sh))
		}
		if got := mustRead(t, s, id, 0, int64(len(sh))); !bytes.Equal(got, sh) {
			t.Fatalf("Get(%q, 0, size) differs from what was put", id)
		}
	}
}

func testEmptyStream(t *testing.T, s storage.Store) {
	sh := Shards(t, 2, 0)[0]
	if len(sh) != 0 {
		t.Skipf("codec writes %d bytes for an empty object; empty stream case not applicable", len(sh))
	}
	info := mustPut(t, s, "empty", nil)
	if info.Size != 0 {
		t.Fatalf("empty Put size = %d", info.Size)
	}
	if got := mustRead(t, s, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty Get returned %d bytes", len(got))
	}
	if _, err := readAll(t, s, "empty", 1, -1); !errors.Is(err, storage.ErrRange) {
		t.Fatalf("Get(empty, 1, -1): err = %v, want ErrRange", err)
	}
}

func testPartialLastStripe(t *testing.T, s storage.Store) {
	// 3 full stripes and a short last one: the last record is shorter.
	for i, sh := range Shards(t, 3, 3*StripeBytes+100) {
		id := fmt.Sprintf("partial.%d", i)
		mustPut(t, s, id, sh)
		if got := mustRead(t, s, id, 0, -1); !bytes.Equal(got, sh) {
			t.Fatalf("Get(%q) differs from what was put", id)
		}
		// The first three records are full; read them, then the tail.
		if got := mustRead(t, s, id, 0, 3*RecordSize); !bytes.Equal(got, sh[:3*RecordSize]) {
			t.Fatalf("Get(%q, 0, 3 records) differs", id)
		}
		if got := mustRead(t, s, id, 3*RecordSize, -1); !bytes.Equal(got, sh[3*RecordSize:]) {
			t.Fatalf("Get(%q, last record) differs", id)
		}
		if got := mustRead(t, s, id, RecordSize, int64(len(sh))-RecordSize); !bytes.Equal(got, sh[RecordSize:]) {
			t.Fatalf("Get(%q, 1 record .. end) differs", id)
		}
	}
}

func testRangedGet(t *testing.T, s storage.Store) {
	const stripes = 6
	sh := Stream(t, 4, stripes)
	if len(sh) != stripes*RecordSize {
		t.Fatalf("stream is %d bytes, want %d records of %d", len(sh), stripes, RecordSize)
	}
	mustPut(t, s, "ranged", sh)
	for a := 0; a <= stripes; a++ {
		for b := a; b <= stripes; b++ {
			off, n := int64(a*RecordSize), int64((b-a)*RecordSize)
			if got := mustRead(t, s, "ranged", off, n); !bytes.Equal(got, sh[off:off+n]) {
				t.Fatalf("Get(ranged, %d, %d): %d bytes, differing from the source", off, n, len(got))
			}
		}
		off := int64(a * RecordSize)
		if got := mustRead(t, s, "ranged", off, -1); !bytes.Equal(got, sh[off:]) {
			t.Fatalf("Get(ranged, %d, -1) differs from the source", off)
		}
	}
}

func testBadRanges(t *testing.T, s storage.Store) {
	sh := Stream(t, 5, 4)
	size := int64(len(sh))
	mustPut(t, s, "bad-ranges", sh)
	for _, r := range [][2]int64{
		{-1, -1},
		{-RecordSize, RecordSize},
		{1, -1},
		{RecordSize - 1, RecordSize},
		{0, 1},
		{0, RecordSize + 1},
		{RecordSize, RecordSize / 2},
		{size + RecordSize, -1},
		{size, RecordSize},
		{0, size + RecordSize},
		{RecordSize, size},
		{erasure.RecordHeaderSize, BlockSize},
	} {
		if _, err := readAll(t, s, "bad-ranges", r[0], r[1]); !errors.Is(err, storage.ErrRange) {
			t.Errorf("Get(bad-ranges, %d, %d): err = %v, want ErrRange", r[0], r[1], err)
		}
	}
	// The end of the stream is a boundary: an empty read there is fine.
	if got := mustRead(t, s, "bad-ranges", size, -1); len(got) != 0 {
		t.Fatalf("Get at the end returned %d bytes", len(got))
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	if _, err := s.Stat(ctxT(t), "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(nope): err = %v, want ErrNotFound", err)
	}
	if _, err := readAll(t, s, "nope", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(nope): err = %v, want ErrNotFound", err)
	}
}

// InvalidIDs returns ids every Store must refuse with ErrInvalidID.
func InvalidIDs() []string {
	return []string{
		"", ".", "..", "../x", "a/b", "/abs", "a\\b", ".hidden", "-dash-first", "a..b",
		"sp ace", "nul\x00", "new\nline", "ünï", "a:b", strings.Repeat("x", storage.MaxIDLen+1),
	}
}

// ValidIDs returns ids every Store must accept.
func ValidIDs() []string {
	return []string{"a", "0", "A.b-c_d", "v1.0.3", strings.Repeat("y", storage.MaxIDLen), "x-", "x."}
}

func testInvalidIDs(t *testing.T, s storage.Store) {
	sh := Stream(t, 6, 1)
	for _, id := range InvalidIDs() {
		if _, err := s.Put(ctxT(t), id, bytes.NewReader(sh)); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidID", id, err)
		}
		if _, err := s.Get(ctxT(t), id, 0, -1); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidID", id, err)
		}
		if _, err := s.Stat(ctxT(t), id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("Stat(%q): err = %v, want ErrInvalidID", id, err)
		}
		if err := s.Delete(ctxT(t), id); !errors.Is(err, storage.ErrInvalidID) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidID", id, err)
		}
	}
	for _, id := range ValidIDs() {
		mustPut(t, s, id, sh)
		if got := mustRead(t, s, id, 0, -1); !bytes.Equal(got, sh) {
			t.Errorf("Get(%q) differs from what was put", id)
		}
	}
	u, err := s.Usage(ctxT(t))
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.Shards != int64(len(ValidIDs())) {
		t.Fatalf("Usage.Shards = %d after refusing invalid ids, want %d", u.Shards, len(ValidIDs()))
	}
}

func testDeleteIdempotent(t *testing.T, s storage.Store) {
	sh := Stream(t, 7, 2)
	mustPut(t, s, "del", sh)
	for i := 0; i < 2; i++ {
		if err := s.Delete(ctxT(t), "del"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		mustAbsent(t, s, "del")
	}
	if err := s.Delete(ctxT(t), "never-was"); err != nil {
		t.Fatalf("Delete(never-was): %v", err)
	}
	// The id is reusable after a delete.
	mustPut(t, s, "del", sh)
	if got := mustRead(t, s, "del", 0, -1); !bytes.Equal(got, sh) {
		t.Fatalf("Get after re-put differs")
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	a, b := Stream(t, 8, 2), Stream(t, 9, 5)
	mustPut(t, s, "ow", a)
	info := mustPut(t, s, "ow", b)
	if info.Size != int64(len(b)) || info.Checksum != summary(t, b) {
		t.Fatalf("overwrite info %+v does not describe the new stream", info)
	}
	if got := mustRead(t, s, "ow", 0, -1); !bytes.Equal(got, b) {
		t.Fatalf("Get after overwrite does not return the new stream")
	}
	// Ranges use the new stream's records.
	if got := mustRead(t, s, "ow", 3*RecordSize, RecordSize); !bytes.Equal(got, b[3*RecordSize:4*RecordSize]) {
		t.Fatalf("ranged Get after overwrite differs")
	}
	infos, err := s.List(ctxT(t), "", "", 10)
	if err != nil || len(infos) != 1 || infos[0].Size != int64(len(b)) {
		t.Fatalf("List after overwrite = %+v, %v; want one entry of %d bytes", infos, err, len(b))
	}
	u, err := s.Usage(ctxT(t))
	if err != nil || u.Shards != 1 || u.Used != int64(len(b)) {
		t.Fatalf("Usage after overwrite = %+v, %v; want 1 shard, %d bytes", u, err, len(b))
	}
}

func testReaderOutlivesOverwrite(t *testing.T, s storage.Store) {
	a, b := Stream(t, 10, 4), Stream(t, 11, 4)
	mustPut(t, s, "old", a)
	rc, err := s.Get(ctxT(t), "old", 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	first := make([]byte, RecordSize)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatalf("read first record: %v", err)
	}
	mustPut(t, s, "old", b)
	rest, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading an open shard across an overwrite: %v", err)
	}
	got := append(first, rest...)
	if !bytes.Equal(got, a) {
		t.Fatalf("a reader opened before an overwrite mixed streams (got %d bytes)", len(got))
	}
}

func corruptCopy(stream []byte, at int) []byte {
	c := bytes.Clone(stream)
	c[at] ^= 0x5a
	return c
}

func wantCorrupt(t *testing.T, err error, what string) {
	t.Helper()
	var ce *storage.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: err = %v (%T), want *storage.CorruptError", what, err, err)
	}
}

func testCorruptUpload(t *testing.T, s storage.Store) {
	sh := Stream(t, 12, 4)
	for _, at := range []int{5, erasure.RecordHeaderSize + 3, 2*RecordSize + 100, len(sh) - 1} {
		id := fmt.Sprintf("corrupt-%d", at)
		_, err := s.Put(ctxT(t), id, bytes.NewReader(corruptCopy(sh, at)))
		wantCorrupt(t, err, fmt.Sprintf("Put with byte %d flipped", at))
		mustAbsent(t, s, id)
	}
	u, err := s.Usage(ctxT(t))
	if err != nil || u.Shards != 0 || u.Used != 0 {
		t.Fatalf("Usage after refused puts = %+v, %v; want empty", u, err)
	}
}

func testTruncatedUpload(t *testing.T, s storage.Store) {
	sh := Stream(t, 13, 3)
	for _, n := range []int{1, erasure.RecordHeaderSize, RecordSize - 1, RecordSize + 7, len(sh) - 1} {
		id := fmt.Sprintf("trunc-%d", n)
		_, err := s.Put(ctxT(t), id, bytes.NewReader(sh[:n]))
		wantCorrupt(t, err, fmt.Sprintf("Put of the first %d bytes", n))
		mustAbsent(t, s, id)
	}
}

func testCorruptUploadKeepsOld(t *testing.T, s storage.Store) {
	a, b := Stream(t, 14, 2), Stream(t, 15, 3)
	mustPut(t, s, "keep", a)
	_, err := s.Put(ctxT(t), "keep", bytes.NewReader(corruptCopy(b, RecordSize+50)))
	wantCorrupt(t, err, "corrupt overwrite")
	if got := mustRead(t, s, "keep", 0, -1); !bytes.Equal(got, a) {
		t.Fatalf("a refused overwrite changed the stored shard")
	}
}

// failingReader returns data then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

var errBoom = errors.New("storetest: reader failed")

func testReaderError(t *testing.T, s storage.Store) {
	sh := Stream(t, 16, 4)
	// Fail exactly on a record boundary, where the stream so far is valid.
	_, err := s.Put(ctxT(t), "rerr", &failingReader{data: sh[:2*RecordSize], err: errBoom})
	if err == nil {
		t.Fatalf("Put with a failing reader succeeded")
	}
	mustAbsent(t, s, "rerr")
}

// cancelReader cancels the context after handing out `after` bytes, then
// keeps supplying the rest of the stream (a well-formed one).
type cancelReader struct {
	data   []byte
	after  int
	cancel func()
	n      int
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	if c.n >= c.after {
		c.cancel()
	}
	if len(p) > 64 {
		p = p[:64]
	}
	k := copy(p, c.data)
	c.data = c.data[k:]
	c.n += k
	return k, nil
}

func testCancelDuringPut(t *testing.T, s storage.Store) {
	sh := Stream(t, 17, 40)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	_, err := s.Put(ctx, "cancelled", &cancelReader{data: sh, after: 3 * RecordSize, cancel: cancel})
	if err == nil {
		t.Fatalf("Put whose context was cancelled mid-stream succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Logf("note: cancelled Put returned %v (not wrapping context.Canceled)", err)
	}
	mustAbsent(t, s, "cancelled")
}

func testCancelledContext(t *testing.T, s storage.Store) {
	sh := Stream(t, 18, 1)
	mustPut(t, s, "there", sh)
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if _, err := s.Put(ctx, "cc", bytes.NewReader(sh)); err == nil {
		t.Errorf("Put with a cancelled context succeeded")
	}
	mustAbsent(t, s, "cc")
	if rc, err := s.Get(ctx, "there", 0, -1); err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
		if err == nil {
			t.Errorf("Get with a cancelled context read the whole shard without error")
		}
	}
	if err := s.Delete(ctx, "there"); err == nil {
		t.Errorf("Delete with a cancelled context succeeded")
	}
	if _, err := s.Stat(ctxT(t), "there"); err != nil {
		t.Errorf("shard gone after a Delete with a cancelled context: %v", err)
	}
}

func ids(infos []storage.Info) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.ID
	}
	return out
}

func testList(t *testing.T, s storage.Store) {
	sh := Stream(t, 19, 1)
	all := []string{"a.1", "a.2", "a.10", "ab", "b", "b.0", "c-9"}
	for _, id := range all {
		mustPut(t, s, id, sh)
	}
	sort.Strings(all)
	cases := []struct {
		prefix, after string
		limit         int
		want          []string
	}{
		{"", "", 100, all},
		{"a", "", 100, []string{"a.1", "a.10", "a.2", "ab"}},
		{"a.", "", 100, []string{"a.1", "a.10", "a.2"}},
		{"a.", "a.10", 100, []string{"a.2"}},
		{"a", "", 2, []string{"a.1", "a.10"}},
		{"", "ab", 2, []string{"b", "b.0"}},
		{"", "a", 1, []string{"a.1"}},
		{"", "c-9", 10, nil},
		{"", "zzz", 10, nil},
		{"zz", "", 10, nil},
		{"b", "a", 10, []string{"b", "b.0"}},
		{"b.0", "", 10, []string{"b.0"}},
	}
	for _, c := range cases {
		got, err := s.List(ctxT(t), c.prefix, c.after, c.limit)
		if err != nil {
			t.Fatalf("List(%q, %q, %d): %v", c.prefix, c.after, c.limit, err)
		}
		if g := ids(got); strings.Join(g, ",") != strings.Join(c.want, ",") {
			t.Errorf("List(%q, %q, %d) = %q, want %q", c.prefix, c.after, c.limit, g, c.want)
		}
		for _, in := range got {
			if in.Size != int64(len(sh)) || in.Created.IsZero() {
				t.Errorf("List entry %+v lacks size or created", in)
			}
		}
	}
}

func testListPaging(t *testing.T, s storage.Store) {
	sh := Stream(t, 20, 1)
	var want []string
	for i := 0; i < 23; i++ {
		id := fmt.Sprintf("p%03d", i)
		want = append(want, id)
		mustPut(t, s, id, sh)
	}
	mustPut(t, s, "q", sh)
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 30 {
			t.Fatalf("List paging does not end")
		}
		page, err := s.List(ctxT(t), "p", after, 5)
		if err != nil {
			t.Fatalf("List page: %v", err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 5 {
			t.Fatalf("List returned %d > limit 5", len(page))
		}
		got = append(got, ids(page)...)
		after = page[len(page)-1].ID
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged List = %q, want %q", got, want)
	}
}

func testConcurrentPuts(t *testing.T, s storage.Store) {
	const n = 8
	streams := make([][]byte, n)
	for i := range streams {
		streams[i] = Stream(t, int64(100+i), 1+i%3)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.Put(ctxT(t), fmt.Sprintf("conc-%d", i), bytes.NewReader(streams[i]))
		}(i)
	}
	wg.Wait()
	var used int64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put %d: %v", i, err)
		}
		if got := mustRead(t, s, fmt.Sprintf("conc-%d", i), 0, -1); !bytes.Equal(got, streams[i]) {
			t.Fatalf("concurrent Put %d: read back differs", i)
		}
		used += int64(len(streams[i]))
	}
	u, err := s.Usage(ctxT(t))
	if err != nil || u.Shards != n || u.Used != used {
		t.Fatalf("Usage = %+v, %v; want %d shards, %d bytes", u, err, n, used)
	}
}

func testUsage(t *testing.T, s storage.Store) {
	u, err := s.Usage(ctxT(t))
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if u.Shards != 0 || u.Used != 0 {
		t.Fatalf("empty store Usage = %+v", u)
	}
	if u.Free <= 0 {
		t.Fatalf("empty store Usage.Free = %d, want > 0", u.Free)
	}
	a, b := Stream(t, 21, 3), Stream(t, 22, 2)
	mustPut(t, s, "u1", a)
	mustPut(t, s, "u2", b)
	u, err = s.Usage(ctxT(t))
	if err != nil || u.Shards != 2 || u.Used != int64(len(a)+len(b)) {
		t.Fatalf("Usage = %+v, %v; want 2 shards, %d bytes", u, err, len(a)+len(b))
	}
	if err := s.Delete(ctxT(t), "u1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	u, err = s.Usage(ctxT(t))
	if err != nil || u.Shards != 1 || u.Used != int64(len(b)) {
		t.Fatalf("Usage after delete = %+v, %v; want 1 shard, %d bytes", u, err, len(b))
	}
}
