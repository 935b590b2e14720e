package repair

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/testclock"
)

// throttleRig is a throttle on a fake clock whose waits advance the clock
// (each wait is logged) and a foreground counter the test drives.
type throttleRig struct {
	clk   *testclock.Clock
	fg    atomic.Uint64
	t     *throttle
	waits []time.Duration
	// onWait, if set, runs at each wait (after the clock moved); an error
	// ends the wait with it.
	onWait func() error
}

func newRig(cfg ThrottleConfig, concurrency int) *throttleRig {
	r := &throttleRig{clk: testclock.New(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))}
	cfg.Wait = func(ctx context.Context, _ <-chan struct{}, d time.Duration) error {
		r.waits = append(r.waits, d)
		r.clk.Advance(d)
		if r.onWait != nil {
			if err := r.onWait(); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	r.t = newThrottle(cfg, concurrency, ForegroundFunc(r.fg.Load), r.clk.Now)
	return r
}

// load adds n foreground requests spread over d: the clock moves d, and the
// throttle measures at its end.
func (r *throttleRig) load(n uint64, d time.Duration) {
	r.fg.Add(n)
	r.clk.Advance(d)
	r.t.observe()
}

func (r *throttleRig) admitNow(t *testing.T, urgent bool) {
	t.Helper()
	before := len(r.waits)
	if err := r.t.admit(context.Background(), urgent); err != nil {
		t.Fatal(err)
	}
	if len(r.waits) != before {
		t.Fatalf("admit waited %v, want at once (status %+v)", r.waits[before:], r.t.status())
	}
}

func TestThrottleIdleRunsAtConcurrency(t *testing.T) {
	r := newRig(ThrottleConfig{}, 3)
	r.t.observe()
	r.load(0, time.Second)
	for range 3 {
		r.admitNow(t, false)
	}
	s := r.t.status()
	if s.State != ThrottleFull || s.Limit != 3 || s.InFlight != 3 {
		t.Fatalf("idle status %+v, want full, 3/3", s)
	}
	// A fourth waits until one is done, then starts without a pause.
	r.onWait = func() error {
		if len(r.waits) == 1 {
			r.t.done(100 * time.Millisecond)
		}
		return nil
	}
	if err := r.t.admit(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if len(r.waits) != 1 {
		t.Fatalf("waits %v, want one (for the slot)", r.waits)
	}
}

func TestThrottleYieldsToForeground(t *testing.T) {
	r := newRig(ThrottleConfig{Window: 250 * time.Millisecond, Pause: 2, MaxPause: time.Second}, 2)
	r.t.observe()
	r.load(100, 500*time.Millisecond) // 200 req/s
	s := r.t.status()
	if s.State != ThrottleYield || s.Limit != 1 || s.FGRate != 200 {
		t.Fatalf("under load: %+v, want yield, limit 1, 200 req/s", s)
	}
	r.admitNow(t, false)
	// The second waits for the first: one window at a time (re-measuring),
	// and then for the pause after it: twice the 100 ms it took.
	r.onWait = func() error {
		r.fg.Add(100) // the load goes on
		if len(r.waits) == 3 {
			r.t.done(100 * time.Millisecond)
		}
		return nil
	}
	start := r.clk.Now()
	if err := r.t.admit(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 200 * time.Millisecond}
	if !equalDurations(r.waits, want) {
		t.Fatalf("waits %v, want %v", r.waits, want)
	}
	if got := r.clk.Now().Sub(start); got != 950*time.Millisecond {
		t.Fatalf("admitted after %v", got)
	}
	if s := r.t.status(); s.Pause != 200*time.Millisecond || s.InFlight != 1 {
		t.Fatalf("status %+v, want pause 200ms, 1 in flight", s)
	}
}

func TestThrottlePauseIsBounded(t *testing.T) {
	r := newRig(ThrottleConfig{Pause: 10, MaxPause: 300 * time.Millisecond}, 2)
	r.t.observe()
	r.load(100, time.Second)
	r.admitNow(t, false)
	r.t.done(5 * time.Second) // a slow object: 10× would be 50 s
	r.onWait = func() error { r.fg.Add(100); return nil }
	if err := r.t.admit(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	var sum time.Duration
	for _, w := range r.waits {
		sum += w
	}
	if sum != 300*time.Millisecond {
		t.Fatalf("waited %v (%v), want the 300 ms cap", sum, r.waits)
	}
}

func TestThrottleBackToFullAfterQuiet(t *testing.T) {
	r := newRig(ThrottleConfig{Window: 250 * time.Millisecond, Quiet: 2 * time.Second}, 4)
	r.t.observe()
	r.load(50, 250*time.Millisecond)
	if s := r.t.status(); s.State != ThrottleYield || s.Limit != 1 {
		t.Fatalf("%+v, want yield at 1", s)
	}
	// Quiet from now on: still yielding until Quiet has passed since the
	// last busy window, then full.
	for range 7 {
		r.load(0, 250*time.Millisecond)
		if s := r.t.status(); s.State != ThrottleYield {
			t.Fatalf("after %v quiet: %+v, want still yielding", r.clk.Now(), s)
		}
	}
	r.load(0, 250*time.Millisecond)
	if s := r.t.status(); s.State != ThrottleFull || s.Limit != 4 || s.Pause != 0 {
		t.Fatalf("after 2 s quiet: %+v, want full at 4 without pause", s)
	}
	// A trickle below BusyRate (1 request in a second) is not load.
	r.load(1, time.Second)
	if s := r.t.status(); s.State != ThrottleFull {
		t.Fatalf("1 req/s: %+v, want full", s)
	}
}

func TestThrottleUrgentBypasses(t *testing.T) {
	r := newRig(ThrottleConfig{}, 2)
	r.t.observe()
	r.load(100, time.Second)
	r.admitNow(t, false)
	r.t.done(time.Second) // a pause is due
	r.admitNow(t, true)
	r.admitNow(t, true) // beyond the limit too
	if s := r.t.status(); s.InFlight != 2 || s.Limit != 1 {
		t.Fatalf("%+v", s)
	}
}

func TestThrottleOffIgnoresForeground(t *testing.T) {
	r := newRig(ThrottleConfig{Off: true}, 2)
	r.t.observe()
	r.load(1000, time.Second)
	r.admitNow(t, false)
	r.t.done(time.Second)
	r.admitNow(t, false)
	r.admitNow(t, false)
	if s := r.t.status(); s.State != ThrottleOff || s.Limit != 2 {
		t.Fatalf("%+v, want off at 2", s)
	}
}

func TestThrottleWithoutSignalRunsFull(t *testing.T) {
	clk := testclock.New(time.Unix(0, 0))
	th := newThrottle(ThrottleConfig{}, 2, nil, clk.Now)
	for range 2 {
		if err := th.admit(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	if s := th.status(); s.State != ThrottleFull || s.InFlight != 2 {
		t.Fatalf("%+v", s)
	}
}

func TestThrottleAdmitCancelled(t *testing.T) {
	r := newRig(ThrottleConfig{}, 1)
	r.admitNow(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	r.onWait = func() error { cancel(); return nil }
	err := r.t.admit(ctx, false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("admit: %v, want canceled", err)
	}
	if s := r.t.status(); s.InFlight != 1 {
		t.Fatalf("a cancelled admit counted: %+v", s)
	}
	if err := r.t.admit(ctx, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("urgent admit on a done ctx: %v", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestThrottleYieldsAtMostMaxYield: under foreground load that never
// stops, repair yields for MaxYield and then runs at full speed, without
// pauses, until the foreground has been quiet for Quiet; the next busy
// stretch yields again.
func TestThrottleYieldsAtMostMaxYield(t *testing.T) {
	r := newRig(ThrottleConfig{Window: 250 * time.Millisecond, Quiet: 2 * time.Second, MaxYield: 10 * time.Second}, 4)
	r.t.observe()
	r.load(50, 250*time.Millisecond)
	if s := r.t.status(); s.State != ThrottleYield || s.Limit != 1 {
		t.Fatalf("%+v, want yield at 1", s)
	}
	for range 39 { // busy since the first window's end; 9.75 s more: still yielding
		r.load(50, 250*time.Millisecond)
	}
	if s := r.t.status(); s.State != ThrottleYield {
		t.Fatalf("before MaxYield: %+v, want yield", s)
	}
	r.load(50, 250*time.Millisecond) // 10 s busy
	s := r.t.status()
	if s.State != ThrottleFull || s.Limit != 4 || s.Pause != 0 || !strings.Contains(s.Reason, "yielded for 10s") {
		t.Fatalf("after MaxYield of load: %+v, want full at 4, no pause, saying why", s)
	}
	for range 8 { // 2 s quiet: no longer busy
		r.load(0, 250*time.Millisecond)
	}
	if s := r.t.status(); s.State != ThrottleFull || strings.Contains(s.Reason, "yielded") {
		t.Fatalf("after quiet: %+v", s)
	}
	r.load(50, 250*time.Millisecond)
	if s := r.t.status(); s.State != ThrottleYield {
		t.Fatalf("new load after a quiet break: %+v, want yield again", s)
	}
}
