package repair

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shale-store/shale/meta"
)

// StatusSource is what the metrics read besides the loop: meta's status.
type StatusSource interface {
	Status(ctx context.Context) (meta.Status, error)
}

// Collector exposes the loop's progress and the cluster's health as
// Prometheus metrics: objects by healthy shards, the repair queue, repair
// rate and ETA, bytes and shards repaired, and the last time-to-repair.
type Collector struct {
	loop *Loop
	src  StatusSource

	byHealthy, bySpare, queue, rate, eta, ttr, nodes *prometheus.Desc
	bytes, shards, conflicts, failures               *prometheus.Desc
	orphans, sweeps                                  *prometheus.Desc
	inFlight, limit, fgRate, yielding, pause         *prometheus.Desc
	rbObjects, rbBytes, rbRate, rbEta, rbState       *prometheus.Desc
	rbMovedBytes, rbMovedShards, rbMovedObjects      *prometheus.Desc
	rbConflicts, rbFailures                          *prometheus.Desc

	// Status scans every manifest (O(objects)); a scrape reuses the last
	// one for statusEvery rather than scanning on every scrape, and at most
	// one scan runs at a time (scanning).
	mu       sync.Mutex // guards last, lastAt, lastOK, scanning
	last     meta.Status
	lastAt   time.Time
	lastOK   bool
	scanning chan struct{} // closed when the scan in flight ends; nil: none
}

// statusEvery is how long a scrape reuses the cluster status it read;
// statusTimeout bounds one scan.
const (
	statusEvery   = 10 * time.Second
	statusTimeout = 10 * time.Second
)

// status returns meta's status, read at most once per statusEvery and
// never by two scans at once: a scrape that finds a scan running serves
// the figures read last (stale by at most the scan's duration) or, when
// there are none yet, waits for that scan's result. The scan itself is
// bounded by statusTimeout.
func (c *Collector) status() (meta.Status, bool) {
	c.mu.Lock()
	if c.lastOK && c.loop.cfg.Now().Sub(c.lastAt) < statusEvery {
		defer c.mu.Unlock()
		return c.last, true
	}
	if running := c.scanning; running != nil {
		if c.lastOK {
			defer c.mu.Unlock()
			return c.last, true
		}
		c.mu.Unlock()
		<-running
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.last, c.lastOK
	}
	done := make(chan struct{})
	c.scanning = done
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	ms, err := c.src.Status(ctx)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.scanning = nil
	close(done)
	if err != nil {
		return meta.Status{}, false
	}
	c.last, c.lastAt, c.lastOK = ms, c.loop.cfg.Now(), true
	return ms, true
}

