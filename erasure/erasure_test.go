package erasure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/zeebo/xxh3"
)

var codings = []struct{ k, m int }{{2, 1}, {4, 2}, {6, 3}, {8, 4}, {10, 4}, {12, 4}, {16, 4}}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct{ k, m, bs int }{
		{0, 1, 64}, {1, -1, 64}, {200, 57, 64}, {4, 2, 0 + 63}, {4, 2, -64}, {4, 2, MaxBlockSize + 64}, {4, 2, 100},
	} {
		if _, err := New(tc.k, tc.m, tc.bs); !errors.Is(err, ErrInvalidLayout) {
			t.Errorf("New(%d,%d,%d) = %v, want ErrInvalidLayout", tc.k, tc.m, tc.bs, err)
		}
	}
	c, err := New(4, 0, 0)
	if err != nil || c.BlockSize() != DefaultBlockSize {
		t.Fatalf("New(4,0,0) = %v, %v; want default block size", c, err)
	}
}

func TestLayoutMath(t *testing.T) {
	c, _ := New(4, 2, 128)
	H := int64(RecordHeaderSize)
	for _, tc := range []struct{ size, stripes, shard int64 }{
		{0, 0, 0},
		{1, 1, H + 64},
		{512, 1, H + 128},
		{511, 1, H + 128},
		{257, 1, H + 128}, // ceil(257/4)=65 → 128
		{256, 1, H + 64},  // 64 per shard
		{513, 2, 2*H + 128 + 64},
		{5 * 512, 5, 5 * (H + 128)},
	} {
		if got := c.Stripes(tc.size); got != tc.stripes {
			t.Errorf("Stripes(%d) = %d, want %d", tc.size, got, tc.stripes)
		}
		if got := c.ShardSize(tc.size); got != tc.shard {
			t.Errorf("ShardSize(%d) = %d, want %d", tc.size, got, tc.shard)
		}
	}
}

// TestRoundTripTable encodes, verifies, decodes healthy and with m shards
// missing, and rebuilds the missing shards byte for byte.
func TestRoundTripTable(t *testing.T) {
	const bs = 128
	rng := rand.New(rand.NewPCG(1, 2))
	for _, cd := range codings {
		c, err := New(cd.k, cd.m, bs)
		if err != nil {
			t.Fatal(err)
		}
		sd := cd.k * bs
		for _, size := range []int{0, 1, bs - 1, bs, bs + 1, sd - 1, sd, sd + 1, 7*sd + 3*bs + 5} {
			src := pattern(uint64(size*31+cd.k), size)
			streams, res := encodeAll(t, c, src)
			for i, s := range streams {
				v := NewVerifier(i)
				if _, err := v.Write(s); err != nil {
					t.Fatalf("%d+%d size %d: verify shard %d: %v", cd.k, cd.m, size, i, err)
				}
				if err := v.Close(); err != nil {
					t.Fatalf("%d+%d size %d: verifier close shard %d: %v", cd.k, cd.m, size, i, err)
				}
				if v.Records() != c.Stripes(int64(size)) || v.Summary() != res.Summaries[i] {
					t.Fatalf("%d+%d size %d shard %d: records %d summary %x, want %d %x",
						cd.k, cd.m, size, i, v.Records(), v.Summary(), c.Stripes(int64(size)), res.Summaries[i])
				}
			}
			got, rep, err := decodeAll(t, c, streams, int64(size), 0, int64(size))
			if err != nil || !bytes.Equal(got, src) || len(rep.Failures) != 0 {
				t.Fatalf("%d+%d size %d: healthy decode: err %v, equal %v, failures %v", cd.k, cd.m, size, err, bytes.Equal(got, src), rep.Failures)
			}
			// Drop m shards at random, data shards preferred.
			lost := rng.Perm(cd.k + cd.m)[:cd.m]
			damaged := cloneShards(streams)
			for _, j := range lost {
				damaged[j] = nil
			}
			got, rep, err = decodeAll(t, c, damaged, int64(size), 0, int64(size))
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("%d+%d size %d lost %v: degraded decode: err %v, equal %v", cd.k, cd.m, size, lost, err, bytes.Equal(got, src))
			}
			for _, f := range rep.Failures {
				if damaged[f.Shard] != nil || f.Corrupt() {
					t.Fatalf("%d+%d size %d: unexpected failure %+v", cd.k, cd.m, size, f)
				}
			}
			outs := make([]io.Writer, len(lost))
			bufs := make([]*bytes.Buffer, len(lost))
			for i := range lost {
				bufs[i] = new(bytes.Buffer)
				outs[i] = bufs[i]
			}
			ms := &memShards{streams: damaged}
			if _, err := c.Rebuild(context.Background(), int64(size), ms.open, lost, outs); err != nil {
				t.Fatalf("%d+%d size %d: rebuild %v: %v", cd.k, cd.m, size, lost, err)
			}
			for i, j := range lost {
				if !bytes.Equal(bufs[i].Bytes(), streams[j]) {
					t.Fatalf("%d+%d size %d: rebuilt shard %d differs from the original", cd.k, cd.m, size, j)
				}
			}
			if cd.m > 0 && size > 0 {
				// Shard 0 holds the object's first byte, so losing it and
				// m more leaves too few shards for stripe 0.
				lost = []int{0}
				for _, j := range rng.Perm(cd.k + cd.m - 1)[:cd.m] {
					lost = append(lost, j+1)
				}
				for _, j := range lost {
					damaged[j] = nil
				}
				_, _, err = decodeAll(t, c, damaged, int64(size), 0, int64(size))
				if !errors.Is(err, ErrTooFewShards) {
					t.Fatalf("%d+%d size %d lost %v: decode err %v, want ErrTooFewShards", cd.k, cd.m, size, lost, err)
				}
			}
		}
	}
}

