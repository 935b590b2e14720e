package leader_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/leader"
	"github.com/shale-store/shale/internal/leader/leadertest"
)

// wait is how long a test waits for something that must happen; it only
// bounds a failing test.
const wait = 10 * time.Second

// passes is a task that makes "passes" back to back until its context
// ends, as the repair loop does, and counts how many run at once.
type passes struct {
	active, most, total atomic.Int64
	runs                atomic.Int64  // runs of the task started
	started, stopped    chan struct{} // one value per run of the task
	pass                time.Duration // how long a pass takes
}

func newPasses() *passes {
	return &passes{started: make(chan struct{}, 1000), stopped: make(chan struct{}, 1000), pass: 50 * time.Microsecond}
}

func (p *passes) task(name string) leader.Task {
	return leader.Task{Name: name, Run: func(ctx context.Context) error {
		p.runs.Add(1)
		p.started <- struct{}{}
		defer func() { p.stopped <- struct{}{} }()
		for ctx.Err() == nil {
			n := p.active.Add(1)
			for {
				m := p.most.Load()
				if n <= m || p.most.CompareAndSwap(m, n) {
					break
				}
			}
			p.total.Add(1)
			time.Sleep(p.pass) // a pass runs to its end
			p.active.Add(-1)
		}
		return ctx.Err()
	}}
}

func recv(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait):
		t.Fatalf("%s did not happen within %v", what, wait)
	}
}

