package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Leadership tells a process whether it leads. Implementations: Always,
// and the raft-replicated meta (hashicorp/raft's Raft.LeaderCh with the
// replica's Barrier).
type Leadership interface {
	// LeaderCh delivers true when the process becomes leader and false
	// when it stops being leader. It may drop values a slow reader has not
	// taken yet, keeping the latest: two trues in a row mean leadership
	// was lost and regained in between. The Runner is its only reader. A
	// closed channel means leadership is lost for good.
	LeaderCh() <-chan bool
	// Barrier returns nil once every entry committed before the call is
	// applied on this process, so work that starts afterwards sees all
	// that earlier leaders did; an error when that is not known (no longer
	// leader, a timeout, ctx done). It may be called again after an error.
	Barrier(ctx context.Context) error
}

// Always is the Leadership of a process that is the only one: it leads
// from the start, for ever, and has nothing to wait for.
type Always struct{}

// LeaderCh returns a channel that says true once.
func (Always) LeaderCh() <-chan bool {
	ch := make(chan bool, 1)
	ch <- true
	return ch
}

// Barrier returns nil at once.
func (Always) Barrier(context.Context) error { return nil }

// Task is one piece of leader-only work.
type Task struct {
	// Name says what the task is in errors and logs.
	Name string
	// Run works until ctx ends. The error it returns once ctx has ended
	// is ignored; any other error ends the Runner. Returning nil early
	// ends only this task, until the next term.
	Run func(ctx context.Context) error
}

// Config tunes a Runner. Zero fields take the defaults on each.
type Config struct {
	// BarrierRetry is how long the Runner waits after a failed Barrier
	// before it tries again, while still leader. Default 1s.
	BarrierRetry time.Duration
	// Logger receives the terms' starts and ends and failed barriers.
	// Default: discard.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.BarrierRetry <= 0 {
		c.BarrierRetry = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Runner runs its tasks while the process leads, after a barrier, and
// stops them when it no longer does.
type Runner struct {
	cfg   Config
	lead  Leadership
	tasks []Task
	// active is true while a term's tasks run (after its barrier).
	active atomic.Bool
}

// Active reports whether the tasks run now: this process leads and its
// barrier passed. Across a cluster at most one Runner should say true at
// a time (metrics and tests check it).
func (r *Runner) Active() bool { return r.active.Load() }

// New returns a Runner of tasks under lead; Run drives it.
func New(cfg Config, lead Leadership, tasks ...Task) *Runner {
	cfg.setDefaults()
	return &Runner{cfg: cfg, lead: lead, tasks: tasks}
}

// term is one period of leadership: its tasks' context and their end.
type term struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the barrier gave up or every task returned
	err    error         // a task's failure; read after done
}

// Run follows leadership until ctx ends, starting the tasks at the start
// of each term (after a successful Barrier) and stopping them — cancelled,
// and waited for — at its end. It returns nil when ctx ends (the tasks
// stopped), or the error of a task that failed while its term went on
// (the other tasks stopped).
func (r *Runner) Run(ctx context.Context) error {
	ch := r.lead.LeaderCh()
	var cur *term
	var curDone <-chan struct{} // cur.done until it is seen closed
	stop := func() {
		if cur != nil {
			cur.cancel()
			<-cur.done
			r.cfg.Logger.Info("leader-only work stopped")
			cur, curDone = nil, nil
		}
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case leading, ok := <-ch:
			stop() // lost, or (true again) lost and regained meanwhile
			switch {
			case !ok:
				ch = nil // lost for good: wait for ctx
			case leading:
				cur = r.begin(ctx)
				curDone = cur.done
			}
		case <-curDone:
			if cur.err != nil {
				return cur.err // stop (deferred) waits for nothing more
			}
			curDone = nil // every task returned early: idle until the term ends
		}
	}
}

// begin starts a term: in its own goroutine, a barrier and then the tasks.
func (r *Runner) begin(parent context.Context) *term {
	ctx, cancel := context.WithCancel(parent)
	t := &term{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if !r.barrier(ctx) {
			return
		}
		r.cfg.Logger.Info("leading: leader-only work starts")
		r.active.Store(true)
		t.err = r.runTasks(ctx)
		r.active.Store(false)
	}()
	return t
}

// barrier calls Barrier until it succeeds (true) or ctx ends (false),
// waiting BarrierRetry after each failure.
func (r *Runner) barrier(ctx context.Context) bool {
	for {
		err := r.lead.Barrier(ctx)
		if err == nil {
			return ctx.Err() == nil
		}
		if ctx.Err() != nil {
			return false
		}
		r.cfg.Logger.Warn("leader barrier failed; leader-only work waits", "err", err, "retry", r.cfg.BarrierRetry)
		t := time.NewTimer(r.cfg.BarrierRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// runTasks runs every task until all have returned. The first task to fail
// while ctx goes on cancels the others; its error is returned.
func (r *Runner) runTasks(ctx context.Context) error {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, task := range r.tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := task.Run(tctx)
			if err == nil || tctx.Err() != nil {
				return
			}
			once.Do(func() {
				first = fmt.Errorf("%s: %w", task.Name, err)
				cancel()
			})
		}()
	}
	wg.Wait()
	return first
}
