package pace

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when the limiter sleeps.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	return nil
}

func TestRateIsHonoured(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	l := New(Config{Rate: 1 << 20, Burst: 1 << 16, Now: c.Now, Sleep: c.Sleep})
	// 10 MiB in 64 KiB steps at 1 MiB/s: the first 64 KiB come from the full
	// bucket, the rest take (10 MiB - 64 KiB) / 1 MiB/s of (fake) time.
	for i := 0; i < 160; i++ {
		if err := l.Wait(context.Background(), 1<<16); err != nil {
			t.Fatal(err)
		}
	}
	want := time.Duration(float64(10<<20-1<<16) / float64(1<<20) * float64(time.Second))
	if diff := c.slept - want; diff < -time.Millisecond || diff > time.Millisecond {
		t.Fatalf("slept %v for 10 MiB at 1 MiB/s with a 64 KiB burst, want %v", c.slept, want)
	}
}

func TestLargerThanBurst(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(Config{Rate: 1000, Burst: 100, Now: c.Now, Sleep: c.Sleep})
	if err := l.Wait(context.Background(), 5100); err != nil {
		t.Fatal(err)
	}
	if c.slept != 5*time.Second {
		t.Fatalf("slept %v for 5100 bytes at 1000 B/s with 100 burst, want 5s", c.slept)
	}
}

func TestIdleRefillsOnlyToBurst(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(Config{Rate: 1000, Burst: 500, Now: c.Now, Sleep: c.Sleep})
	c.t = c.t.Add(time.Hour) // idle: the bucket holds at most 500
	if err := l.Wait(context.Background(), 1500); err != nil {
		t.Fatal(err)
	}
	if c.slept != time.Second {
		t.Fatalf("slept %v, want 1s (1000 bytes of debt at 1000 B/s)", c.slept)
	}
}

func TestUnlimited(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(Config{Rate: 0, Now: c.Now, Sleep: c.Sleep})
	for i := 0; i < 100; i++ {
		if err := l.Wait(context.Background(), 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	if c.slept != 0 {
		t.Fatalf("unlimited limiter slept %v", c.slept)
	}
}

func TestCancelledWaitRefunds(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(Config{Rate: 1000, Burst: 1000, Now: c.Now, Sleep: c.Sleep})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled ctx: %v", err)
	}
	// A wait that must sleep and is cancelled while sleeping gives its bytes back.
	ctx2, cancel2 := context.WithCancel(context.Background())
	l2 := New(Config{Rate: 1000, Burst: 1000, Now: c.Now, Sleep: func(ctx context.Context, d time.Duration) error {
		cancel2()
		return ctx2.Err()
	}})
	if err := l2.Wait(ctx2, 5000); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sleeping Wait: %v", err)
	}
	if err := l2.Wait(context.Background(), 1000); err != nil { // bucket is full again: no sleep
		t.Fatal(err)
	}
}

func TestRealSleepHonoursContext(t *testing.T) {
	l := New(Config{Rate: 1, Burst: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, 1<<20) }() // would sleep ~12 days
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

func TestSetRate(t *testing.T) {
	c := &fakeClock{t: time.Unix(0, 0)}
	l := New(Config{Rate: 1000, Burst: 1000, Now: c.Now, Sleep: c.Sleep})
	l.SetRate(0)
	if err := l.Wait(context.Background(), 1<<20); err != nil || c.slept != 0 {
		t.Fatalf("after SetRate(0): err %v, slept %v", err, c.slept)
	}
	if l.Rate() != 0 {
		t.Fatalf("Rate() = %d", l.Rate())
	}
}
