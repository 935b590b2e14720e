package object

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shale-store/shale/internal/progress"
)

// budget bounds the bytes of codec buffers (encode stripes, decode records)
// that a coordinator's operations hold at once. An operation reserves what
// the codec says it may hold (erasure.Codec.EncodeMemory, DecodeMemory)
// before it takes any buffer and returns it when the codec call has
// returned; while the budget is spent, operations wait in arrival order
// (bounded by their ctx and Config.BudgetWait) instead of allocating past
// it. An operation blocked on its client gives its bytes back meanwhile
// (clientGuard).
//
// A reservation larger than the whole budget is cut to the whole budget, so
// a budget set below one operation's need lets operations through one at a
// time rather than never. The zero size means no bound.
type budget struct {
	size int64 // bytes; 0: unbounded

	mu      sync.Mutex // guards used, peak, waiters
	used    int64
	peak    int64
	waiters []*waiter // FIFO
}

type waiter struct {
	n     int64
	ready chan struct{} // closed once n bytes are granted
}

func newBudget(size int64) *budget {
	return &budget{size: max(size, 0)}
}

// acquire reserves n bytes, waiting until they are free or ctx is done
// (then it returns ctx's error and reserves nothing). Grants are FIFO: a
// large reservation is not starved by a stream of small ones. The returned
// release returns the bytes; it must be called exactly once.
func (b *budget) acquire(ctx context.Context, n int64) (release func(), err error) {
	if b.size == 0 || n <= 0 {
		return func() {}, nil
	}
	n = min(n, b.size)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.used+n <= b.size {
		b.grant(n)
		b.mu.Unlock()
		return b.releaser(n), nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return b.releaser(n), nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted while giving up: hand the bytes back.
			b.used -= n
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
		}
		b.wake()
		b.mu.Unlock()
		return nil, ctx.Err()
	}
}

// grant takes n bytes. Must hold mu.
func (b *budget) grant(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// wake grants the waiters at the head of the queue that now fit. Must hold mu.
func (b *budget) wake() {
	for len(b.waiters) > 0 && b.used+b.waiters[0].n <= b.size {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.grant(w.n)
		close(w.ready)
	}
}

func (b *budget) releaser(n int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.used -= n
			b.wake()
			b.mu.Unlock()
		})
	}
}

// state reports the bytes reserved now, the most ever reserved at once, and
// the operations waiting.
func (b *budget) state() (used, peak int64, waiting int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak, len(b.waiters)
}

// memory says who reserves an operation's codec memory. It is an explicit
// parameter of the internal put and read paths, so the one place that
// nests them (a copy) says so where it calls them.
type memory int

const (
	// ownMemory: the operation reserves its own memory, and gives it back
	// while it is blocked on its client (clientGuard for a PUT's body,
	// clientWriter for a GET's response).
	ownMemory memory = iota
	// heldMemory: the caller already reserved, in one go, the memory of
	// everything it runs — a copy reserves its read and its write together,
	// since reserving the two halves separately could deadlock (every copy's
	// read holding its share while its write waits for one). The operation
	// reserves nothing and never yields: it is blocked on its own other
	// half, not on a client.
	heldMemory
)

// lease is one operation's reservation of n bytes of the memory budget.
// While the operation is blocked on its client it may give the bytes back
// (suspend); it takes them again (resume, a bounded wait like the first
// one) before it goes on. end returns them for good.
type lease struct {
	c *Coordinator
	n int64

	mu      sync.Mutex // guards release, ended
	release func()     // nil while suspended or ended
	ended   bool
}

// lease reserves n bytes, waiting at most Config.BudgetWait (then ErrBusy)
// or until ctx is done. With heldMemory it reserves nothing.
func (c *Coordinator) lease(ctx context.Context, n int64, mem memory) (*lease, error) {
	l := &lease{c: c, n: n}
	if mem == heldMemory {
		l.ended = true // nothing to give back or take again
		return l, nil
	}
	if err := l.take(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *lease) take(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, l.c.cfg.BudgetWait)
	defer cancel()
	release, err := l.c.mem.acquire(wctx, l.n)
	if err != nil {
		if ctx.Err() == nil {
			err = ErrBusy
		}
		return fmt.Errorf("wait %v for %d bytes of memory budget: %w", l.c.cfg.BudgetWait, l.n, err)
	}
	l.release = release
	return nil
}

