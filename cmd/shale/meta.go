package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/internal/leader"
	"github.com/shale-store/shale/internal/serve"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

func init() { commands = append(commands, newMetaCmd) }

// metaFlags are the flags of `shale meta`.
type metaFlags struct {
	data, listen, secretFile string
	downAfter, outAfter      time.Duration
	garbageGrace             time.Duration
	// Settings of the repair loop that runs beside meta (startRepair).
	k, m              int
	repairRate        int64
	repairConcurrency int
	blockSize         int
	// The orphan inventory (startRepair): 0 grace turns it off.
	orphanGrace, orphanEvery time.Duration
	// abortUploadsAfter: incomplete multipart uploads this old are
	// aborted by the repair loop; 0 never.
	abortUploadsAfter time.Duration
	// metricsListen is the address of the separate /metrics listener
	// (serveMetrics); "" serves no metrics.
	metricsListen string
	metricsServe  serve.Config // its limits; zero: defaultMetricsServe
	itls          internalTLSFlags
	serve         serve.Config // the listener's limits
}

func newMetaCmd() *cobra.Command {
	var f metaFlags
	cmd := &cobra.Command{
		Use:   "meta",
		Short: "Run the metadata service: buckets, manifests, multipart uploads, the cluster map, the repair queue",
		Long: `meta keeps every bucket, object manifest, multipart upload, the node→shard
index, cluster membership and the repair queue in a pebble database under
--data, and serves them to gateways, nodes and operators over HTTP at --listen,
every request signed with the cluster secret, and Prometheus metrics at
/metrics on a separate --metrics-listen (loopback by default). It marks nodes down after
--down-after without a heartbeat and out after --out-after down. It prints
"meta listening on ADDR" once it serves, and stops cleanly on SIGINT/SIGTERM.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runMeta(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./shale-meta", "pebble directory of the metadata")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7000", "HTTP listen address (port 0: any free port)")
	fl.StringVar(&f.secretFile, "secret-file", "", "cluster secret file (created when missing)")
	fl.DurationVar(&f.downAfter, "down-after", 5*time.Second, "a node without heartbeat this long is down")
	fl.DurationVar(&f.outAfter, "out-after", 10*time.Minute, "a node down this long is out and its shards are re-created")
	fl.DurationVar(&f.garbageGrace, "garbage-grace", 30*time.Second, "replaced shards are kept this long for readers of the old version")
	fl.IntVar(&f.k, "k", 4, "data shards per stripe (repair loop)")
	fl.IntVar(&f.m, "m", 2, "parity shards per stripe (repair loop)")
	fl.Int64Var(&f.repairRate, "repair-rate", 0, "repair throttle, bytes/s, 0: unthrottled (repair loop)")
	fl.IntVar(&f.repairConcurrency, "repair-concurrency", 0, "objects repaired at once, 0: the loop's default (repair loop)")
	fl.IntVar(&f.blockSize, "block-size", 0, "bytes per shard block, 0: the codec's default (repair loop)")
	fl.DurationVar(&f.orphanGrace, "orphan-grace", time.Hour, "shards no manifest or upload references are deleted once this old; must exceed the longest write and node clock skew; 0: never (orphan inventory)")
	fl.DurationVar(&f.orphanEvery, "orphan-every", 10*time.Minute, "least time between the starts of two sweeps of every node's shards (orphan inventory)")
	fl.DurationVar(&f.abortUploadsAfter, "abort-uploads-after", 7*24*time.Hour, "multipart uploads still incomplete this long after they began are aborted and their parts deleted; 0: never (repair loop)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:0", `Prometheus /metrics listen address, unauthenticated and apart from --listen (which never serves it); keep it on loopback or a monitoring network. Port 0: any free port, printed as "meta metrics on ADDR". "": no metrics`)
	f.itls.register(fl)
	addServeFlags(fl, &f.serve, 1024)
	return cmd
}

// newMetaServer opens the store and builds the HTTP handler serving it at
// /v1/. The caller owns both: it runs store.Run and closes the store after
// the server stopped. The mux serves nothing unauthenticated: metrics have
// a listener of their own (serveMetrics).
func newMetaServer(cfg meta.Config, secret []byte) (*meta.Store, *http.ServeMux, error) {
	store, err := meta.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", metaremote.NewHandler(store, secret, metaremote.HandlerConfig{}))
	return store, mux, nil
}

// runMeta serves meta until ctx is done or the store's ticker fails.
func runMeta(ctx context.Context, stdout io.Writer, f metaFlags) error {
	secret, err := loadSecretFlag(f.secretFile)
	if err != nil {
		return err
	}
	inet, err := f.itls.load()
	if err != nil {
		return err
	}
	store, mux, err := newMetaServer(meta.Config{
		Dir: f.data, DownAfter: f.downAfter, OutAfter: f.outAfter, GarbageGrace: f.garbageGrace,
	}, secret)
	if err != nil {
		return err
	}
	f.serve.TLS = inet.server
	srv, err := serve.Listen(f.listen, mux, f.serve)
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("meta: %w", err)
	}

	mln, err := listenMetrics(f.metricsListen, f.metricsServe)
	if err != nil {
		_ = srv.Close()
		_ = store.Close()
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	repairTask, metrics, err := newRepair(store, f, secret, inet, logger)
	if err != nil {
		_ = srv.Close()
		_ = mln.Close()
		_ = store.Close()
		return fmt.Errorf("meta: repair loop: %w", err)
	}
	// Membership ticks and the repair loop are leader-only work; a single
	// meta always leads.
	work := leader.New(leader.Config{Logger: logger}, leader.Always{},
		leader.Task{Name: "ticker", Run: store.Run}, repairTask)
	g, gctx := errgroup.WithContext(ctx)
	fmt.Fprintf(stdout, "meta listening on %s\n", srv.Addr())
	serveMetrics(gctx, g, stdout, mln, metrics)
	g.Go(func() error {
		if err := work.Run(gctx); err != nil {
			return fmt.Errorf("meta: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := srv.Serve(); err != nil {
			return fmt.Errorf("meta: serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// In-flight mutations finish (they run to their commit even when
		// their client left); new requests are refused.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx) // closes what is left when the grace ends
		return nil
	})
	err = g.Wait()
	if cerr := store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("meta: close store: %w", cerr)
	}
	return err
}
