package object

import (
	"context"
	"fmt"
	"sync"
)

// budget bounds the bytes of codec buffers (encode stripes, decode records)
// that a coordinator's operations hold at once. An operation reserves what
// the codec says it may hold (erasure.Codec.EncodeMemory, DecodeMemory)
// before it takes any buffer and returns it when the codec call has
// returned; while the budget is spent, operations wait in arrival order
// (bounded by their ctx) instead of allocating past it.
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

// budgetHeld marks a context whose operation has already reserved, in one
// go, the memory of everything it runs (a copy reserves its read and its
// write together): nested reservations under it are no-ops. Reserving the
// two halves separately could deadlock — every copy's read holding its
// share while its write waits for one.
type budgetHeld struct{}

// reserve reserves n bytes of the coordinator's memory budget for an
// operation under ctx, unless ctx already holds a reservation.
func (c *Coordinator) reserve(ctx context.Context, n int64) (release func(), err error) {
	if ctx.Value(budgetHeld{}) != nil {
		return func() {}, nil
	}
	release, err = c.mem.acquire(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("wait for %d bytes of memory budget: %w", n, err)
	}
	return release, nil
}

// reserveAll reserves n bytes for an operation and everything nested under
// the returned context.
func (c *Coordinator) reserveAll(ctx context.Context, n int64) (context.Context, func(), error) {
	release, err := c.reserve(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	return context.WithValue(ctx, budgetHeld{}, true), release, nil
}
