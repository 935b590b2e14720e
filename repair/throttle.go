package repair

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Foreground counts the foreground requests the cluster has served: the
// requests the S3 path makes (meta's object, bucket and upload methods, one
// or two per S3 operation), not heartbeats, status, replica management or
// the repair loop's own reads. The count only grows. Requests must be
// cheap and safe for concurrent use.
type Foreground interface {
	Requests() uint64
}

// ForegroundFunc adapts a function to Foreground.
type ForegroundFunc func() uint64

// Requests calls f.
func (f ForegroundFunc) Requests() uint64 { return f() }

// ThrottleConfig tunes the adaptive throttle: repair runs at
// Config.Concurrency objects in flight while the cluster serves no
// foreground work, and yields while it does. Zero fields take the defaults.
type ThrottleConfig struct {
	// Off turns the adaptive throttle off: Concurrency objects in flight
	// whatever the foreground does (Config.Rate still applies).
	Off bool
	// Window is the span over which the foreground rate is measured. The
	// throttle notices foreground work this late at most (plus the time of
	// the objects in flight). Default 250ms.
	Window time.Duration
	// BusyRate is the foreground rate, in requests per second, at or above
	// which the cluster is busy. Default 2 (a lone request now and then,
	// such as an operator's listing, does not slow repair).
	BusyRate float64
	// Quiet is how long the foreground rate must stay below BusyRate before
	// repair goes back to full speed. Default 2s.
	Quiet time.Duration
	// BusyConcurrency is the number of objects in flight while busy, at most
	// Concurrency. Default 1. With Pause it is the floor that makes repair
	// finish under constant foreground load: it never stops.
	BusyConcurrency int
	// Pause: while busy, after each object the next one starts Pause times
	// the time that object took later (a duty cycle: one object in flight
	// repairs at least 1/(1+Pause) of the time). Default 1; negative: none.
	Pause float64
	// MaxPause bounds one pause. Default 1s.
	MaxPause time.Duration
	// MaxYield bounds how long repair yields: once the cluster has been
	// busy this long without a Quiet break, repair runs at full speed until
	// the foreground is quiet again, so constant (or cheap, frequent)
	// foreground requests do not stretch the time objects spend with
	// reduced redundancy beyond this. Default 5m; negative: no bound.
	MaxYield time.Duration
	// Wait blocks until ch is closed (the throttle's state changed), d has
	// passed or ctx is done, and then returns ctx.Err(). Default: a timer
	// raced against both. Tests inject one that advances a fake clock.
	Wait func(ctx context.Context, ch <-chan struct{}, d time.Duration) error
}

func (c *ThrottleConfig) setDefaults(concurrency int) {
	if c.Window <= 0 {
		c.Window = 250 * time.Millisecond
	}
	if c.BusyRate <= 0 {
		c.BusyRate = 2
	}
	if c.Quiet <= 0 {
		c.Quiet = 2 * time.Second
	}
	if c.BusyConcurrency <= 0 {
		c.BusyConcurrency = 1
	}
	c.BusyConcurrency = min(c.BusyConcurrency, concurrency)
	if c.Pause == 0 {
		c.Pause = 1
	}
	if c.Pause < 0 {
		c.Pause = 0
	}
	if c.MaxPause <= 0 {
		c.MaxPause = time.Second
	}
	if c.MaxYield == 0 {
		c.MaxYield = 5 * time.Minute
	}
	if c.Wait == nil {
		c.Wait = waitCtx
	}
}

// Throttle states, as ThrottleStatus.State reports them.
const (
	ThrottleOff   = "off"   // the adaptive throttle is off: Concurrency in flight
	ThrottleFull  = "full"  // no foreground work: Concurrency in flight
	ThrottleYield = "yield" // foreground work: BusyConcurrency in flight, with pauses
)

// ThrottleStatus is what the throttle is doing.
type ThrottleStatus struct {
	State    string  // ThrottleOff, ThrottleFull or ThrottleYield
	Limit    int     // objects allowed in flight now
	InFlight int     // objects in flight now (urgent ones included)
	FGRate   float64 // foreground requests per second over the last window
	// Pause is the wait after the last object finished before the next one
	// may start (0: none).
	Pause time.Duration
	// Reason says why, in words.
	Reason string
}

// throttle is the adaptive throttle: the controller (observe, which turns
// foreground counts into a limit on objects in flight and a pause) and the
// admission it gates (admit, done). Safe for concurrent use; it calls
// nothing of the loop's.
type throttle struct {
	cfg         ThrottleConfig
	concurrency int
	fg          Foreground // nil: never busy
	now         func() time.Time

	mu        sync.Mutex
	sampleAt  time.Time // start of the window being measured (zero: none yet)
	sampleN   uint64    // the count then
	rate      float64   // requests/s over the last full window
	busyAt    time.Time // end of the last window at or above BusyRate (zero: never)
	busy      bool
	busyFrom  time.Time // when busy last turned true
	overdue   bool      // busy for MaxYield: full speed until quiet
	inFlight  int
	notBefore time.Time     // while busy, no object starts before this
	pause     time.Duration // the pause notBefore came from
	changed   chan struct{} // closed and replaced when inFlight, busy or notBefore change
}

