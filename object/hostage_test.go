package object

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shale-store/shale/erasure"
)

// TestBudgetWaitIsBounded: while the memory budget stays spent, a PUT, a
// GET, a copy and a part upload give up after Config.BudgetWait with
// ErrBusy (S3: SlowDown) instead of queueing forever, and reserve nothing.
func TestBudgetWaitIsBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MemoryBudget = 1 << 20
	h := newHarness(t, 6, cfg)
	data := pattern(3, 50_000)
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	h.c.cfg.BudgetWait = 100 * time.Millisecond
	hold, err := h.c.mem.acquire(h.ctx, cfg.MemoryBudget)
	if err != nil {
		t.Fatal(err)
	}
	defer hold()
	ops := map[string]func() error{
		"put": func() error {
			_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "p", Body: bytes.NewReader(data), Size: int64(len(data))})
			return err
		},
		"get":  func() error { return h.c.ReadObject(h.ctx, io.Discard, m, 0, m.Size) },
		"copy": func() error { _, err := h.c.CopyObject(h.ctx, m, PutInput{Bucket: testBucket, Key: "c"}); return err },
	}
	for name, op := range ops {
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- op() }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrBusy) {
				t.Errorf("%s with the budget spent: %v, want ErrBusy", name, err)
			}
			t.Logf("%s refused after %v", name, time.Since(start).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still waiting for memory after 10s; BudgetWait is 100ms", name)
		}
	}
	if used, _, waiting := h.c.mem.state(); used != cfg.MemoryBudget || waiting != 0 {
		t.Fatalf("after the refusals: %d bytes used (want only the test's %d), %d waiting", used, cfg.MemoryBudget, waiting)
	}
}

// gate blocks its readers and writers until opened.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate  { return &gate{ch: make(chan struct{})} }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait() { <-g.ch }

// stalledWriter is a GET's client that stops reading after its first write
// until the gate opens.
type stalledWriter struct {
	g     *gate
	buf   bytes.Buffer
	wrote atomic.Bool
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	if w.wrote.Load() {
		w.g.wait()
	}
	w.wrote.Store(true)
	return w.buf.Write(p)
}

// stalledBody is a PUT body that sends head, then nothing until the gate
// opens, then the rest.
type stalledBody struct {
	g    *gate
	head int
	r    *bytes.Reader
	sent int
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if b.sent >= b.head {
		b.g.wait()
	} else if len(p) > b.head-b.sent {
		p = p[:b.head-b.sent]
	}
	n, err := b.r.Read(p)
	b.sent += n
	return n, err
}

// TestStalledClientsGiveBudgetBack: a GET whose client stops reading and a
// PUT whose client stops sending give their memory reservation back within
// ClientYield, so with a budget that holds only one such operation others
// still run; once the clients move again the stalled operations take their
// reservation back and finish with the right bytes.
func TestStalledClientsGiveBudgetBack(t *testing.T) {
	cfg := testConfig()
	cfg.ClientYield = 20 * time.Millisecond
	cfg.BudgetWait = 2 * time.Second
	codec, err := erasure.New(cfg.K, cfg.M, cfg.BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(40 * cfg.K * cfg.BlockSize)
	cfg.MemoryBudget = max(codec.EncodeMemory(size), codec.DecodeMemory(size, 0, size))
	h := newHarness(t, 6, cfg)
	data := pattern(5, int(size))
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "big", Body: bytes.NewReader(data), Size: size})
	if err != nil {
		t.Fatal(err)
	}
	released := func() bool { used, _, _ := h.c.mem.state(); return used == 0 }

	getGate, putGate := newGate(), newGate()
	defer getGate.open()
	defer putGate.open()
	sw := &stalledWriter{g: getGate}
	getDone := make(chan error, 1)
	go func() { getDone <- h.c.ReadObject(h.ctx, sw, m, 0, m.Size) }()
	putDone := make(chan error, 1)
	go func() {
		_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "slow-put", Size: size,
			Body: &stalledBody{g: putGate, head: cfg.K * cfg.BlockSize, r: bytes.NewReader(data)}})
		putDone <- err
	}()
	waitFor(t, "the stalled GET and PUT give their reservations back", func() bool {
		_, _, waiting := h.c.mem.state()
		return released() && waiting == 0 && sw.wrote.Load()
	})

	// Others run meanwhile, each needing the whole budget.
	for i := range 3 {
		var buf bytes.Buffer
		if err := h.c.ReadObject(h.ctx, &buf, m, 0, m.Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("GET %d beside the stalled clients: %v", i, err)
		}
		if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "other", Body: bytes.NewReader(data), Size: size}); err != nil {
			t.Fatalf("PUT %d beside the stalled clients: %v", i, err)
		}
	}

	getGate.open()
	putGate.open()
	if err := <-getDone; err != nil || !bytes.Equal(sw.buf.Bytes(), data) {
		t.Fatalf("stalled GET once its client reads again: %v (bytes equal %v)", err, bytes.Equal(sw.buf.Bytes(), data))
	}
	if err := <-putDone; err != nil {
		t.Fatalf("stalled PUT once its client sends again: %v", err)
	}
	pm, err := h.c.HeadObject(h.ctx, testBucket, "slow-put")
	if err != nil || !bytes.Equal(h.mustRead(pm, 0, pm.Size), data) {
		t.Fatalf("the stalled PUT stored other bytes (%v)", err)
	}
	if used, peak, waiting := h.c.mem.state(); used != 0 || waiting != 0 || peak > cfg.MemoryBudget {
		t.Fatalf("after: used %d, waiting %d, peak %d of %d", used, waiting, peak, cfg.MemoryBudget)
	}
}