// TestKnownAnswer pins the on-disk format: record layout, checksum, block
// layout of the last stripe and the Reed-Solomon matrix. If it fails, the
// format changed: bump FormatVersion and keep a reader for the old one.
func TestKnownAnswer(t *testing.T) {
	c, err := New(4, 2, 256)
	if err != nil {
		t.Fatal(err)
	}
	src := make([]byte, 3*4*256+100)
	for i := range src {
		src[i] = byte(i*7 + i>>8)
	}
	streams, _ := encodeAll(t, c, src)
	want := []string{
		"10fe24f126bb3832be47f17fd5bf558030755fdcaa441e91612fb4874ae79f7f",
		"2105e9266baffc39a31d0b1df008349b5e4d02d59be550ae49cde8f5bd8223d8",
		"d9bb9b8aa81af80fdeb920c9e8ee7e55646f0d284a10a9f99165837e933da1d7",
		"d8c25e3ac330a92abac3ebb553feefd41fd418ffae818ad07a2da5ff25e1599a",
		"42dd89770534a74b436b173da6b81c4963b342cc90d0a03956e120d5d88582e0",
		"a6ae396ed269caabbd5b198ba1125c2896e9901d1eab8240d13cd33526af9e10",
	}
	// The header layout, spelled out: shard 4 (parity), stripe 3 (the last,
	// 100 bytes → ceil(100/4)=25 → 64-byte blocks).
	rec := streams[4][3*(RecordHeaderSize+256):]
	le := binary.LittleEndian
	if v, sh, n, s := le.Uint16(rec[8:]), le.Uint16(rec[10:]), le.Uint32(rec[12:]), le.Uint64(rec[16:]); v != 1 || sh != 4 || n != 64 || s != 3 || len(rec) != RecordHeaderSize+64 {
		t.Fatalf("header: version %d shard %d length %d stripe %d, record %d bytes", v, sh, n, s, len(rec))
	}
	if le.Uint64(rec) != xxh3.Hash(rec[8:]) {
		t.Fatal("checksum is not XXH3-64 of record[8:]")
	}
	for i, s := range streams {
		sum := sha256.Sum256(s)
		if got := hex.EncodeToString(sum[:]); got != want[i] {
			t.Errorf("shard %d: sha256 %s, want %s", i, got, want[i])
		}
	}
}

func TestDecodeRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, cd := range []struct{ k, m, bs int }{{4, 2, 64}, {6, 3, 128}, {10, 4, 192}} {
		c, _ := New(cd.k, cd.m, cd.bs)
		size := 9*cd.k*cd.bs + 77
		src := pattern(uint64(cd.k), size)
		streams, _ := encodeAll(t, c, src)
		degraded := cloneShards(streams)
		for j := 0; j < cd.m; j++ {
			degraded[j*2%cd.k] = nil // data shards missing: forces reconstruction
		}
		for trial := 0; trial < 150; trial++ {
			off := rng.Int64N(int64(size) + 1)
			length := rng.Int64N(int64(size) - off + 1)
			if trial%5 == 0 {
				length = min(int64(rng.IntN(3)), int64(size)-off)
			}
			for _, s := range [][][]byte{streams, degraded} {
				ms := &memShards{streams: s}
				var out bytes.Buffer
				_, err := c.Decode(context.Background(), &out, int64(size), off, length, ms.open)
				if err != nil || !bytes.Equal(out.Bytes(), src[off:off+length]) {
					t.Fatalf("%d+%d range [%d,+%d): err %v, equal %v", cd.k, cd.m, off, length, err, bytes.Equal(out.Bytes(), src[off:off+length]))
				}
				// Only the stripes the range touches are opened.
				sd := int64(cd.k * cd.bs)
				rs := int64(RecordHeaderSize + cd.bs)
				for _, o := range ms.opens {
					first, last := o.off/rs, (o.off+o.n-1)/rs
					if length == 0 || first < off/sd || last > (off+length-1)/sd {
						t.Fatalf("range [%d,+%d): opened shard %d stripes %d..%d", off, length, o.shard, first, last)
					}
				}
			}
		}
		// Healthy reads never open parity.
		ms := &memShards{streams: streams}
		if _, err := c.Decode(context.Background(), io.Discard, int64(size), 0, int64(size), ms.open); err != nil {
			t.Fatal(err)
		}
		for _, o := range ms.opens {
			if o.shard >= cd.k {
				t.Fatalf("healthy decode opened parity shard %d", o.shard)
			}
		}
	}
	c, _ := New(2, 1, 64)
	for _, r := range [][3]int64{{10, -1, 1}, {10, 5, 6}, {10, 11, 0}, {-1, 0, 0}, {10, 0, 11}} {
		if _, err := c.Decode(context.Background(), io.Discard, r[0], r[1], r[2], nil); !errors.Is(err, ErrInvalidRange) {
			t.Errorf("Decode(size %d, off %d, len %d) = %v, want ErrInvalidRange", r[0], r[1], r[2], err)
		}
	}
}

