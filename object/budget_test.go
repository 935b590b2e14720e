package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
)

// waitFor yields until cond holds; the test's own deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("never: %s", what)
		}
		runtime.Gosched()
	}
}

// TestBudgetNeverExceeded: under many concurrent reservations of random
// sizes the bytes held never pass the budget, every reservation is granted
// eventually, and all is returned at the end.
func TestBudgetNeverExceeded(t *testing.T) {
	const size = 1000
	b := newBudget(size)
	var held, over atomic.Int64
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(g)))
			for range 300 {
				n := 1 + r.Int64N(size)
				release, err := b.acquire(context.Background(), n)
				if err != nil {
					t.Error(err)
					return
				}
				if h := held.Add(n); h > size {
					over.Store(h)
				}
				runtime.Gosched()
				held.Add(-n)
				release()
			}
		}()
	}
	wg.Wait()
	if o := over.Load(); o != 0 {
		t.Fatalf("%d bytes held at once, budget %d", o, size)
	}
	used, peak, waiting := b.state()
	if used != 0 || waiting != 0 || peak > size || peak == 0 {
		t.Fatalf("after: used %d, peak %d, waiting %d; want 0, in (0, %d], 0", used, peak, waiting, size)
	}
}

// TestBudgetWaitersProceed: a reservation that does not fit waits until
// enough is released and then proceeds; waiters are served in order, so a
// large one is not passed by small ones that would fit; a waiter whose ctx
// ends gives up without holding anything and without blocking those
// behind it; a reservation larger than the budget is cut to the budget.
func TestBudgetWaitersProceed(t *testing.T) {
	b := newBudget(100)
	ctx := t.Context()
	r1, err := b.acquire(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		name    string
		release func()
	}
	order := make(chan result, 3)
	var bigDone atomic.Bool
	go func() { // 80 does not fit beside 60
		rel, err := b.acquire(ctx, 80)
		if err != nil {
			t.Error(err)
		}
		bigDone.Store(true)
		order <- result{"big", rel}
	}()
	waitFor(t, "the big reservation queues", func() bool { _, _, w := b.state(); return w == 1 })

	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { // queued behind big; gives up
		_, err := b.acquire(cctx, 10)
		cancelled <- err
	}()
	waitFor(t, "the cancellable reservation queues", func() bool { _, _, w := b.state(); return w == 2 })
	var smallDone atomic.Bool
	go func() { // 30 would fit now (60+30 ≤ 100) but must wait behind big
		rel, err := b.acquire(ctx, 30)
		if err != nil {
			t.Error(err)
		}
		smallDone.Store(true)
		order <- result{"small", rel}
	}()
	waitFor(t, "the small reservation queues", func() bool { _, _, w := b.state(); return w == 3 })
	if bigDone.Load() || smallDone.Load() {
		t.Fatal("a reservation was granted past the queue's head or the budget")
	}
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	waitFor(t, "the cancelled waiter leaves the queue", func() bool { _, _, w := b.state(); return w == 2 })

	r1() // 0 held: big (80) is granted, small (30) no longer fits beside it
	first := <-order
	if first.name != "big" {
		t.Fatalf("granted %s first, want big", first.name)
	}
	if used, _, w := b.state(); used != 80 || w != 1 || smallDone.Load() {
		t.Fatalf("after big: used %d, waiting %d, small granted %v; want 80, 1, false", used, w, smallDone.Load())
	}
	first.release()
	second := <-order
	if used, _, _ := b.state(); used != 30 {
		t.Fatalf("used %d, want 30", used)
	}
	second.release()
	first.release() // a second release is a no-op
	if used, peak, w := b.state(); used != 0 || w != 0 || peak > 100 {
		t.Fatalf("used %d, peak %d, waiting %d", used, peak, w)
	}

	huge, err := b.acquire(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if used, _, _ := b.state(); used != 100 {
		t.Fatalf("an oversized reservation holds %d, want the whole budget 100", used)
	}
	huge()

	unbounded := newBudget(0)
	rel, err := unbounded.acquire(ctx, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	rel()
}

// TestCoordinatorMemoryBudget: PUTs, GETs and copies of objects large and
// small, far more at once than the budget holds, all succeed, and the
// coordinator never reserves more than its budget. The budget is one and a
// half full-size PUTs' worth, and a copy of a large object needs more than
// that alone (it reserves its read and its write together), so copies also
// show that an oversized reservation runs alone instead of deadlocking.
func TestCoordinatorMemoryBudget(t *testing.T) {
	cfg := testConfig()
	codec, err := erasure.New(cfg.K, cfg.M, cfg.BlockSize)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MemoryBudget = 3 * codec.EncodeMemory(-1) / 2
	h := newHarness(t, 6, cfg)
	sd := int64(cfg.K * cfg.BlockSize)
	sizes := []int64{0, 10, 5000, sd, 3*sd + 17, 20 * sd}

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := sizes[i%len(sizes)]
			data := pattern(uint64(i), int(size))
			key := fmt.Sprintf("k%d", i)
			m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: key, Body: bytes.NewReader(data), Size: size})
			if err != nil {
				errs <- fmt.Errorf("put %s: %w", key, err)
				return
			}
			var buf bytes.Buffer
			if err := h.c.ReadObject(h.ctx, &buf, m, 0, m.Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
				errs <- fmt.Errorf("read %s: %v (equal %v)", key, err, bytes.Equal(buf.Bytes(), data))
				return
			}
			if i%3 == 0 {
				cm, err := h.c.CopyObject(h.ctx, m, PutInput{Bucket: testBucket, Key: key + "-copy"})
				if err != nil {
					errs <- fmt.Errorf("copy %s: %w", key, err)
					return
				}
				buf.Reset()
				if err := h.c.ReadObject(h.ctx, &buf, cm, 0, cm.Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
					errs <- fmt.Errorf("read copy of %s: %v", key, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	used, peak, waiting := h.c.mem.state()
	t.Logf("budget %d, peak reserved %d", cfg.MemoryBudget, peak)
	if peak > cfg.MemoryBudget || peak == 0 || used != 0 || waiting != 0 {
		t.Fatalf("budget %d: peak %d, used %d, waiting %d after", cfg.MemoryBudget, peak, used, waiting)
	}
}

// TestPutWaitsForBudget: a PUT that finds the budget spent waits (holding
// no node connection) and proceeds once memory is released; one whose ctx
// ends while it waits fails with the ctx's error and writes nothing.
func TestPutWaitsForBudget(t *testing.T) {
	cfg := testConfig()
	cfg.MemoryBudget = 1 << 20
	h := newHarness(t, 6, cfg)
	hold, err := h.c.mem.acquire(h.ctx, cfg.MemoryBudget)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(7, 50_000)
	done := make(chan error, 1)
	go func() {
		_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "waits", Body: bytes.NewReader(data), Size: int64(len(data))})
		done <- err
	}()
	waitFor(t, "the PUT queues for memory", func() bool { _, _, w := h.c.mem.state(); return w == 1 })

	cctx, cancel := context.WithCancel(h.ctx)
	gaveUp := make(chan error, 1)
	go func() {
		_, err := h.c.PutObject(cctx, PutInput{Bucket: testBucket, Key: "gives-up", Body: bytes.NewReader(data), Size: int64(len(data))})
		gaveUp <- err
	}()
	waitFor(t, "the second PUT queues", func() bool { _, _, w := h.c.mem.state(); return w == 2 })
	if n := len(h.stored()); n != 0 {
		t.Fatalf("%d shards written while every PUT waits for memory", n)
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled PUT: %v", err)
	}
	hold()
	if err := <-done; err != nil {
		t.Fatalf("waiting PUT: %v", err)
	}
	if _, err := h.c.HeadObject(h.ctx, testBucket, "gives-up"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("the cancelled PUT's key: %v", err)
	}
	m, err := h.c.HeadObject(h.ctx, testBucket, "waits")
	if err != nil {
		t.Fatal(err)
	}
	if got := h.mustRead(m, 0, m.Size); !bytes.Equal(got, data) {
		t.Fatal("the PUT that waited stored other bytes")
	}
}

// TestPutIntoBucketDeletedMeanwhile: PutObject trusts a bucket it saw
// exist within MapRefresh, but a bucket deleted in that window still
// refuses the PUT (meta's commit checks it) and the shards written become
// garbage.
func TestPutIntoBucketDeletedMeanwhile(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	if err := h.c.CreateBucket(h.ctx, "gone", ""); err != nil {
		t.Fatal(err)
	}
	data := pattern(5, 9000)
	if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: "gone", Key: "a", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.DeleteObject(h.ctx, "gone", "a"); err != nil {
		t.Fatal(err)
	}
	if err := h.c.DeleteBucket(h.ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	before := len(h.garbage())
	_, err := h.c.PutObject(h.ctx, PutInput{Bucket: "gone", Key: "b", Body: bytes.NewReader(data), Size: int64(len(data))})
	if !errors.Is(err, meta.ErrNoSuchBucket) {
		t.Fatalf("PUT into a bucket deleted within the cache window: %v, want ErrNoSuchBucket", err)
	}
	if got := len(h.garbage()) - before; got != 6 {
		t.Fatalf("%d new garbage entries, want the 6 shards of the refused PUT", got)
	}
	h.clock.Advance(2 * h.c.cfg.MapRefresh)
	before = len(h.garbage())
	if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: "gone", Key: "c", Body: bytes.NewReader(data), Size: int64(len(data))}); !errors.Is(err, meta.ErrNoSuchBucket) {
		t.Fatalf("PUT into a missing bucket: %v", err)
	}
	if got := len(h.garbage()) - before; got != 0 {
		t.Fatalf("a PUT into a bucket known missing wrote %d shards", got)
	}
}
