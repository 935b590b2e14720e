package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/serve"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
	storageremote "github.com/shale-store/shale/storage/remote"
)

func init() { commands = append(commands, newNodeCmd) }

// nodeFlags are the settings of `shale node`.
type nodeFlags struct {
	procs                   int // --procs (procs.go)
	data, listen, advertise string
	id, zone, rack, host    string
	secretFile, metaAddr    string
	pprof                   string
	scrubRate, capacity     int64
	inlineMax               int
	scrubInterval           time.Duration
	heartbeat               time.Duration
	shutdownGrace           time.Duration
	itls                    internalTLSFlags
	serve                   serve.Config // the listener's limits
}

func newNodeCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a storage node: serve shard streams from a data directory, scrub them, heartbeat to meta",
		Long: `node opens (or formats) the data directory, serves its shards over HTTP to
gateways and repair (authenticated with the cluster secret), scrubs every shard
at a bounded rate, reports bad shards to meta, and heartbeats to meta with its
usage every --heartbeat. It prints "node ID listening on ADDR" once it serves,
and stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if f.metaAddr == "" {
				return errors.New("--meta is required")
			}
			secret, err := loadSecretFlag(f.secretFile)
			if err != nil {
				return err
			}
			inet, err := f.itls.load()
			if err != nil {
				return err
			}
			return runNode(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f, secret, newMetaClient(f.metaAddr, secret, inet))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "data directory (created and formatted if empty)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:0", "address to serve on (port 0: any free port)")
	fl.StringVar(&f.advertise, "advertise", "", "address meta and gateways reach this node at (default: the listening address)")
	fl.StringVar(&f.id, "id", "", "node id, stable across restarts (1-64 of [A-Za-z0-9._-])")
	fl.StringVar(&f.zone, "zone", "", "failure domain: zone")
	fl.StringVar(&f.rack, "rack", "", "failure domain: rack")
	fl.StringVar(&f.host, "host", "", "failure domain: host")
	fl.StringVar(&f.secretFile, "secret-file", "", "cluster secret file (created if missing)")
	fl.StringVar(&f.metaAddr, "meta", "", "meta replicas' addresses, host:port[,host:port…]; calls follow the leader")
	fl.Int64Var(&f.scrubRate, "scrub-rate", 32<<20, "scrubber read rate, bytes/s (0: unlimited)")
	fl.DurationVar(&f.scrubInterval, "scrub-interval", 24*time.Hour, "pause between scrub passes")
	fl.Int64Var(&f.capacity, "capacity", 0, "bytes of shard data this node may hold (0: the disk's free space)")
	fl.IntVar(&f.inlineMax, "inline-max", storage.DefaultInlineMax, "shards up to this many bytes are stored in the node's index, not in files of their own (0: never)")
	fl.DurationVar(&f.heartbeat, "heartbeat", time.Second, "heartbeat period")
	fl.StringVar(&f.pprof, "pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6061; default $"+pprofEnv+", else off)")
	registerProcs(fl, &f.procs)
	fl.DurationVar(&f.shutdownGrace, "shutdown-grace", 10*time.Second, "how long in-flight requests may finish on shutdown")
	f.itls.register(fl)
	// Gateways keep up to 64 idle connections to each node, and repair
	// and every gateway's shard streams come on top.
	addServeFlags(fl, &f.serve, 4096)
	_ = cmd.MarkFlagRequired("data")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

// nodeMeta is what a node needs from meta (a *metaremote.Client in
// production, a fake in tests).
type nodeMeta interface {
	Heartbeat(ctx context.Context, r meta.NodeReport) error
	ReportBad(ctx context.Context, b meta.BadShard) error
}

// badQueue bounds the scrubber's reports waiting to reach meta. When meta is
// unreachable for long, later reports are dropped: the shards stay marked bad
// on the node and the next pass reports them again.
const badQueue = 1024

// runNode serves the node until ctx is done, then shuts down in order: stop
// accepting, let in-flight requests finish (up to shutdownGrace), stop the
// scrubber and heartbeats, close the store.
func runNode(ctx context.Context, stdout, stderr io.Writer, f nodeFlags, secret []byte, mc nodeMeta) (err error) {
	if err := applyProcs(f.procs); err != nil {
		return err
	}
	id := cluster.NodeID(f.id)
	if err := cluster.ValidateNodeID(id); err != nil {
		return fmt.Errorf("--id: %w", err)
	}
	if f.data == "" {
		return errors.New("--data is required")
	}
	if f.capacity < 0 || f.scrubRate < 0 {
		return errors.New("--capacity and --scrub-rate must not be negative")
	}
	if f.heartbeat <= 0 {
		f.heartbeat = time.Second
	}
	if f.shutdownGrace <= 0 {
		f.shutdownGrace = 10 * time.Second
	}
	inet, err := f.itls.load()
	if err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	stopPprof, err := startPprof(ctx, pprofAddr(f.pprof), pprofServe(), stderr)
	if err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	defer stopPprof()
	disk, err := storage.OpenDisk(storage.DiskConfig{Dir: f.data, Limit: f.capacity, InlineMax: cmp.Or(f.inlineMax, -1)})
	if err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	defer func() {
		if cerr := disk.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("node %s: close store: %w", id, cerr)
		}
	}()
	f.serve.TLS = inet.server
	rb, err := newNodeRebuilder(secret, inet, disk)
	if err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	srv, err := serve.Listen(f.listen, storageremote.NewHandler(disk, storageremote.HandlerConfig{Secret: secret, Node: string(id), Rebuilder: rb}), f.serve)
	if err != nil {
		return fmt.Errorf("node %s: %w", id, err)
	}
	addr := srv.Addr().String()
	if f.advertise != "" {
		addr = f.advertise
	}
	report := meta.NodeReport{
		ID:     id,
		Addr:   addr,
		Domain: cluster.Domain{Zone: f.zone, Rack: f.rack, Host: f.host},
		PID:    os.Getpid(),
	}

	type badReport struct{ shard, reason string }
	bad := make(chan badReport, badQueue)
	scrub := storage.NewScrubber(disk, storage.ScrubConfig{
		Rate:     f.scrubRate,
		Interval: f.scrubInterval,
		OnBad: func(shard string, err error) {
			reason := "corrupt"
			if errors.Is(err, storage.ErrNotFound) {
				reason = "missing"
			}
			select {
			case bad <- badReport{shard, reason}:
			default:
				fmt.Fprintf(stderr, "node %s: report queue full, shard %s stays marked bad until the next pass\n", id, shard)
			}
		},
	})

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(); err != nil {
			return fmt.Errorf("node %s: serve: %w", id, err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), f.shutdownGrace)
		defer cancel()
		_ = srv.Shutdown(sctx) // once the grace is over it cuts the remaining streams
		return nil
	})
	g.Go(func() error {
		if err := scrub.Run(gctx); err != nil && gctx.Err() == nil {
			return fmt.Errorf("node %s: scrubber: %w", id, err)
		}
		return nil
	})
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case r := <-bad:
				// The node knows only the shard id; meta maps it to the
				// object through its node→shard index.
				b := meta.BadShard{
					ShardKey: meta.ShardKey{Node: id, ShardID: r.shard},
					Reason:   r.reason,
					Reported: time.Now().UTC(),
				}
				if err := mc.ReportBad(gctx, b); err != nil && gctx.Err() == nil {
					fmt.Fprintf(stderr, "node %s: report bad shard %s: %v\n", id, r.shard, err)
				}
			}
		}
	})
	g.Go(func() error {
		heartbeatLoop(gctx, stderr, disk, mc, report, f.capacity, f.heartbeat)
		return nil
	})

	fmt.Fprintf(stdout, "node %s listening on %s\n", id, srv.Addr())
	return g.Wait()
}

// heartbeatLoop reports the node and its usage to meta every period until
// ctx is done. Failures are written to stderr when they start, change or
// end, not every period.
func heartbeatLoop(ctx context.Context, stderr io.Writer, store storage.Store, mc nodeMeta, r meta.NodeReport, capacity int64, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	lastErr := ""
	for {
		err := heartbeatOnce(ctx, store, mc, r, capacity)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && err.Error() != lastErr:
			fmt.Fprintf(stderr, "node %s: heartbeat: %v\n", r.ID, err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			fmt.Fprintf(stderr, "node %s: heartbeat ok again\n", r.ID)
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func heartbeatOnce(ctx context.Context, store storage.Store, mc nodeMeta, r meta.NodeReport, capacity int64) error {
	u, err := store.Usage(ctx)
	if err != nil {
		return err
	}
	r.Used, r.Free, r.Full, r.Damaged = u.Used, u.Free, u.Full, u.Damaged
	r.Capacity = capacity
	if r.Capacity == 0 {
		// The device's size, rounded to whole GiB. Not Used+Free: on a
		// device shared with other writers (dev clusters, a node beside
		// other data) that moves with every write, and with it the
		// cluster map (whose epoch bumps on any capacity change) and
		// placement's weights — which would make the rebalancer move
		// shards back and forth.
		const gib = 1 << 30
		total := u.Capacity
		if total <= 0 {
			total = u.Used + u.Free
		}
		r.Capacity = max(gib, total/gib*gib)
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return mc.Heartbeat(hctx, r)
}
