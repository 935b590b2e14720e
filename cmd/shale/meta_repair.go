package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/leader"
	"github.com/shale-store/shale/internal/serve"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	storageremote "github.com/shale-store/shale/storage/remote"
)

// repairMeta is what the repair loop, its coordinator, the orphan
// inventory and the garbage collector need of meta: the replica, which
// proposes their changes and answers their reads on the leader.
type repairMeta interface {
	object.Meta
	repair.Meta
	repair.InventoryMeta
	repair.GarbageMeta
	repair.ManifestScanner
}

// newRepair returns the repair loop as a leader-only task and the handler
// of its Prometheus metrics (serveMetrics serves it). The loop rebuilds
// shards through an object coordinator that talks to meta in-process and to
// nodes over HTTP (with --repair-on-nodes asking a lost shard's new node
// to rebuild it from its peers, and rebuilding here when that fails),
// collects garbage through the same node clients, and
// (unless --orphan-grace is 0) runs the orphan inventory, which lists the
// nodes' shards through them too.
func newRepair(store repairMeta, status repair.StatusSource, f metaFlags, secret []byte, inet *internalNet, fg *atomic.Uint64, logger *slog.Logger) (leader.Task, *prometheus.Registry, error) {
	dialer := newNodeDialer(secret, inet)
	var nodes object.Nodes = dialer
	if f.repairOnNodes {
		nodes = rebuildingDialer{dialer} // a lost shard's new node rebuilds it (cmd/shale/rebuild.go)
	}
	coord, err := object.New(object.Config{
		K: f.k, M: f.m, BlockSize: f.blockSize,
		MapRefresh: 1, // meta is in-process: always use the current map
	}, store, nodes)
	if err != nil {
		return leader.Task{}, nil, err
	}
	var inv *repair.Inventory
	if f.orphanGrace > 0 {
		inv = repair.NewInventory(repair.InventoryConfig{Grace: f.orphanGrace, Every: f.orphanEvery, Logger: logger}, store,
			repair.ListerFunc(func(n cluster.Node) (repair.ShardLister, error) {
				st, err := dialer.Store(n)
				if err != nil {
					return nil, err
				}
				c, ok := st.(*storageremote.Client)
				if !ok {
					return nil, fmt.Errorf("node %s: %T cannot list shards", n.ID, st)
				}
				return c, nil
			}))
	}
	abortAfter := f.abortUploadsAfter
	if abortAfter <= 0 {
		abortAfter = -1 // the flag's 0 is "never"; the loop's is its default
	}
	var foreground repair.Foreground
	if fg != nil {
		foreground = repair.ForegroundFunc(fg.Load)
	}
	cfg := repair.Config{Rate: f.repairRate, Concurrency: f.repairConcurrency, Inventory: inv,
		Throttle: repair.ThrottleConfig{Off: !f.repairAdaptive}, Foreground: foreground,
		Garbage:           repair.NewGarbageCollector(repair.GarbageConfig{}, store, dialer),
		AbortUploadsAfter: abortAfter, Logger: logger}
	if f.rebalance {
		cfg.Rebalance = repair.RebalanceConfig{Mover: coord, Scanner: store}
	}
	loop := repair.NewLoop(cfg, store, coord)
	reg := prometheus.NewRegistry()
	reg.MustRegister(repair.NewCollector(loop, status))
	return leader.Task{Name: "repair loop", Run: loop.Run}, reg, nil
}

// repairAdaptiveEnv names the environment variable that sets meta's
// --repair-adaptive default ("0" or "false": off), so that `shale dev` and
// the benchmarks built on it can run the repair loop without the adaptive
// throttle.
const repairAdaptiveEnv = "SHALE_REPAIR_ADAPTIVE"

// repairAdaptiveDefault is --repair-adaptive's default: on unless
// $SHALE_REPAIR_ADAPTIVE parses as false.
func repairAdaptiveDefault() bool {
	v, err := strconv.ParseBool(os.Getenv(repairAdaptiveEnv))
	return err != nil || v
}

// metricsListener is meta's separate /metrics listener (listenMetrics).
type metricsListener struct {
	srv *serve.Server
	mux *http.ServeMux
}

// defaultMetricsServe bounds the metrics listener like every other: a few
// scrapers at once, the usual header and idle limits.
var defaultMetricsServe = serve.Config{MaxConns: 8}

// listenMetrics opens the metrics listener at addr with cfg's limits
// (zero: defaultMetricsServe); "" opens none (nil).
func listenMetrics(addr string, cfg serve.Config) (*metricsListener, error) {
	if addr == "" {
		return nil, nil
	}
	if cfg == (serve.Config{}) {
		cfg = defaultMetricsServe
	}
	mux := http.NewServeMux()
	srv, err := serve.Listen(addr, mux, cfg)
	if err != nil {
		return nil, fmt.Errorf("meta: metrics %w", err)
	}
	return &metricsListener{srv: srv, mux: mux}, nil
}

// Close frees the listener of metrics never served; nil-safe.
func (m *metricsListener) Close() error {
	if m == nil {
		return nil
	}
	return m.srv.Close()
}

// serveMetrics serves metrics at /metrics on ml (in g, until ctx ends) and
// prints "meta metrics on ADDR"; a nil ml serves nothing. The metrics are
// not authenticated (Prometheus cannot sign with the cluster secret), so
// they never share meta's API listener, which anyone who can reach meta
// can connect to: the default address is loopback, and exposing it further
// is the operator's choice.
func serveMetrics(ctx context.Context, g *errgroup.Group, stdout io.Writer, ml *metricsListener, reg *prometheus.Registry) {
	if ml == nil {
		return
	}
	ml.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fmt.Fprintf(stdout, "meta metrics on %s\n", ml.srv.Addr())
	g.Go(func() error {
		if err := ml.srv.Serve(); err != nil {
			return fmt.Errorf("meta: serve metrics: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		_ = ml.srv.Close() // a scrape in flight has nothing to lose
		return nil
	})
}
