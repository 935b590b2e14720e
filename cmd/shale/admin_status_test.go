package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// The status table shows a node-out repair in progress: the queue with
// where its objects come from, the bytes left, the ETA and when the node
// went out.
func TestPrintStatusShowsRepairInProgress(t *testing.T) {
	out := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	st := meta.Status{
		Nodes: []cluster.Node{
			{ID: "n1", Addr: "127.0.0.1:1", State: cluster.Up},
			{ID: "n2", Addr: "127.0.0.1:2", State: cluster.Out, Since: out},
			{ID: "n3", Addr: "127.0.0.1:3", State: cluster.Full, Damaged: true, Capacity: 2 << 40, Weighted: 5 << 40},
		},
		Objects: 40, ObjectsByHealthyShards: map[int]int64{5: 30, 6: 10},
		RepairQueue: 30, DegradedQueue: 2, Garbage: 7,
		Repair: &meta.RepairStats{QueueObjects: 30, QueueBytes: 3 << 20, RateBytesPerSec: 1 << 20, ETASeconds: 3,
			EpisodeStart: out, ShardsRepaired: 10, BytesRepaired: 1 << 20},
	}
	var b bytes.Buffer
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"out since 2026-05-01T10:00:00Z",
		"full (damaged store)",
		"5.0 TiB (set)",
		"repair queue: 30 objects (degraded queue 2, repair loop's candidates 30, 3.0 MiB to re-create)   garbage: 7",
		"ETA 3s",
		"repairing since 2026-05-01T10:00:00Z",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}

	// Idle: a plain count, no ETA.
	st.RepairQueue, st.DegradedQueue = 0, 0
	st.Repair = &meta.RepairStats{LastTimeToRepairSeconds: 61}
	b.Reset()
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	got = b.String()
	if !strings.Contains(got, "repair queue: 0 objects   garbage: 7") || strings.Contains(got, "ETA") || !strings.Contains(got, "last time-to-repair 61.0s") {
		t.Errorf("idle status:\n%s", got)
	}
}

// The repair line says what the adaptive throttle is doing and why.
func TestPrintStatusShowsRepairThrottle(t *testing.T) {
	st := meta.Status{
		Nodes:  []cluster.Node{{ID: "n1", Addr: "127.0.0.1:1", State: cluster.Up}},
		Repair: &meta.RepairStats{RateBytesPerSec: 27e6, Throttle: meta.RepairThrottle{State: "yield", Limit: 1, InFlight: 1, ForegroundRate: 148, Reason: "foreground 148 req/s"}},
	}
	var b bytes.Buffer
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, "throttle yield: 1/1 in flight (foreground 148 req/s)") {
		t.Errorf("status lacks the throttle:\n%s", got)
	}
	// A loop without a throttle (an older meta) prints none.
	st.Repair.Throttle = meta.RepairThrottle{}
	b.Reset()
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); strings.Contains(got, "throttle") {
		t.Errorf("status shows a throttle it was not told of:\n%s", got)
	}
}

// The status shows a rebalance in progress (what is left, the rate, the
// ETA, the totals) and says nothing of one when meta reports none.
func TestPrintStatusShowsRebalance(t *testing.T) {
	st := meta.Status{
		Nodes:   []cluster.Node{{ID: "n1", Addr: "127.0.0.1:1", State: cluster.Up}},
		Objects: 10, ObjectsByHealthyShards: map[int]int64{6: 10},
		Repair: &meta.RepairStats{Rebalance: meta.RebalanceStats{State: "moving", ObjectsToMove: 12, BytesToMove: 24 << 20,
			RateBytesPerSec: 8e6, ETASeconds: 3.2, ShardsMoved: 30, ObjectsMoved: 15, BytesMoved: 48 << 20, Conflicts: 1}},
	}
	var b bytes.Buffer
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{"rebalance moving: 12 objects (24.0 MiB) to move", "8.0 MB/s", "ETA 3s", "moved 30 shards of 15 objects (48.0 MiB)", "1 conflicts"} {
		if !strings.Contains(got, want) {
			t.Errorf("status lacks %q:\n%s", want, got)
		}
	}
	st.Repair = &meta.RepairStats{}
	b.Reset()
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "rebalance") {
		t.Errorf("a loop without a rebalancer shows one:\n%s", b.String())
	}
}
