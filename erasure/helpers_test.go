package erasure

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
)

// pattern returns n deterministic pseudo-random bytes for seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5a1e))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// encodeAll encodes src with c into in-memory shard streams.
func encodeAll(t testing.TB, c *Codec, src []byte) ([][]byte, EncodeResult) {
	t.Helper()
	n := c.K() + c.M()
	bufs := make([]*bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	res, err := c.Encode(context.Background(), bytes.NewReader(src), ws, c.K())
	if err != nil {
		t.Fatalf("encode %d bytes with %d+%d/%d: %v", len(src), c.K(), c.M(), c.BlockSize(), err)
	}
	if res.Size != int64(len(src)) {
		t.Fatalf("encode: size %d, want %d", res.Size, len(src))
	}
	out := make([][]byte, n)
	for i, b := range bufs {
		out[i] = b.Bytes()
		if want := c.ShardSize(int64(len(src))); int64(len(out[i])) != want {
			t.Fatalf("shard %d: %d bytes, want ShardSize %d", i, len(out[i]), want)
		}
	}
	return out, res
}

// memShards serves shard streams from memory and records what was opened.
type memShards struct {
	mu      sync.Mutex
	streams [][]byte // nil = missing (open fails)
	opens   []openCall
}

type openCall struct {
	shard  int
	off, n int64
}

func (m *memShards) open(_ context.Context, shard int, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	m.opens = append(m.opens, openCall{shard, off, n})
	m.mu.Unlock()
	s := m.streams[shard]
	if s == nil {
		return nil, fmt.Errorf("shard %d: %w", shard, errMissing)
	}
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("shard %d: bad range [%d,+%d)", shard, off, n)
	}
	// Like a file that lost its tail: serve what there is.
	lo, hi := min(off, int64(len(s))), min(off+n, int64(len(s)))
	return io.NopCloser(bytes.NewReader(s[lo:hi])), nil
}

var errMissing = fmt.Errorf("shard missing")

func cloneShards(s [][]byte) [][]byte {
	out := make([][]byte, len(s))
	for i := range s {
		if s[i] != nil {
			out[i] = bytes.Clone(s[i])
		}
	}
	return out
}

// decodeAll decodes [off, off+length) from streams.
func decodeAll(t testing.TB, c *Codec, streams [][]byte, size, off, length int64) ([]byte, DecodeReport, error) {
	t.Helper()
	ms := &memShards{streams: streams}
	var out bytes.Buffer
	rep, err := c.Decode(context.Background(), &out, size, off, length, ms.open)
	return out.Bytes(), rep, err
}
