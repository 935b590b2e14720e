package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
)

// startRepair runs the repair loop beside meta (in g) and mounts its
// Prometheus metrics at /metrics on mux. The loop rebuilds shards through an
// object coordinator that talks to meta in-process and to nodes over HTTP.
func startRepair(ctx context.Context, g *errgroup.Group, store *meta.Store, mux *http.ServeMux, f metaFlags, secret []byte) error {
	coord, err := object.New(object.Config{
		K: f.k, M: f.m, BlockSize: f.blockSize,
		MapRefresh: 1, // meta is in-process: always use the current map
	}, store, newNodeDialer(secret))
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	loop := repair.NewLoop(repair.Config{Rate: f.repairRate, Concurrency: f.repairConcurrency, Logger: logger}, store, coord)
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
