// Package pace limits a byte rate: a token bucket that background work (the
// scrubber, the repair loop) waits on before each read or write so that
// foreground traffic keeps its disk and network bandwidth.
//
// Nouns: the rate is bytes per second; the burst is how many bytes may pass
// at once after an idle period; a waiter that takes more than the bucket
// holds goes into debt and sleeps until the debt is paid, so requests larger
// than the burst still pass at the configured rate.
//
// Invariants: over any interval of length T the bytes granted are at most
// Burst + Rate·T. Waiting honours its context: a cancelled wait returns the
// context's error at once and gives its bytes back.
//
// The package does not schedule or prioritise between waiters beyond the
// mutex order, and it does not measure anything itself: callers report the
// bytes they are about to move.
package pace

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Config configures a Limiter.
type Config struct {
	// Rate is the sustained rate in bytes per second. Zero or negative means
	// unlimited: Wait returns at once (after checking ctx).
	Rate int64
	// Burst is the bucket size in bytes: how much may pass without waiting
	// after an idle period. Default: Rate/10 (a tenth of a second's worth),
	// at least 64 KiB.
	Burst int64
	// Now reads the clock. Default time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx.Err() in the
	// latter case. Default: a timer raced against ctx.Done(). Tests inject a
	// fake that advances a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Limiter is a token bucket on bytes. It is safe for concurrent use.
type Limiter struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	rate   int64
	burst  int64
	tokens float64 // may be negative: debt of waiters already admitted
	last   time.Time
}

// New returns a Limiter with cfg's defaults applied. The bucket starts full.
func New(cfg Config) *Limiter {
	l := &Limiter{now: cfg.Now, sleep: cfg.Sleep}
	if l.now == nil {
		l.now = time.Now
	}
	if l.sleep == nil {
		l.sleep = sleepCtx
	}
	l.rate, l.burst = cfg.Rate, burstFor(cfg.Rate, cfg.Burst)
	l.tokens = float64(l.burst)
	l.last = l.now()
	return l
}

func burstFor(rate, burst int64) int64 {
	if burst > 0 {
		return burst
	}
	return max(rate/10, 64<<10)
}

// SetRate changes the rate (and resets the burst to its default for the new
// rate). Waiters already sleeping keep their computed wake-up time.
func (l *Limiter) SetRate(rate int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	l.rate = rate
	l.burst = burstFor(rate, 0)
	l.tokens = min(l.tokens, float64(l.burst))
}

// Rate reports the current rate in bytes per second (≤ 0: unlimited).
func (l *Limiter) Rate() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// refill adds the tokens earned since last; l.mu held.
func (l *Limiter) refill() {
	now := l.now()
	if el := now.Sub(l.last); el > 0 && l.rate > 0 {
		l.tokens = min(l.tokens+el.Seconds()*float64(l.rate), float64(l.burst))
	}
	l.last = now
}

// Wait blocks until n bytes may pass, or ctx is done (then it returns
// ctx.Err() and the bytes are returned to the bucket). n ≤ 0 returns at once.
func (l *Limiter) Wait(ctx context.Context, n int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	l.mu.Lock()
	if l.rate <= 0 {
		l.mu.Unlock()
		return nil
	}
	l.refill()
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / float64(l.rate) * float64(time.Second))
	}
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	if err := l.sleep(ctx, d); err != nil {
		l.mu.Lock()
		l.tokens += float64(n)
		l.mu.Unlock()
		return fmt.Errorf("pace: wait for %d bytes: %w", n, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
