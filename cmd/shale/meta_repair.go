package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/leader"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	storageremote "github.com/shale-store/shale/storage/remote"
)

// newRepair returns the repair loop as a leader-only task and the handler
// of its Prometheus metrics (serveMetrics serves it). The loop rebuilds
// shards through an object coordinator that talks to meta in-process and to
// nodes over HTTP, collects garbage through the same node clients, and
// (unless --orphan-grace is 0) runs the orphan inventory, which lists the
// nodes' shards through them too.
func newRepair(store *meta.Store, f metaFlags, secret []byte, inet *internalNet, logger *slog.Logger) (leader.Task, http.Handler, error) {
	dialer := newNodeDialer(secret, inet)
	coord, err := object.New(object.Config{
		K: f.k, M: f.m, BlockSize: f.blockSize,
		MapRefresh: 1, // meta is in-process: always use the current map
	}, store, dialer)
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
	loop := repair.NewLoop(repair.Config{Rate: f.repairRate, Concurrency: f.repairConcurrency, Inventory: inv,
		Garbage:           repair.NewGarbageCollector(repair.GarbageConfig{}, store, dialer),
		AbortUploadsAfter: abortAfter, Logger: logger}, store, coord)
	reg := prometheus.NewRegistry()
	reg.MustRegister(repair.NewCollector(loop, store))
	return leader.Task{Name: "repair loop", Run: loop.Run}, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// listenMetrics opens the metrics listener at addr; "" opens none (nil).
func listenMetrics(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("meta: metrics listen: %w", err)
	}
	return ln, nil
}

// serveMetrics serves metrics at /metrics on ln (in g, until ctx ends) and
// prints "meta metrics on ADDR"; a nil ln serves nothing. The metrics are
// not authenticated (Prometheus cannot sign with the cluster secret), so
// they never share meta's API listener, which anyone who can reach meta
// can connect to: the default address is loopback, and exposing it further
// is the operator's choice.
func serveMetrics(ctx context.Context, g *errgroup.Group, stdout io.Writer, ln net.Listener, metrics http.Handler) {
	if ln == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	fmt.Fprintf(stdout, "meta metrics on %s\n", ln.Addr())
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("meta: serve metrics: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		_ = srv.Close() // a scrape in flight has nothing to lose
		return nil
	})
}
