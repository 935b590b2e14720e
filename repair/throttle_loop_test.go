package repair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
)

// slowRepairer repairs through the real coordinator, but each object takes
// took on the fake clock; it records the most objects in flight at once.
type slowRepairer struct {
	rep  repair.Repairer
	clk  *testclock.Clock
	took time.Duration

	// gate > 0: the first objects wait (at most 10 s) until gate of them
	// are in flight, so that a throttle that allows gate at once is seen
	// to (it then lets all of them start).
	gate int

	mu            sync.Mutex
	inFlight, max int
	started       int
	full          chan struct{} // closed once gate are in flight
}

func (s *slowRepairer) RepairObject(ctx context.Context, bucket, key string, bad []meta.BadShard, lost object.LostFunc) (object.RepairResult, error) {
	s.mu.Lock()
	s.inFlight++
	s.started++
	s.max = max(s.max, s.inFlight)
	gated := s.started <= s.gate
	if s.inFlight == s.gate && s.started == s.gate {
		close(s.full)
	}
	s.mu.Unlock()
	if gated {
		select {
		case <-s.full:
		case <-time.After(10 * time.Second): // not a timing assertion: max says what happened
		case <-ctx.Done():
		}
	}
	rr, err := s.rep.RepairObject(ctx, bucket, key, bad, lost)
	s.clk.Advance(s.took)
	s.mu.Lock()
	s.inFlight--
	s.mu.Unlock()
	return rr, err
}

// Under constant foreground load the loop still repairs every object, one
// at a time (BusyConcurrency) with a pause after each; with no load it
// runs Concurrency at once without pausing.
func TestLoopRepairsUnderConstantLoad(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reqPerSec int64
		gate      int // see slowRepairer
		wantMax   int
	}{
		{"constant load", 200, 0, 1},
		{"idle", 0, 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, 8)
			const objects = 24
			for i := range objects {
				if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: fmt.Sprintf("o%02d", i), Body: bytes.NewReader(make([]byte, 20_000)), Size: 20_000}); err != nil {
					t.Fatal(err)
				}
			}
			t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
			clk := testclock.New(t0)
			// The foreground: reqPerSec requests every second, whatever
			// repair does.
			fg := repair.ForegroundFunc(func() uint64 { return uint64(clk.Now().Sub(t0).Milliseconds() * tc.reqPerSec / 1000) })
			// The throttle's waits: a change of its state ends one at once;
			// else it lasts d (in real time: the pauses here are short),
			// and the fake clock moves d.
			var waited time.Duration
			waits := 0
			wait := func(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
				waits++
				if waits > 10_000 { // a throttle that never lets repair through
					return errors.New("throttle starves repair")
				}
				select {
				case <-ch:
				case <-time.After(d):
					waited += d
					clk.Advance(d)
				case <-ctx.Done():
				}
				return ctx.Err()
			}
			const took = 10 * time.Millisecond
			rep := &slowRepairer{rep: f.co, clk: clk, took: took, gate: tc.gate, full: make(chan struct{})}
			loop := repair.NewLoop(repair.Config{Concurrency: 4, Now: clk.Now, Foreground: fg,
				Throttle: repair.ThrottleConfig{Wait: wait}}, f.md, rep)
			// A pass before the node goes out (the loop passes every second
			// whether or not there is work) measures the foreground.
			if _, err := loop.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			if err := f.md.Admin(ctx, "node-2", meta.ActionOut); err != nil {
				t.Fatal(err)
			}
			res, err := loop.Pass(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.Candidates < 10 || res.Repaired != res.Candidates {
				t.Fatalf("pass %+v, want every candidate (node-2's objects) repaired", res)
			}
			if c := f.healthyCounts(t); c[6] != objects {
				t.Fatalf("objects by healthy shards %v, want all %d whole", c, objects)
			}
			if rep.max != tc.wantMax {
				t.Fatalf("at most %d objects in flight, want %d", rep.max, tc.wantMax)
			}
			// Under load, every object but the first waited its pause
			// (Pause 1: the 10 ms it took) on the fake clock.
			if tc.reqPerSec > 0 && waited < time.Duration(res.Candidates-1)*took {
				t.Fatalf("throttle waited %v in %d waits, want ≥ %v of pauses", waited, waits, time.Duration(res.Candidates-1)*took)
			}
			st := loop.Stats().Throttle
			wantState := repair.ThrottleFull
			if tc.reqPerSec > 0 {
				wantState = repair.ThrottleYield
			}
			if st.State != wantState || st.Reason == "" {
				t.Fatalf("published throttle %+v, want state %s", st, wantState)
			}
		})
	}
}
