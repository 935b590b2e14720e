package repair_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/repair"
)

// gatedStatus is a StatusSource whose scans each wait for a token on gate
// (or for stop); it counts the scans and the most that ran at once. Scan n
// reports a repair queue of n.
type gatedStatus struct {
	gate, stop chan struct{}
	entered    chan struct{} // one send per scan started

	mu                  sync.Mutex
	calls, running, max int
}

func newGatedStatus(t *testing.T) *gatedStatus {
	g := &gatedStatus{gate: make(chan struct{}), stop: make(chan struct{}), entered: make(chan struct{}, 100)}
	t.Cleanup(func() { close(g.stop) })
	return g
}

func (g *gatedStatus) Status(ctx context.Context) (meta.Status, error) {
	g.mu.Lock()
	g.calls++
	n := g.calls
	g.running++
	g.max = max(g.max, g.running)
	g.mu.Unlock()
	g.entered <- struct{}{}
	select {
	case <-g.gate:
	case <-g.stop:
	case <-ctx.Done():
	}
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	return meta.Status{RepairQueue: int64(n)}, nil
}

// waitScan waits for a scan to start.
func (g *gatedStatus) waitScan(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no status scan started")
	}
}

func (g *gatedStatus) counts() (calls, most int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls, g.max
}

// scrapeQueue gathers reg and returns shale_repair_queue_objects (-1 when
// absent).
func scrapeQueue(reg *prometheus.Registry) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -2
	}
	for _, mf := range mfs {
		if mf.GetName() == "shale_repair_queue_objects" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func newScraped(t *testing.T, src repair.StatusSource, clk *testclock.Clock) *prometheus.Registry {
	loop := repair.NewLoop(repair.Config{Now: clk.Now}, nil, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(repair.NewCollector(loop, src))
	return reg
}

// Concurrent scrapes of a cold collector start one status scan between
// them and all report its figures.
func TestScrapesShareOneStatusScan(t *testing.T) {
	clk := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	src := newGatedStatus(t)
	reg := newScraped(t, src, clk)
	const scrapes = 16
	got := make(chan float64, scrapes)
	for range scrapes {
		go func() { got <- scrapeQueue(reg) }()
	}
	src.waitScan(t)
	close(src.gate) // every scan from now on ends at once
	for range scrapes {
		if v := <-got; v != 1 {
			t.Fatalf("a scrape reported repair queue %v, want 1 (the one scan's)", v)
		}
	}
	if calls, most := src.counts(); calls != 1 || most != 1 {
		t.Fatalf("%d concurrent scrapes ran %d status scans (at most %d at once), want 1", scrapes, calls, most)
	}
}

// Once the cached status is stale, the scrape that refreshes it runs the
// one scan; a scrape arriving meanwhile neither starts another scan nor
// waits for the running one: it serves the last figures.
func TestScrapeDuringStatusScanServesLastFigures(t *testing.T) {
	clk := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	src := newGatedStatus(t)
	reg := newScraped(t, src, clk)
	first := make(chan float64, 1)
	go func() { first <- scrapeQueue(reg) }()
	src.waitScan(t)
	src.gate <- struct{}{}
	if v := <-first; v != 1 {
		t.Fatalf("first scrape: queue %v, want 1", v)
	}
	if v := scrapeQueue(reg); v != 1 {
		t.Fatalf("scrape within 10s: queue %v, want the cached 1", v)
	}
	if calls, _ := src.counts(); calls != 1 {
		t.Fatalf("a scrape within 10s of the last scan scanned again (%d scans)", calls)
	}

	clk.Advance(11 * time.Second)
	refresh := make(chan float64, 1)
	go func() { refresh <- scrapeQueue(reg) }()
	src.waitScan(t) // the refresh scan runs, held at the gate
	during := make(chan float64, 1)
	go func() { during <- scrapeQueue(reg) }()
	select {
	case v := <-during:
		if v != 1 {
			t.Fatalf("scrape during a scan: queue %v, want the last figures (1)", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a scrape waited for (or queued behind) the status scan already running")
	}
	if calls, most := src.counts(); calls != 2 || most != 1 {
		t.Fatalf("%d scans, at most %d at once; want 2 and 1", calls, most)
	}
	src.gate <- struct{}{}
	if v := <-refresh; v != 2 {
		t.Fatalf("refreshing scrape: queue %v, want 2", v)
	}
}