func TestCorruption(t *testing.T) {
	const k, m, bs = 4, 2, 128
	c, _ := New(k, m, bs)
	size := 5*k*bs + 10
	src := pattern(9, size)
	streams, _ := encodeAll(t, c, src)
	rs := RecordHeaderSize + bs
	flip := func(s [][]byte, shard, stripe, at int) {
		s[shard][stripe*rs+at] ^= 0x40
	}
	for _, at := range []int{RecordHeaderSize + 17, 3, 12, 20} { // block byte, checksum, length, stripe number
		bad := cloneShards(streams)
		flip(bad, 1, 2, at)
		got, rep, err := decodeAll(t, c, bad, int64(size), 0, int64(size))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("flip at %d: decode err %v, equal %v", at, err, bytes.Equal(got, src))
		}
		if len(rep.Failures) != 1 || rep.Failures[0].Shard != 1 || rep.Failures[0].Stripe != 2 || !rep.Failures[0].Corrupt() {
			t.Fatalf("flip at %d: failures %+v, want shard 1 stripe 2 corrupt", at, rep.Failures)
		}
		var ce *ChecksumError
		if !errors.As(rep.Failures[0].Err, &ce) || ce.Shard != 1 || ce.Stripe != 2 {
			t.Fatalf("flip at %d: error %v, want ChecksumError shard 1 block 2", at, rep.Failures[0].Err)
		}
	}
	// m corrupt shards (one data, one parity, different stripes) still decode.
	bad := cloneShards(streams)
	flip(bad, 0, 4, RecordHeaderSize)
	flip(bad, 5, 1, RecordHeaderSize+bs-1)
	got, rep, err := decodeAll(t, c, bad, int64(size), 0, int64(size))
	if err != nil || !bytes.Equal(got, src) || len(rep.Failures) != 1 {
		// Parity shard 5 is only read if a data shard fails before stripe 1.
		t.Fatalf("two corrupt shards: err %v, equal %v, failures %+v", err, bytes.Equal(got, src), rep.Failures)
	}
	flip(bad, 2, 0, RecordHeaderSize+5) // now data shards 0 and 2 bad: parity 4 and 5 needed
	got, rep, err = decodeAll(t, c, bad, int64(size), 0, int64(size))
	if err != nil && !errors.Is(err, ErrTooFewShards) {
		t.Fatal(err)
	}
	if err == nil && !bytes.Equal(got, src) {
		t.Fatal("three corrupt shards: wrong bytes without error")
	}
	// m+1 corrupt shards in one stripe: too few.
	bad = cloneShards(streams)
	for _, j := range []int{0, 3, 5} {
		flip(bad, j, 3, RecordHeaderSize+1)
	}
	_, rep, err = decodeAll(t, c, bad, int64(size), 0, int64(size))
	if !errors.Is(err, ErrTooFewShards) || len(rep.Failures) != 3 {
		t.Fatalf("three corrupt shards in one stripe: err %v, failures %+v", err, rep.Failures)
	}
	// A truncated data shard is a corrupt one. (The last stripe's 10 bytes
	// all live in shard 0, so only shard 0's last record is ever read.)
	bad = cloneShards(streams)
	bad[0] = bad[0][:len(bad[0])-1]
	got, rep, err = decodeAll(t, c, bad, int64(size), 0, int64(size))
	if err != nil || !bytes.Equal(got, src) || len(rep.Failures) != 1 || rep.Failures[0].Shard != 0 || rep.Failures[0].Stripe != 5 || !rep.Failures[0].Corrupt() {
		t.Fatalf("truncated shard: err %v, failures %+v", err, rep.Failures)
	}
}

