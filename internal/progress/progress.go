package progress

import (
	"sync"
	"time"
)

// Watchdog runs its action once, the first time an armed operation misses
// its deadline. Arm before a blocking call, Disarm after it. An expired
// Watchdog stays expired — the action has usually broken the stream it
// guards — until Reset, for actions that break nothing (giving back a
// memory reservation while a client is slow). Safe for concurrent use. The
// action runs on the timer's goroutine with the Watchdog locked, so it must
// be quick and must not call the Watchdog; in exchange, once Disarm reports
// an expiry, the action has finished.
type Watchdog struct {
	action func()

	mu      sync.Mutex // guards the fields below
	timer   *time.Timer
	gen     uint64 // bumped by every Arm and Disarm: a timer of an older generation does nothing
	armed   bool
	expired bool
	stopped bool
}

// New returns a disarmed Watchdog that runs action on expiry.
func New(action func()) *Watchdog { return &Watchdog{action: action} }

// Arm starts (or restarts) the countdown: unless Disarm is called within d,
// the Watchdog expires. d ≤ 0 expires at once. It does nothing once the
// Watchdog expired or was stopped.
func (w *Watchdog) Arm(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.expired || w.stopped {
		return
	}
	w.gen++
	w.armed = true
	gen := w.gen
	if w.timer == nil {
		w.timer = time.AfterFunc(d, func() { w.fire(gen) })
		return
	}
	// A timer whose function already started is harmless: fire checks
	// the generation under mu.
	w.timer.Stop()
	w.timer = time.AfterFunc(d, func() { w.fire(gen) })
}

// ArmAt is Arm with an absolute deadline.
func (w *Watchdog) ArmAt(t time.Time) { w.Arm(time.Until(t)) }

func (w *Watchdog) fire(gen uint64) {
	w.mu.Lock()
	if !w.armed || gen != w.gen || w.expired || w.stopped {
		w.mu.Unlock()
		return
	}
	defer w.mu.Unlock()
	w.expired = true
	w.armed = false
	w.action()
}

// Disarm ends the countdown and reports whether the Watchdog has expired
// (now or before): then the call it guarded was cut by the action, and its
// error should be reported as a stall.
func (w *Watchdog) Disarm() (expired bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	w.armed = false
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.expired
}

// Expired reports whether the action has run (or is running).
func (w *Watchdog) Expired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.expired
}

// Reset makes an expired Watchdog ready to be armed again.
func (w *Watchdog) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expired = false
}

// Stop disarms the Watchdog for good: it never expires afterwards.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.armed = false
	if w.timer != nil {
		w.timer.Stop()
	}
}

// MinRate is the rule "once a stream has waited Grace on its peer, it must
// have moved at least BytesPerSec bytes for every further second it
// waits": a peer that trickles keeps its slot no longer than the bytes it
// sent pay for. Only time spent waiting on the peer counts (the caller sums
// the time its calls were blocked), so a server that is itself slow to ask
// for bytes never holds that against its client. The zero BytesPerSec
// means no rate rule.
type MinRate struct {
	BytesPerSec int64
	Grace       time.Duration
}

// Allowance is how much longer a stream that has moved n bytes while
// waiting waited in all may wait before it falls below the rate (≤ 0: it
// already has). ok is false when there is no rule.
func (r MinRate) Allowance(n int64, waited time.Duration) (allowance time.Duration, ok bool) {
	if r.BytesPerSec <= 0 {
		return 0, false
	}
	paid := time.Duration(float64(n) / float64(r.BytesPerSec) * float64(time.Second))
	return r.Grace + paid - waited, true
}
