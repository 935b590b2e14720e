package erasure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"
)

// stalled is a shard reader whose reads block until its context ends: a
// stalled node.
type stalled struct{ ctx context.Context }

func (s stalled) Read([]byte) (int, error) { <-s.ctx.Done(); return 0, s.ctx.Err() }
func (s stalled) Close() error             { return nil }

func blockingOpen(ctx context.Context, _ int, _, _ int64) (io.ReadCloser, error) {
	return stalled{ctx}, nil
}

// TestNoGoroutinesLeft checks every goroutine a call starts has ended when it
// returns, on success, on shard failures and on cancellation with stalled
// readers.
func TestNoGoroutinesLeft(t *testing.T) {
	c, _ := New(4, 2, 64)
	src := pattern(12, 40*4*64+9)
	streams, _ := encodeAll(t, c, src)
	before := runtime.NumGoroutine()

	bad := cloneShards(streams)
	bad[1] = nil
	bad[3][5*(RecordHeaderSize+64)+30] ^= 1
	if got, _, err := decodeAll(t, c, bad, int64(len(src)), 0, int64(len(src))); err != nil || !bytes.Equal(got, src) {
		t.Fatalf("degraded decode: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Decode(ctx, io.Discard, int64(len(src)), 0, int64(len(src)), blockingOpen)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("decode with stalled shards, cancelled: %v", err)
	}
	ws := discardWriters(6)
	ws[0] = &failWriter{n: 100}
	if _, err := c.Encode(context.Background(), bytes.NewReader(src), ws, 5); err != nil {
		t.Fatal(err)
	}
	// A goroutine that has signalled its owner still exists for an instant
	// before it returns: give such stragglers a chance to finish.
	after := runtime.NumGoroutine()
	// On a loaded machine its thread may wait a while for a CPU, hence the
	// generous bound (a real leak never converges).
	for i := 0; i < 5000 && after > before; i++ {
		time.Sleep(time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
