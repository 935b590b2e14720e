package erasure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"runtime/debug"
	"testing"
)

// encodeSized is encodeAll through EncodeSize with the size declared.
func encodeSized(t testing.TB, c *Codec, src []byte) ([][]byte, EncodeResult) {
	t.Helper()
	n := c.K() + c.M()
	bufs := make([]*bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	res, err := c.EncodeSize(context.Background(), bytes.NewReader(src), int64(len(src)), ws, c.K())
	if err != nil {
		t.Fatalf("encode %d bytes (sized): %v", len(src), err)
	}
	out := make([][]byte, n)
	for i, b := range bufs {
		out[i] = b.Bytes()
	}
	return out, res
}

// TestEncodeSizeSameStreams: for every kind of size (empty, small enough for
// a buffer of its own, a partial stripe in a pooled buffer, exact stripes,
// several stripes with a partial tail, more stripes than Depth), EncodeSize
// writes byte for byte what Encode writes, the streams decode (healthy and
// with two shards lost), and the summaries agree.
func TestEncodeSizeSameStreams(t *testing.T) {
	c, err := NewWithConfig(Config{K: 4, M: 2, BlockSize: 1024, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	sd := int(c.stripeData())
	for _, size := range []int{0, 1, 63, 64, 1000, sd/2 - 1, sd / 2, sd/2 + 1, sd - 1, sd, sd + 1, 3 * sd, 5*sd + 77} {
		src := pattern(uint64(size)+3, size)
		want, wres := encodeAll(t, c, src)
		got, gres := encodeSized(t, c, src)
		if gres.Size != int64(size) {
			t.Fatalf("size %d: EncodeSize read %d bytes", size, gres.Size)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("size %d: shard %d differs between Encode and EncodeSize", size, i)
			}
			if gres.Summaries[i] != wres.Summaries[i] {
				t.Fatalf("size %d: shard %d summary %x, Encode's %x", size, i, gres.Summaries[i], wres.Summaries[i])
			}
		}
		if size == 0 {
			continue
		}
		for _, lost := range [][]int{nil, {0, 3}, {1, 5}} {
			streams := cloneShards(got)
			for _, i := range lost {
				streams[i] = nil
			}
			out, _, err := decodeAll(t, c, streams, int64(size), 0, int64(size))
			if err != nil || !bytes.Equal(out, src) {
				t.Fatalf("size %d lost %v: decode err %v, equal %v", size, lost, err, bytes.Equal(out, src))
			}
			// A ranged read in the middle.
			off, n := int64(size/3), int64(size/3+1)
			out, _, err = decodeAll(t, c, streams, int64(size), off, n)
			if err != nil || !bytes.Equal(out, src[off:off+n]) {
				t.Fatalf("size %d lost %v: ranged decode err %v", size, lost, err)
			}
		}
	}
}

// eofReader reports whether a Read returned io.EOF.
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// TestEncodeSizeInputChecks: the input is read to its EOF (so a verifying
// reader's end check runs), and a short or long input fails.
func TestEncodeSizeInputChecks(t *testing.T) {
	c, _ := New(4, 2, 1024)
	sd := int(c.stripeData())
	discard := func() []io.Writer {
		ws := make([]io.Writer, 6)
		for i := range ws {
			ws[i] = io.Discard
		}
		return ws
	}
	for _, size := range []int{0, 100, sd, 2 * sd} {
		er := &eofReader{r: bytes.NewReader(pattern(9, size))}
		if _, err := c.EncodeSize(context.Background(), er, int64(size), discard(), 4); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !er.eof {
			t.Fatalf("size %d: EncodeSize returned without reading to EOF", size)
		}
	}
	for _, tc := range []struct{ have, declared int }{{99, 100}, {sd - 1, sd}, {sd, 2 * sd}, {0, 5}} {
		_, err := c.EncodeSize(context.Background(), bytes.NewReader(pattern(1, tc.have)), int64(tc.declared), discard(), 4)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bytes declared %d: err %v, want io.ErrUnexpectedEOF", tc.have, tc.declared, err)
		}
	}
	for _, tc := range []struct{ have, declared int }{{101, 100}, {sd + 1, sd}, {1, 0}} {
		_, err := c.EncodeSize(context.Background(), bytes.NewReader(pattern(1, tc.have)), int64(tc.declared), discard(), 4)
		if !errors.Is(err, errLongInput) {
			t.Fatalf("%d bytes declared %d: err %v, want errLongInput", tc.have, tc.declared, err)
		}
	}
}

// TestMemoryFormulas pins EncodeMemory and DecodeMemory to the buffers the
// calls take.
func TestMemoryFormulas(t *testing.T) {
	c, _ := NewWithConfig(Config{K: 4, M: 2, BlockSize: 1024, Depth: 3, ReadAhead: 2})
	full := int64(RecordHeaderSize + 1024)
	sd := c.stripeData()
	for _, tc := range []struct {
		size int64
		want int64
	}{
		{-1, 3 * 6 * full},
		{0, 0},
		{4, 6 * (RecordHeaderSize + 64)},       // small: a buffer of its own
		{sd / 2, 6 * (RecordHeaderSize + 512)}, // still small
		{sd/2 + 1, 6 * full},                   // larger blocks: a pooled stripe
		{sd, 6 * full},
		{2 * sd, 2 * 6 * full},
		{10 * sd, 3 * 6 * full},
	} {
		if got := c.EncodeMemory(tc.size); got != tc.want {
			t.Errorf("EncodeMemory(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
	for _, tc := range []struct {
		size, off, n int64
		want         int64
	}{
		{0, 0, 0, 0},
		{4, 0, 4, 6 * (RecordHeaderSize + 64)},
		{sd, 0, sd, 6 * full},
		{10 * sd, 0, 10 * sd, 6 * 4 * full},
		{10 * sd, sd, sd, 6 * full},
		{10 * sd, sd - 1, 2, 2 * 6 * full},
	} {
		if got := c.DecodeMemory(tc.size, tc.off, tc.n); got != tc.want {
			t.Errorf("DecodeMemory(%d, %d, %d) = %d, want %d", tc.size, tc.off, tc.n, got, tc.want)
		}
	}
}

// TestEncodeSizeSmallAllocates: a small object of known size takes a buffer
// sized to it, not a full stripe, so encoding it allocates far less than
// one stripe.
func TestEncodeSizeSmallAllocates(t *testing.T) {
	c, _ := New(4, 2, DefaultBlockSize)
	src := pattern(4, 4096)
	ws := make([]io.Writer, 6)
	for i := range ws {
		ws[i] = io.Discard
	}
	stripe := 6 * (RecordHeaderSize + DefaultBlockSize)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const rounds = 20
	for range rounds {
		if _, err := c.EncodeSize(context.Background(), bytes.NewReader(src), int64(len(src)), ws, 6); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / rounds
	t.Logf("a 4 KiB EncodeSize allocates %d bytes", per)
	if per >= uint64(stripe)/4 {
		t.Fatalf("a 4 KiB EncodeSize allocates %d bytes, want well under a %d-byte stripe", per, stripe)
	}
}

// TestDecodeAllocatesLittle: Decode and Rebuild carve their record buffers
// from pooled stripe buffers, so once the pool is warm a decode of a large
// object allocates far less than the DecodeMemory it holds, and a small
// object's decode allocates about its own size.
func TestDecodeAllocatesLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("under the race detector sync.Pool drops buffers at random")
	}
	c, _ := New(4, 2, 64<<10)
	for _, size := range []int{10 * 4 * 64 << 10, 3000} {
		src := pattern(8, size)
		streams, _ := encodeAll(t, c, src)
		ms := &memShards{streams: streams}
		decode := func() {
			if _, err := c.Decode(context.Background(), io.Discard, int64(size), 0, int64(size), ms.open); err != nil {
				t.Fatal(err)
			}
		}
		decode() // warm the pool
		// No collection may empty the pool while measuring.
		gc := debug.SetGCPercent(-1)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const rounds = 10
		for range rounds {
			decode()
		}
		runtime.ReadMemStats(&after)
		debug.SetGCPercent(gc)
		per := int64(after.TotalAlloc-before.TotalAlloc) / rounds
		hold := c.DecodeMemory(int64(size), 0, int64(size))
		t.Logf("size %d: a decode holds %d bytes of records and allocates %d", size, hold, per)
		if size > 4*64<<10 && per > hold/4 {
			t.Fatalf("size %d: a decode allocates %d bytes, want well under the %d it holds", size, per, hold)
		}
		if size <= 4*64<<10 && per > 16*hold {
			t.Fatalf("size %d: a decode allocates %d bytes for %d of records", size, per, hold)
		}
	}
}
