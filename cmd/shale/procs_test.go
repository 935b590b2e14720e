package main

import (
	"runtime"
	"testing"
)

// TestProcsEach: dev gives each node and meta replica --child-procs when
// set, else its share of the cores, never less than one.
func TestProcsEach(t *testing.T) {
	if got := (devFlags{childProcs: 3, nodes: 6, metaReplicas: 3}).procsEach(); got != 3 {
		t.Errorf("--child-procs 3: %d", got)
	}
	// Nine processes share the cores: together they get no more than
	// there are (or one each, when there are fewer cores than processes).
	if got := (devFlags{nodes: 6, metaReplicas: 3}).procsEach(); got < 1 || (got > 1 && 9*got > runtime.NumCPU()) {
		t.Errorf("auto over 9 processes on %d cores: %d each", runtime.NumCPU(), got)
	}
	if got := (devFlags{nodes: 1_000_000}).procsEach(); got != 1 {
		t.Errorf("more processes than cores: %d, want 1", got)
	}
	if got := (devFlags{nodes: 1, metaReplicas: 0}).procsEach(); got != runtime.NumCPU() {
		t.Errorf("one process: %d, want every core (%d)", got, runtime.NumCPU())
	}
}
