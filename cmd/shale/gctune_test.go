package main

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live  uint64
		floor int
		want  int
	}{
		{0, 25, 100},
		{8 << 20, 25, 100},    // small heap: Go's default
		{32 << 20, 25, 100},   // headroom = live
		{64 << 20, 25, 50},    // 32 MiB over 64
		{128 << 20, 25, 25},   // 32 MiB over 128
		{512 << 20, 25, 25},   // never under the floor
		{512 << 20, 10, 10},   // another floor
		{100 << 20, 150, 100}, // never over 100
	} {
		if got := gcPercentFor(c.live, c.floor); got != c.want {
			t.Errorf("gcPercentFor(%d MiB, %d) = %d, want %d", c.live>>20, c.floor, got, c.want)
		}
	}
}

// TestTuneGCSetsAndStops: the tuner sets the percent at once and returns
// when its context ends.
func TestTuneGCSetsAndStops(t *testing.T) {
	old := debug.SetGCPercent(7)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tuneGC(ctx, 25, time.Hour) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p := debug.SetGCPercent(7)
		if p != 7 {
			if p < 25 || p > 100 {
				t.Fatalf("tuner set %d, outside [25, 100]", p)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tuner set no GC percent")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("tuneGC did not return when its context ended")
	}
}

// TestNegativeGCPercentAndProcsRefused: a negative --gc-percent or --procs
// is an error, not silently ignored.
func TestNegativeGCPercentAndProcsRefused(t *testing.T) {
	if err := (gatewayFlags{gcPercent: -1}).validate(); err == nil || !strings.Contains(err.Error(), "--gc-percent") {
		t.Errorf("--gc-percent -1: %v", err)
	}
	if err := applyProcs(-2); err == nil || !strings.Contains(err.Error(), "--procs") {
		t.Errorf("--procs -2: %v", err)
	}
	if err := applyProcs(0); err != nil {
		t.Errorf("--procs 0: %v", err)
	}
}