func startRunner(t *testing.T, r *leader.Runner) (cancel func() error) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	done := false
	cancel = func() error {
		if done {
			return nil
		}
		done = true
		stop()
		select {
		case err := <-errc:
			return err
		case <-time.After(wait):
			t.Fatal("Run did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { _ = cancel() })
	return cancel
}

// Leadership flipping true/false/true as fast as the test can say it,
// values dropped on the way as raft drops them: the loop never runs twice
// at once, and every run that started also stopped.
func TestRunnerNeverRunsTwoLoopsAtOnce(t *testing.T) {
	fl := leadertest.New()
	loop, ticker := newPasses(), newPasses()
	loop.pass = 500 * time.Microsecond // so an overlap would show
	r := leader.New(leader.Config{}, fl, loop.task("repair loop"), ticker.task("ticker"))
	cancel := startRunner(t, r)
	for i := range 2000 {
		fl.Set(i%3 != 1) // true, false, true, true, false, true, …
		if i%7 == 0 {
			time.Sleep(time.Duration(i%5) * 200 * time.Microsecond)
		}
		if i%100 == 0 {
			// Let a term really run now and then.
			prev := loop.runs.Load()
			fl.Set(true)
			deadline := time.Now().Add(wait)
			for loop.runs.Load() == prev {
				if time.Now().After(deadline) {
					t.Fatal("no term started")
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	fl.Set(false)
	if err := cancel(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m := loop.most.Load(); m != 1 {
		t.Fatalf("at most %d loop passes ran at once, want 1", m)
	}
	if m := ticker.most.Load(); m != 1 {
		t.Fatalf("at most %d ticker passes ran at once, want 1", m)
	}
	if loop.active.Load() != 0 || len(loop.started) != len(loop.stopped) {
		t.Fatalf("%d passes still running, %d runs started, %d stopped", loop.active.Load(), len(loop.started), len(loop.stopped))
	}
	t.Logf("%d runs, %d passes", len(loop.stopped), loop.total.Load())
}

// Losing leadership stops the work (the Runner waits for it), and
// regaining it starts the work again.
func TestRunnerStopsOnLossAndRestartsOnRegain(t *testing.T) {
	fl := leadertest.New()
	loop := newPasses()
	r := leader.New(leader.Config{}, fl, loop.task("repair loop"))
	startRunner(t, r)

	fl.Set(true)
	recv(t, loop.started, "the start on leadership")
	fl.Set(false)
	recv(t, loop.stopped, "the stop on losing leadership")
	if a := loop.active.Load(); a != 0 {
		t.Fatalf("%d passes running after the loss", a)
	}
	before := loop.total.Load()
	fl.Set(true)
	recv(t, loop.started, "the restart on regaining leadership")
	fl.Set(false)
	recv(t, loop.stopped, "the second stop")
	if loop.total.Load() == before {
		t.Fatal("no pass ran in the second term")
	}
	if fl.Barriers() != 2 {
		t.Fatalf("%d barriers for 2 terms", fl.Barriers())
	}
}

// A leader whose barrier fails does not start the work; it tries again
// while it leads, and starts once the barrier succeeds. Losing leadership
// during a barrier that hangs starts nothing.
func TestRunnerBarrierFailureMeansNoStart(t *testing.T) {
	fl := leadertest.New()
	fl.SetBarrier(func(context.Context) error { return errors.New("test: barrier timed out") })
	loop := newPasses()
	r := leader.New(leader.Config{BarrierRetry: time.Millisecond}, fl, loop.task("repair loop"))
	startRunner(t, r)

	fl.Set(true)
	deadline := time.Now().Add(wait)
	for fl.Barriers() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("barrier tried %d times", fl.Barriers())
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(loop.started); n != 0 {
		t.Fatalf("work started %d times without a barrier", n)
	}

	// The barrier now hangs until cancelled; leadership is lost meanwhile.
	entered := make(chan struct{}, 100)
	fl.SetBarrier(func(ctx context.Context) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	})
	recv(t, entered, "a barrier")
	fl.Set(false)
	fl.Set(true) // a new term, whose barrier succeeds
	fl.SetBarrier(nil)
	recv(t, loop.started, "the start after a good barrier")
	if n := len(loop.started); n != 0 {
		t.Fatalf("%d more starts", n)
	}
}

// Two trues in a row (the false between them dropped) end the term and
// start a new one, after a new barrier.
func TestRunnerRestartsOnRepeatedTrue(t *testing.T) {
	fl := leadertest.New()
	loop := newPasses()
	r := leader.New(leader.Config{}, fl, loop.task("repair loop"))
	startRunner(t, r)
	fl.Set(true)
	recv(t, loop.started, "the first term")
	fl.Set(true)
	recv(t, loop.stopped, "the end of the first term")
	recv(t, loop.started, "the second term")
	if fl.Barriers() != 2 {
		t.Fatalf("%d barriers for 2 terms", fl.Barriers())
	}
}

// A task that fails stops the others and ends Run with its error; one that
// returns nil early leaves the others running.
func TestRunnerTaskFailureEndsRun(t *testing.T) {
	fl := leadertest.New()
	loop := newPasses()
	boom := errors.New("test: tick failed")
	fail := make(chan struct{})
	r := leader.New(leader.Config{}, fl, loop.task("repair loop"),
		leader.Task{Name: "done early", Run: func(context.Context) error { return nil }},
		leader.Task{Name: "ticker", Run: func(ctx context.Context) error {
			select {
			case <-fail:
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
	errc := make(chan error, 1)
	go func() { errc <- r.Run(context.Background()) }()
	fl.Set(true)
	recv(t, loop.started, "the start")
	close(fail)
	select {
	case err := <-errc:
		if !errors.Is(err, boom) || err.Error() != "ticker: test: tick failed" {
			t.Fatalf("Run = %v, want the ticker's error", err)
		}
	case <-time.After(wait):
		t.Fatal("Run did not end on a task's failure")
	}
	if len(loop.stopped) != 1 || loop.active.Load() != 0 {
		t.Fatal("the loop was not stopped before Run returned")
	}
}

// Always leads at once and for ever: the work runs until Run's context
// ends, and Run returns nil after waiting for it.
func TestAlwaysRunsUntilCancelled(t *testing.T) {
	loop := newPasses()
	r := leader.New(leader.Config{}, leader.Always{}, loop.task("repair loop"))
	cancel := startRunner(t, r)
	recv(t, loop.started, "the start")
	if err := cancel(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(loop.stopped) != 1 || loop.active.Load() != 0 {
		t.Fatal("Run returned before the work stopped")
	}
}