// NewCollector returns a collector; register it with a prometheus.Registry.
func NewCollector(l *Loop, src StatusSource) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shale_"+name, help, labels, nil)
	}
	return &Collector{
		loop: l, src: src,
		byHealthy: d("objects_by_healthy_shards", "Objects by the fewest healthy shards of any of their segments.", "healthy"),
		bySpare:   d("objects_by_spare_shards", "Objects by the fewest healthy shards beyond k of any of their segments: the further shard losses they survive (negative: unreadable).", "spare"),
		queue:     d("repair_queue_objects", "Objects queued for repair."),
		rate:      d("repair_rate_bytes_per_second", "Shard bytes re-created per second over the last 30 s."),
		eta:       d("repair_eta_seconds", "Estimated time until the repair queue is empty."),
		ttr:       d("repair_last_time_to_repair_seconds", "From a node going out to every object back at k+m, for the last episode."),
		nodes:     d("nodes", "Nodes by state.", "state"),
		bytes:     d("repair_bytes_total", "Shard bytes re-created by repair."),
		shards:    d("repair_shards_total", "Shards re-created by repair."),
		conflicts: d("repair_conflicts_total", "Repairs whose commit lost to an overwrite or delete."),
		failures:  d("repair_failures_total", "Object repairs that failed (retried next pass)."),
		orphans:   d("orphans_queued_total", "Unreferenced shards the orphan inventory queued as garbage."),
		sweeps:    d("orphan_sweeps_total", "Finished sweeps of the orphan inventory over every readable node."),
		inFlight:  d("repair_in_flight_objects", "Objects the repair loop is rebuilding now."),
		limit:     d("repair_in_flight_limit", "Objects the adaptive throttle lets the repair loop rebuild at once now."),
		fgRate:    d("repair_foreground_requests_per_second", "Foreground requests per second meta served, as the adaptive repair throttle last measured them."),
		yielding:  d("repair_throttle_yielding", "1 while the adaptive repair throttle yields to foreground requests, else 0."),
		pause:     d("repair_throttle_pause_seconds", "While yielding: the pause after the last repaired object before the next starts."),

		rbObjects:      d("rebalance_objects_to_move", "Objects the rebalance round in progress has left to move."),
		rbBytes:        d("rebalance_bytes_to_move", "Shard bytes the rebalance round in progress has left to move."),
		rbRate:         d("rebalance_rate_bytes_per_second", "Shard bytes moved per second by the rebalancer over the last 30 s."),
		rbEta:          d("rebalance_eta_seconds", "Estimated time until the rebalance round in progress has moved everything."),
		rbState:        d("rebalance_state", "1 for the rebalancer's current state (idle, settling, planning, moving, waiting).", "state"),
		rbMovedBytes:   d("rebalance_bytes_total", "Shard bytes the rebalancer moved (copied to their new node)."),
		rbMovedShards:  d("rebalance_shards_total", "Shards the rebalancer moved and committed."),
		rbMovedObjects: d("rebalance_objects_total", "Objects whose shards the rebalancer moved."),
		rbConflicts:    d("rebalance_conflicts_total", "Moves whose commit lost to an overwrite, delete or repair."),
		rbFailures:     d("rebalance_failures_total", "Objects whose moves failed (planned again in a later round)."),
	}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.byHealthy, c.bySpare, c.queue, c.rate, c.eta, c.ttr, c.nodes, c.bytes, c.shards, c.conflicts, c.failures, c.orphans, c.sweeps,
		c.inFlight, c.limit, c.fgRate, c.yielding, c.pause,
		c.rbObjects, c.rbBytes, c.rbRate, c.rbEta, c.rbState, c.rbMovedBytes, c.rbMovedShards, c.rbMovedObjects, c.rbConflicts, c.rbFailures} {
		ch <- d
	}
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.loop.Stats()
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ctr := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(c.rate, st.RateBytesPerSec)
	g(c.eta, st.ETASeconds)
	g(c.ttr, st.LastTimeToRepairSeconds)
	ctr(c.bytes, float64(st.BytesRepaired))
	ctr(c.shards, float64(st.ShardsRepaired))
	ctr(c.conflicts, float64(st.Conflicts))
	ctr(c.failures, float64(st.Failures))
	ts := c.loop.thr.status()
	g(c.inFlight, float64(ts.InFlight))
	g(c.limit, float64(ts.Limit))
	g(c.fgRate, ts.FGRate)
	yielding := 0.0
	if ts.State == ThrottleYield {
		yielding = 1
	}
	g(c.yielding, yielding)
	g(c.pause, ts.Pause.Seconds())
	if rb := st.Rebalance; rb.State != "" {
		g(c.rbObjects, float64(rb.ObjectsToMove))
		g(c.rbBytes, float64(rb.BytesToMove))
		g(c.rbRate, rb.RateBytesPerSec)
		g(c.rbEta, rb.ETASeconds)
		for _, s := range []string{rebalanceIdle, rebalanceSettling, rebalancePlanning, rebalanceMoving, rebalanceWaiting} {
			v := 0.0
			if s == rb.State {
				v = 1
			}
			g(c.rbState, v, s)
		}
		ctr(c.rbMovedBytes, float64(rb.BytesMoved))
		ctr(c.rbMovedShards, float64(rb.ShardsMoved))
		ctr(c.rbMovedObjects, float64(rb.ObjectsMoved))
		ctr(c.rbConflicts, float64(rb.Conflicts))
		ctr(c.rbFailures, float64(rb.Failures))
	}
	if inv := c.loop.cfg.Inventory; inv != nil {
		is := inv.Stats()
		ctr(c.orphans, float64(is.Queued))
		ctr(c.sweeps, float64(is.Sweeps))
	}
	ms, ok := c.status()
	if !ok {
		return
	}
	g(c.queue, float64(ms.RepairQueue))
	for h, n := range ms.ObjectsByHealthyShards {
		g(c.byHealthy, float64(n), strconv.Itoa(h))
	}
	for sp, n := range ms.ObjectsBySpareShards {
		g(c.bySpare, float64(n), strconv.Itoa(sp))
	}
	states := map[string]int{}
	for _, n := range ms.Nodes {
		states[n.State.String()]++
	}
	for s, n := range states {
		g(c.nodes, float64(n), s)
	}
}