func newThrottle(cfg ThrottleConfig, concurrency int, fg Foreground, now func() time.Time) *throttle {
	cfg.setDefaults(concurrency)
	return &throttle{cfg: cfg, concurrency: concurrency, fg: fg, now: now, changed: make(chan struct{})}
}

// observeLocked measures the foreground rate once a Window has passed
// since the last measurement and decides whether the cluster is busy: at
// or above BusyRate in the last window, or in any window less than Quiet
// ago. Must hold t.mu.
func (t *throttle) observeLocked(now time.Time) {
	if t.cfg.Off || t.fg == nil {
		return
	}
	n := t.fg.Requests()
	if t.sampleAt.IsZero() || now.Before(t.sampleAt) {
		t.sampleAt, t.sampleN = now, n
		return
	}
	el := now.Sub(t.sampleAt)
	if el < t.cfg.Window {
		return
	}
	t.rate = float64(n-t.sampleN) / el.Seconds()
	t.sampleAt, t.sampleN = now, n
	if t.rate >= t.cfg.BusyRate {
		t.busyAt = now
	}
	busy := !t.busyAt.IsZero() && now.Sub(t.busyAt) < t.cfg.Quiet
	if busy != t.busy {
		t.busy, t.overdue = busy, false
		if busy {
			t.busyFrom = now
		} else {
			t.notBefore, t.pause = time.Time{}, 0
		}
		t.broadcastLocked()
	}
	if t.busy && !t.overdue && t.cfg.MaxYield > 0 && now.Sub(t.busyFrom) >= t.cfg.MaxYield {
		t.overdue = true
		t.notBefore, t.pause = time.Time{}, 0
		t.broadcastLocked()
	}
}

// yieldingLocked: busy and not yet yielding for MaxYield. Must hold t.mu.
func (t *throttle) yieldingLocked() bool { return t.busy && !t.overdue }

// limitLocked is the number of objects allowed in flight. Must hold t.mu.
func (t *throttle) limitLocked() int {
	if t.yieldingLocked() {
		return t.cfg.BusyConcurrency
	}
	return t.concurrency
}

func (t *throttle) broadcastLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// observe measures the foreground (see observeLocked); the loop calls it
// at the start of every pass so a pass starts from a fresh figure.
func (t *throttle) observe() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.observeLocked(t.now())
}

// admit waits until one more object may start — fewer than the limit in
// flight and, while busy, the pause after the last object over — and
// counts it in flight; the caller calls done when the object is finished.
// An urgent object starts at once. Each wait is at most a Window (then it
// measures again) and ends with ctx, whose error it returns (nothing is
// then counted).
func (t *throttle) admit(ctx context.Context, urgent bool) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.mu.Lock()
		now := t.now()
		t.observeLocked(now)
		var d time.Duration
		switch {
		case urgent:
		case t.inFlight >= t.limitLocked():
			d = t.cfg.Window
		case t.yieldingLocked() && now.Before(t.notBefore):
			d = min(t.notBefore.Sub(now), t.cfg.Window)
		}
		if d == 0 {
			t.inFlight++
			t.mu.Unlock()
			return nil
		}
		ch := t.changed
		t.mu.Unlock()
		if err := t.cfg.Wait(ctx, ch, d); err != nil {
			return fmt.Errorf("repair throttle: %w", err)
		}
	}
}

// done ends an object admit let start, which took took: while busy, the
// next object waits Pause times that (at most MaxPause).
func (t *throttle) done(took time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight--
	now := t.now()
	t.observeLocked(now)
	if t.yieldingLocked() && t.cfg.Pause > 0 && took > 0 {
		p := min(time.Duration(float64(took)*t.cfg.Pause), t.cfg.MaxPause)
		if nb := now.Add(p); nb.After(t.notBefore) {
			t.notBefore, t.pause = nb, p
		}
	}
	t.broadcastLocked()
}

// status says what the throttle is doing.
func (t *throttle) status() ThrottleStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := ThrottleStatus{Limit: t.limitLocked(), InFlight: t.inFlight, FGRate: t.rate}
	switch {
	case t.cfg.Off:
		s.State, s.Reason = ThrottleOff, "adaptive throttle off"
	case t.fg == nil:
		s.State, s.Reason = ThrottleFull, "no foreground signal"
	case t.overdue:
		s.State = ThrottleFull
		s.Reason = fmt.Sprintf("foreground %.0f req/s, but repair has yielded for %s: full speed until the foreground is quiet for %s",
			t.rate, t.cfg.MaxYield, t.cfg.Quiet)
	case t.busy:
		s.State, s.Pause = ThrottleYield, t.pause
		s.Reason = fmt.Sprintf("foreground %.0f req/s (busy at ≥ %g) within the last %s: %d in flight, pause %.1f× each object's time",
			t.rate, t.cfg.BusyRate, t.cfg.Quiet, s.Limit, t.cfg.Pause)
	default:
		s.State = ThrottleFull
		s.Reason = fmt.Sprintf("foreground %.0f req/s (busy at ≥ %g): full speed", t.rate, t.cfg.BusyRate)
	}
	return s
}

// waitCtx waits for ch to close, d to pass or ctx to end, and returns
// ctx.Err().
func waitCtx(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ch:
	case <-tm.C:
	case <-ctx.Done():
	}
	return ctx.Err()
}