// slowWriter takes every third write slowly.
type slowWriter struct {
	buf   bytes.Buffer
	calls int
	pause time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.calls++; w.calls%3 == 0 {
		time.Sleep(w.pause)
	}
	return w.buf.Write(p)
}

// TestSlowReaderRestartsDecodeExactly: a GET whose client is repeatedly
// slower than ClientYield stops and restarts its decode many times, and
// every range still arrives byte for byte, with nothing reserved after.
func TestSlowReaderRestartsDecodeExactly(t *testing.T) {
	cfg := testConfig()
	cfg.ClientYield = 2 * time.Millisecond
	h := newHarness(t, 6, cfg)
	sd := cfg.K * cfg.BlockSize
	data := pattern(9, 7*sd+123)
	m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "slow", Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	gets := func() (n int) {
		for _, s := range h.stores {
			s.mu.Lock()
			n += s.gets
			s.mu.Unlock()
		}
		return n
	}
	for i, r := range [][2]int{{0, len(data)}, {1, len(data) - 2}, {sd - 5, 2*sd + 10}, {3*sd + 100, 1}} {
		before := gets()
		w := &slowWriter{pause: 10 * time.Millisecond}
		if err := h.c.ReadObject(h.ctx, w, m, int64(r[0]), int64(r[1])); err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		if !bytes.Equal(w.buf.Bytes(), data[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: %d bytes differ from the object's", r, w.buf.Len())
		}
		if opened := gets() - before; i == 0 && opened <= 2*cfg.K {
			t.Fatalf("a whole-object read with a slow client opened %d shard streams: it never yielded", opened)
		}
	}
	if used, _, waiting := h.c.mem.state(); used != 0 || waiting != 0 {
		t.Fatalf("after: %d bytes reserved, %d waiting", used, waiting)
	}
}

// blockingBody sends the first head bytes of data, then blocks until the
// gate opens; sent counts what it handed out.
type blockingBody struct {
	g    *gate
	data []byte
	head int
	sent atomic.Int64
}

func (b *blockingBody) Read(p []byte) (int, error) {
	off := int(b.sent.Load())
	if off >= b.head {
		b.g.wait()
		return 0, errInjected
	}
	n := copy(p, b.data[off:b.head])
	b.sent.Add(int64(n))
	return n, nil
}

// TestStalledPutHoldsLittleMemory: PUTs whose clients stop in the middle
// of their first stripe hold what those clients sent and no stripe
// buffers of the encoder: the heap grows by less than one stripe of data
// per stalled PUT (the encoder's stripe buffer alone, with parity, is one
// and a half).
func TestStalledPutHoldsLittleMemory(t *testing.T) {
	const n = 16
	cfg := testConfig()
	cfg.BlockSize = erasure.DefaultBlockSize
	cfg.ClientYield = 10 * time.Millisecond
	h := newHarness(t, 6, cfg)
	sd := cfg.K * cfg.BlockSize
	data := pattern(11, 4*sd)
	head := sd * 4 / 10
	g := newGate()
	var bodies []*blockingBody
	for range n {
		bodies = append(bodies, &blockingBody{g: g, data: data, head: head})
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: fmt.Sprintf("stalled-%d", i), Body: b, Size: int64(len(data))})
			if !errors.Is(err, errInjected) {
				t.Errorf("stalled PUT %d: %v", i, err)
			}
		}()
	}
	waitFor(t, "every stalled PUT has read its head and given its reservation back", func() bool {
		for _, b := range bodies {
			if b.sent.Load() < int64(head) {
				return false
			}
		}
		used, _, _ := h.c.mem.state()
		return used == 0
	})
	time.Sleep(50 * time.Millisecond)
	grown := int64(heap()) - int64(before)
	g.open()
	wg.Wait()
	t.Logf("%d PUTs stalled after %d KiB each: heap grew %d KiB (%.2f stripes of data per PUT)", n, head>>10, grown>>10, float64(grown)/float64(n*sd))
	if grown > int64(n*sd) {
		t.Fatalf("%d stalled PUTs hold %d KiB: more than one stripe (%d KiB) each", n, grown>>10, sd>>10)
	}
}
