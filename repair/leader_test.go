package repair_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/leader"
	"github.com/shale-store/shale/internal/leader/leadertest"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
)

// gauge counts calls in progress and the most ever at once.
type gauge struct{ now, most atomic.Int64 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for m := g.most.Load(); n > m && !g.most.CompareAndSwap(m, n); m = g.most.Load() {
	}
}
func (g *gauge) exit() { g.now.Add(-1) }

// oneRepairer repairs through the coordinator, counting repairs at once.
type oneRepairer struct {
	*object.Coordinator
	g *gauge
}

func (r oneRepairer) RepairObject(ctx context.Context, bucket, key string, bad []meta.BadShard, lost object.LostFunc) (object.RepairResult, error) {
	r.g.enter()
	defer r.g.exit()
	return r.Coordinator.RepairObject(ctx, bucket, key, bad, lost)
}

// The real loop under a Runner whose leadership flaps: never two loops
// (nor two repairs, at Concurrency 1) at once, the loop stops when
// leadership is lost, and the repair completes in the last term.
func TestLoopUnderFlappingLeadership(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 8)
	for i := range 12 {
		body := bytes.Repeat([]byte{byte(i)}, 20_000)
		if _, err := f.co.PutObject(ctx, object.PutInput{Bucket: "b", Key: fmt.Sprint(i), Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.md.Admin(ctx, "node-3", meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	var runs, repairs gauge
	loop := repair.NewLoop(repair.Config{Interval: time.Millisecond, Concurrency: 1}, f.md, oneRepairer{f.co, &repairs})
	fl := leadertest.New()
	r := leader.New(leader.Config{}, fl, leader.Task{Name: "repair loop", Run: func(ctx context.Context) error {
		runs.enter()
		defer runs.exit()
		return loop.Run(ctx)
	}})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not happen", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range 300 {
		fl.Set(i%3 != 1)
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	fl.Set(false)
	waitFor("the stop on losing leadership", func() bool { return runs.now.Load() == 0 })
	fl.Set(true)
	waitFor("the repair", func() bool { return f.healthyCounts(t)[6] == 12 })
	fl.Set(false)
	waitFor("the stop after the repair", func() bool { return runs.now.Load() == 0 })
	if m := runs.most.Load(); m != 1 {
		t.Fatalf("%d loops ran at once", m)
	}
	if m := repairs.most.Load(); m != 1 {
		t.Fatalf("%d repairs ran at once at Concurrency 1", m)
	}
}