func TestRecordReader(t *testing.T) {
	c, _ := New(3, 1, 64)
	size := 4*3*64 + 5
	src := pattern(5, size)
	streams, _ := encodeAll(t, c, src)
	// Data shard 1's blocks are bytes [s*192+64, s*192+128) of the source.
	rr := NewRecordReader(bytes.NewReader(streams[1]), 1, 0)
	for s := 0; ; s++ {
		b, err := rr.Next()
		if err == io.EOF {
			if s != 5 {
				t.Fatalf("EOF after %d records, want 5", s)
			}
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", s, err)
		}
		if s < 4 && !bytes.Equal(b, src[s*192+64:s*192+128]) {
			t.Fatalf("record %d: wrong block", s)
		}
		if s == 4 && (len(b) != 64 || !bytes.Equal(b, make([]byte, 64))) { // 5 bytes: all in shard 0
			t.Fatalf("last record: %d bytes, want 64 zero bytes", len(b))
		}
	}
	rs := RecordHeaderSize + 64
	// Ranged read starting at stripe 2 with shard -1 (any).
	rr = NewRecordReader(bytes.NewReader(streams[1][2*rs:]), -1, 2)
	if b, err := rr.Next(); err != nil || !bytes.Equal(b, src[2*192+64:2*192+128]) {
		t.Fatalf("ranged read: %v", err)
	}
	// Wrong expected stripe, wrong shard, bad bytes, truncation.
	var ce *ChecksumError
	for name, tc := range map[string]struct {
		stream []byte
		shard  int
		first  int64
		want   error
	}{
		"stripe":    {streams[1], 1, 1, ErrCorruptRecord},
		"shard":     {streams[1], 2, 0, ErrCorruptRecord},
		"flip":      {flipped(streams[1], rs+40), 1, 0, ErrMismatch},
		"header":    {flipped(streams[1], rs+9), 1, 0, ErrCorruptRecord},
		"truncated": {streams[1][:2*rs+10], 1, 0, ErrCorruptRecord},
		"tail":      {streams[1][:rs+RecordHeaderSize-1], 1, 0, ErrCorruptRecord},
		"extra":     {append(bytes.Clone(streams[1]), streams[1][4*rs:]...), 1, 0, ErrCorruptRecord},
	} {
		rr := NewRecordReader(bytes.NewReader(tc.stream), tc.shard, tc.first)
		var err error
		for err == nil {
			_, err = rr.Next()
		}
		if !errors.As(err, &ce) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want ChecksumError wrapping %v", name, err, tc.want)
		}
		if _, again := rr.Next(); again != err {
			t.Errorf("%s: error not sticky: %v then %v", name, err, again)
		}
	}
}

func flipped(b []byte, at int) []byte {
	b = bytes.Clone(b)
	b[at] ^= 1
	return b
}

func TestVerifier(t *testing.T) {
	c, _ := New(3, 2, 128)
	src := pattern(6, 7*3*128+300)
	streams, res := encodeAll(t, c, src)
	rng := rand.New(rand.NewPCG(7, 8))
	for i, s := range streams {
		v := NewVerifier(i)
		var out bytes.Buffer
		for p := s; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(200))
			if _, err := io.MultiWriter(v, &out).Write(p[:n]); err != nil {
				t.Fatalf("shard %d: %v", i, err)
			}
			p = p[n:]
		}
		if err := v.Close(); err != nil || v.Records() != 8 || v.Summary() != res.Summaries[i] || !bytes.Equal(out.Bytes(), s) {
			t.Fatalf("shard %d: close %v records %d summary match %v", i, err, v.Records(), v.Summary() == res.Summaries[i])
		}
	}
	rs := RecordHeaderSize + 128
	var ce *ChecksumError
	v := NewVerifier(0)
	if _, err := v.Write(flipped(streams[0], 3*rs+RecordHeaderSize+2)); !errors.As(err, &ce) || ce.Stripe != 3 || ce.Shard != 0 || !errors.Is(err, ErrMismatch) {
		t.Fatalf("flipped block: %v, want ChecksumError shard 0 block 3", err)
	}
	if v.Records() != 3 {
		t.Fatalf("records before the bad one: %d, want 3", v.Records())
	}
	v = NewVerifier(1)
	if _, err := v.Write(streams[0][:rs]); !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("wrong shard: %v", err)
	}
	v = NewVerifier(-1)
	if _, err := v.Write(streams[0][:rs+5]); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); !errors.As(err, &ce) || !errors.Is(err, ErrCorruptRecord) {
		t.Fatalf("close mid-record: %v", err)
	}
	if NewVerifier(0).Summary() != SummaryOf(nil) {
		t.Fatal("empty summary differs from SummaryOf(nil)")
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

var errDisk = errors.New("disk on fire")

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errDisk
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncodeWriterFailures(t *testing.T) {
	c, _ := New(4, 2, 64)
	src := pattern(11, 10*4*64)
	ws := make([]io.Writer, 6)
	bufs := make([]*bytes.Buffer, 6)
	for i := range ws {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	ws[1] = &failWriter{n: 3 * (RecordHeaderSize + 64)}
	ws[5] = nil
	res, err := c.Encode(context.Background(), bytes.NewReader(src), ws, 4)
	if err != nil {
		t.Fatalf("encode with one failed and one nil writer: %v", err)
	}
	var se *ShardError
	if !errors.As(res.ShardErrs[1], &se) || se.Shard != 1 || se.Op != "write" || !errors.Is(res.ShardErrs[1], errDisk) {
		t.Fatalf("ShardErrs[1] = %v", res.ShardErrs[1])
	}
	for i, e := range res.ShardErrs {
		if i != 1 && e != nil {
			t.Fatalf("ShardErrs[%d] = %v", i, e)
		}
	}
	streams := make([][]byte, 6)
	for _, i := range []int{0, 2, 3, 4} {
		streams[i] = bufs[i].Bytes()
	}
	got, _, err := decodeAll(t, c, streams, int64(len(src)), 0, int64(len(src)))
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("decode after writer failure: %v", err)
	}
	// Below minShards: fails.
	ws[2] = &failWriter{n: 0}
	if _, err := c.Encode(context.Background(), bytes.NewReader(src), ws, 4); !errors.Is(err, ErrTooFewShards) {
		t.Fatalf("encode below minShards: %v", err)
	}
	if _, err := c.Encode(context.Background(), bytes.NewReader(src), ws[:5], 4); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("encode with 5 writers: %v", err)
	}
}

