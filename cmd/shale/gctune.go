package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gcHeadroom is the garbage the gateway's heap may gather over its live
// heap before a collection, while that is more than --gc-percent of it.
const gcHeadroom = 32 << 20

// gcPercentFor is the GC percent that lets a heap of live bytes grow by
// gcHeadroom: Go's 100 for a small live heap (small requests, where a
// lower percent would collect many times a second for little memory),
// falling to floor as stripe buffers fill it (where 100 would double the
// stripes in flight).
func gcPercentFor(live uint64, floor int) int {
	if live == 0 {
		return 100
	}
	return min(100, max(floor, int(gcHeadroom*100/live)))
}

// tuneGC sets the GC percent from the live heap every interval until ctx
// ends, starting at once.
func tuneGC(ctx context.Context, floor int, every time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := -1
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := gcPercentFor(sample[0].Value.Uint64(), floor); p != cur {
				debug.SetGCPercent(p)
				cur = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
