package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	storageremote "github.com/shale-store/shale/storage/remote"
)

// startRepair runs the repair loop beside meta (in g) and mounts its
// Prometheus metrics at /metrics on mux. The loop rebuilds shards through an
// object coordinator that talks to meta in-process and to nodes over HTTP,
// and (unless --orphan-grace is 0) runs the orphan inventory, which lists
// the nodes' shards through the same clients.
func startRepair(ctx context.Context, g *errgroup.Group, store *meta.Store, mux *http.ServeMux, f metaFlags, secret []byte, inet *internalNet) error {
	dialer := newNodeDialer(secret, inet)
	coord, err := object.New(object.Config{
		K: f.k, M: f.m, BlockSize: f.blockSize,
		MapRefresh: 1, // meta is in-process: always use the current map
	}, store, dialer)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
	loop := repair.NewLoop(repair.Config{Rate: f.repairRate, Concurrency: f.repairConcurrency, Inventory: inv, Logger: logger}, store, coord)
	reg := prometheus.NewRegistry()
	reg.MustRegister(repair.NewCollector(loop, store))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	g.Go(func() error {
		if err := loop.Run(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		return nil
	})
	return nil
}