// suspend gives the bytes back until resume. Idempotent.
func (l *lease) suspend() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.release != nil {
		l.release()
		l.release = nil
	}
}

// resume takes the bytes again after suspend (nothing when they are held).
func (l *lease) resume(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended || l.release != nil {
		return nil
	}
	return l.take(ctx)
}

// end returns the bytes for good. Idempotent.
func (l *lease) end() {
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
	l.suspend()
}

// yields reports whether an operation reserving with mem gives its
// reservation back while blocked on its client: only one that owns its
// reservation, and only when Config.ClientYield is not negative.
func (c *Coordinator) yields(mem memory) bool {
	return mem == ownMemory && c.cfg.ClientYield >= 0
}

// clientGuard runs a PUT's (or part upload's) reads of its client's body
// and keeps the operation's reservation only while the client keeps up:
// once the client has kept the operation waiting for longer than
// Config.ClientYield in all while it sent less than one stripe of object
// data, the reservation is given back; it is taken again (a bounded wait,
// ErrBusy past Config.BudgetWait) once the client has sent a whole stripe
// since. A client that stops sending, or trickles its body at any rate
// slower than a stripe per ClientYield (10 MiB/s at the defaults), thus
// holds the budget for at most ClientYield per stripe it sends, and cannot
// starve others of it; how long it may stay connected is httpapi's
// business (BodyStall, the minimum body rate).
//
// What is then outside the budget: the PUT's body is handed to the encoder
// a stripe at a time (stagedBody) and the encoder takes a stripe buffer
// only once a stripe's first byte is there, so a PUT waiting on its client
// holds the bytes it has received of the next stripe (at most one stripe
// of object data, 1 MiB at the defaults) and the stripes still on their
// way to the nodes (bounded by Config.WriteStall). A gateway's memory
// beyond its budget is thus bounded by the requests that may wait on their
// clients at once (httpapi's MaxInFlight, the listener's connection limit)
// times one stripe, for no longer than the client deadlines.
type clientGuard struct {
	ctx    context.Context
	l      *lease
	wd     *progress.Watchdog
	yield  time.Duration
	window int64 // one stripe of object data

	// Used by the operation's goroutine only.
	suspended bool
	moved     int64         // bytes moved in this window (since the last reset or suspension)
	waited    time.Duration // time spent in client calls in this window
}

// guard returns the guard of l's operation, whose stripes hold window
// bytes of object data; nil (no yielding) with heldMemory or a negative
// ClientYield.
func (c *Coordinator) guard(ctx context.Context, l *lease, mem memory, window int64) *clientGuard {
	if !c.yields(mem) {
		return nil
	}
	return &clientGuard{ctx: ctx, l: l, wd: progress.New(l.suspend), yield: c.cfg.ClientYield, window: max(window, 1)}
}

// do runs call; see clientGuard.
func (g *clientGuard) do(call func() (int, error)) (int, error) {
	if g == nil {
		return call()
	}
	if g.suspended {
		n, err := call()
		// Take the reservation again after a stripe, or when the body
		// ended: its last, partial stripe is coded under the budget too.
		if g.moved += int64(n); g.moved >= g.window || err == io.EOF {
			if rerr := g.l.resume(g.ctx); rerr != nil {
				return n, rerr
			}
			g.suspended, g.moved, g.waited = false, 0, 0
		}
		return n, err
	}
	start := time.Now()
	g.wd.Arm(g.yield - g.waited)
	n, err := call()
	expired := g.wd.Disarm()
	g.waited += time.Since(start)
	g.moved += int64(n)
	switch {
	case expired:
		g.wd.Reset()
		g.suspended, g.moved = true, 0
	case g.moved >= g.window:
		g.moved, g.waited = 0, 0
	}
	return n, err
}

// stop ends the guard: no more suspensions.
func (g *clientGuard) stop() {
	if g != nil {
		g.wd.Stop()
	}
}

// guardedReader is a client's body read through a clientGuard.
type guardedReader struct {
	r io.Reader
	g *clientGuard
}

func (r guardedReader) Read(p []byte) (int, error) {
	return r.g.do(func() (int, error) { return r.r.Read(p) })
}