type errReader struct{ after int }

var errNet = errors.New("connection reset")

func (r *errReader) Read(p []byte) (int, error) {
	if r.after == 0 {
		return 0, errNet
	}
	n := min(len(p), r.after)
	r.after -= n
	return n, nil
}

func TestEncodeInputErrorAndCancel(t *testing.T) {
	c, _ := New(4, 2, 64)
	ws := []io.Writer{io.Discard, io.Discard, io.Discard, io.Discard, io.Discard, io.Discard}
	if _, err := c.Encode(context.Background(), &errReader{after: 5000}, ws, 4); !errors.Is(err, errNet) {
		t.Fatalf("read error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Encode(ctx, bytes.NewReader(make([]byte, 5000)), ws, 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := c.Decode(ctx, io.Discard, 5000, 0, 5000, (&memShards{streams: make([][]byte, 6)}).open); !errors.Is(err, context.Canceled) {
		t.Fatalf("decode cancelled: %v", err)
	}
}

// patternReader yields n bytes by copying from a small fixed pattern.
type patternReader struct {
	pat []byte
	off int
	n   int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	total := 0
	for len(p) > 0 {
		c := copy(p, r.pat[r.off:])
		r.off = (r.off + c) % len(r.pat)
		p = p[c:]
		total += c
	}
	r.n -= int64(total)
	return total, nil
}

// TestEncodeMemoryBounded encodes 1 GiB and checks the bytes allocated stay
// under 64 MiB: buffers are pooled, not allocated per stripe.
func TestEncodeMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 1 GiB")
	}
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops buffers at random")
	}
	c, _ := New(10, 4, DefaultBlockSize)
	ws := make([]io.Writer, 14)
	for i := range ws {
		ws[i] = io.Discard
	}
	r := &patternReader{pat: pattern(1, 1<<20+13), n: 1 << 30}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := c.Encode(context.Background(), r, ws, 14)
	runtime.ReadMemStats(&after)
	if err != nil || res.Size != 1<<30 {
		t.Fatalf("encode: %v, size %d", err, res.Size)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("encoding 1 GiB allocated %d KiB in %d objects", alloc>>10, after.Mallocs-before.Mallocs)
	if alloc >= 64<<20 {
		t.Fatalf("encoding 1 GiB allocated %d MiB, want < 64 MiB", alloc>>20)
	}
}
