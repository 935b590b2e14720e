package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/internal/leader"
	"github.com/shale-store/shale/internal/serve"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/raftnet"
	metaremote "github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/meta/replicated"
)

func init() { commands = append(commands, newMetaCmd) }

// metaFlags are the flags of `shale meta`.
type metaFlags struct {
	procs                    int // --procs (procs.go)
	data, listen, secretFile string
	downAfter, outAfter      time.Duration
	garbageGrace             time.Duration
	rebalance                bool
	// The replica: its raft id, addresses, zone and the founding members.
	id, advertise, zone    string
	raftListen, raftAdvert string
	peers                  []string
	join                   bool
	heartbeat, election    time.Duration
	leaderLease, readLease time.Duration
	snapshotThreshold      uint64
	snapshotInterval       time.Duration
	trailingLogs           uint64
	// Settings of the repair loop that runs beside meta (startRepair).
	k, m              int
	repairRate        int64
	repairConcurrency int
	repairOnNodes     bool
	repairAdaptive    bool
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
	pprof         string       // net/http/pprof listen address (loopback); "" off
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
"meta listening on ADDR" once it serves, and stops cleanly on SIGINT/SIGTERM.

Each meta process is one replica of a raft group (hashicorp/raft) speaking
over --raft-listen, authenticated with the cluster secret (or mutual TLS with
--internal-tls). The leader serves every call; a follower answers with the
leader's address, which clients follow. Start every founding replica with the
same --peer list (self included); without --peer a replica is a group of one.
Add or remove replicas later with "shale admin meta". A --data directory of a
meta from before replication is adopted: its store becomes the group's
starting snapshot.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runMeta(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./shale-meta", "pebble directory of the metadata")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7000", "HTTP listen address (port 0: any free port)")
	fl.StringVar(&f.id, "id", "meta-1", "raft server id of this replica, unique in the group")
	fl.StringVar(&f.advertise, "advertise", "", "API address (host:port) clients and the other replicas use for this one (default: the listener's)")
	fl.StringVar(&f.zone, "zone", "", "failure domain of this replica (status and durability)")
	fl.StringVar(&f.raftListen, "raft-listen", "127.0.0.1:7001", "raft transport listen address; keep it stable: the group knows each replica by it")
	fl.StringVar(&f.raftAdvert, "raft-advertise", "", "raft address the other replicas dial (default: the raft listener's; an IP, not 0.0.0.0)")
	fl.StringArrayVar(&f.peers, "peer", nil, "a founding replica, id=ID,addr=HOST:PORT,raft=HOST:PORT[,zone=Z]; repeat for each, self included, the same list on every founder (used only on an empty --data). None: a group of one")
	fl.BoolVar(&f.join, "join", false, "start empty and wait to be added to a group (shale admin meta add) instead of founding one")
	fl.DurationVar(&f.heartbeat, "heartbeat-timeout", time.Second, "a follower that hears nothing from the leader this long starts an election")
	fl.DurationVar(&f.election, "election-timeout", time.Second, "a candidate without a result this long starts another election")
	fl.DurationVar(&f.leaderLease, "leader-lease", 500*time.Millisecond, "a leader that hears from no quorum this long steps down (at most --heartbeat-timeout)")
	fl.DurationVar(&f.readLease, "read-lease", 0, "the leader serves linearizable reads this long after a quorum confirmed its leadership without another round (default: a quarter of --heartbeat-timeout; negative: a round per read; every replica must run the same --heartbeat-timeout)")
	fl.Uint64Var(&f.snapshotThreshold, "snapshot-threshold", 8192, "snapshot after this many log entries")
	fl.DurationVar(&f.snapshotInterval, "snapshot-interval", 2*time.Minute, "how often to check --snapshot-threshold")
	fl.Uint64Var(&f.trailingLogs, "trailing-logs", 10240, "log entries kept behind a snapshot; a follower further behind catches up by snapshot")
	fl.StringVar(&f.secretFile, "secret-file", "", "cluster secret file (created when missing)")
	fl.DurationVar(&f.downAfter, "down-after", 5*time.Second, "a node without heartbeat this long is down")
	fl.DurationVar(&f.outAfter, "out-after", 10*time.Minute, "a node down this long is out and its shards are re-created")
	fl.DurationVar(&f.garbageGrace, "garbage-grace", 30*time.Second, "replaced shards are kept this long for readers of the old version")
	fl.IntVar(&f.k, "k", 4, "data shards per stripe (repair loop)")
	fl.IntVar(&f.m, "m", 2, "parity shards per stripe (repair loop)")
	fl.Int64Var(&f.repairRate, "repair-rate", 0, "repair throttle, bytes/s, 0: unthrottled (repair loop)")
	fl.IntVar(&f.repairConcurrency, "repair-concurrency", 0, "objects repaired at once, 0: the loop's default (repair loop)")
	fl.BoolVar(&f.rebalance, "rebalance", true, "move the shards whose placement changed (a node added, re-weighted or gone) to where placement now puts them, after repair and through its throttle (repair loop)")
	fl.BoolVar(&f.repairAdaptive, "repair-adaptive", repairAdaptiveDefault(), "repair yields to foreground requests (one object in flight, with pauses; for at most 5 minutes of unbroken load, then full speed: objects stay degraded no longer than that for it) and runs at --repair-concurrency when there are none; default $"+repairAdaptiveEnv+" (1 or 0), else on (repair loop)")
	fl.BoolVar(&f.repairOnNodes, "repair-on-nodes", repairOnNodesDefault(), "a lost shard's new node rebuilds it from its peers instead of the repair loop here (falls back to here when it cannot); default $"+repairOnNodesEnv+" (1 or 0), else on (repair loop)")
	fl.IntVar(&f.blockSize, "block-size", 0, "bytes per shard block, 0: the codec's default (repair loop)")
	fl.DurationVar(&f.orphanGrace, "orphan-grace", time.Hour, "shards no manifest or upload references are deleted once this old; must exceed the longest write and node clock skew; 0: never (orphan inventory)")
	fl.DurationVar(&f.orphanEvery, "orphan-every", 10*time.Minute, "least time between the starts of two sweeps of every node's shards (orphan inventory)")
	fl.DurationVar(&f.abortUploadsAfter, "abort-uploads-after", 7*24*time.Hour, "multipart uploads still incomplete this long after they began are aborted and their parts deleted; 0: never (repair loop)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:0", `Prometheus /metrics listen address, unauthenticated and apart from --listen (which never serves it); keep it on loopback or a monitoring network. Port 0: any free port, printed as "meta metrics on ADDR". "": no metrics`)
	fl.StringVar(&f.pprof, "pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6062; default $"+pprofEnv+", else off)")
	registerProcs(fl, &f.procs)
	f.itls.register(fl)
	addServeFlags(fl, &f.serve, 1024)
	return cmd
}

// parsePeer reads one --peer: id=ID,addr=HOST:PORT,raft=HOST:PORT[,zone=Z].
func parsePeer(s string) (meta.Replica, error) {
	var r meta.Replica
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return r, fmt.Errorf("--peer %q: %q is not key=value", s, kv)
		}
		switch k {
		case "id":
			r.ID = v
		case "addr":
			r.Addr = v
		case "raft":
			r.Raft = v
		case "zone":
			r.Zone = v
		default:
			return r, fmt.Errorf("--peer %q: unknown key %q (id, addr, raft, zone)", s, k)
		}
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("--peer %q: %w", s, err)
	}
	return r, nil
}

// founders reads the --peer list; it must name this replica, at the raft
// address it advertises.
func (f metaFlags) founders(self meta.Replica) ([]meta.Replica, []raft.Server, error) {
	if f.join {
		if len(f.peers) > 0 {
			return nil, nil, errors.New("--join and --peer exclude each other: a joining replica founds nothing")
		}
		return nil, nil, nil
	}
	if len(f.peers) == 0 {
		return nil, []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(self.ID), Address: raft.ServerAddress(self.Raft)}}, nil
	}
	var recs []meta.Replica
	var servers []raft.Server
	seen := map[string]bool{}
	found := false
	for _, p := range f.peers {
		r, err := parsePeer(p)
		if err != nil {
			return nil, nil, err
		}
		if seen[r.ID] {
			return nil, nil, fmt.Errorf("--peer: %s given twice", r.ID)
		}
		seen[r.ID] = true
		if r.ID == self.ID {
			if r.Raft != self.Raft {
				return nil, nil, fmt.Errorf("--peer names %s at raft %s, but it advertises %s", r.ID, r.Raft, self.Raft)
			}
			found = true
		}
		recs = append(recs, r)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(r.ID), Address: raft.ServerAddress(r.Raft)})
	}
	if !found {
		return nil, nil, fmt.Errorf("--peer does not name this replica (--id %s)", self.ID)
	}
	return recs, servers, nil
}

// openReplica starts this process's raft replica: the authenticated raft
// transport on --raft-listen and the replicated store under --data.
func openReplica(f metaFlags, secret []byte, inet *internalNet, apiAddr string) (*replicated.Node, error) {
	if f.id == "" {
		f.id = "meta-1"
	}
	if f.raftListen == "" {
		f.raftListen = "127.0.0.1:0" // a group of one may move; founders must not
	}
	layer, err := raftnet.Listen(f.raftListen, raftnet.Config{
		Secret: secret, ID: f.id, Advertise: f.raftAdvert, ServerTLS: inet.server, ClientTLS: inet.client,
	})
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	self := meta.Replica{ID: f.id, Addr: apiAddr, Raft: layer.Addr().String(), Zone: f.zone}
	founders, servers, err := f.founders(self)
	if err != nil {
		_ = layer.Close()
		return nil, err
	}
	trans := raft.NewNetworkTransportWithLogger(layer, 3, 10*time.Second, hclog.New(&hclog.LoggerOptions{
		Name: "meta-raft-net", Level: hclog.Error, Output: os.Stderr}))
	node, err := replicated.Open(replicated.Config{
		ID: f.id, Dir: f.data, Transport: trans, Bootstrap: servers, Self: self, Founders: founders,
		Meta:             meta.Config{DownAfter: f.downAfter, OutAfter: f.outAfter, GarbageGrace: f.garbageGrace},
		HeartbeatTimeout: f.heartbeat, ElectionTimeout: f.election, LeaderLeaseTimeout: f.leaderLease, ReadLease: f.readLease,
		SnapshotThreshold: f.snapshotThreshold, SnapshotInterval: f.snapshotInterval, TrailingLogs: f.trailingLogs,
	})
	if err != nil {
		_ = trans.Close()
		return nil, fmt.Errorf("meta: %w", err)
	}
	return node, nil
}

// lateReplica is the replica the API handler serves, set once it is open
// (before the server's Serve starts, so no request sees it unset).
type lateReplica struct{ *replicated.Node }

// runMeta serves meta until ctx is done or leader-only work fails.
func runMeta(ctx context.Context, stdout io.Writer, f metaFlags) error {
	if err := applyProcs(f.procs); err != nil {
		return err
	}
	secret, err := loadSecretFlag(f.secretFile)
	if err != nil {
		return err
	}
	inet, err := f.itls.load()
	if err != nil {
		return err
	}
	stopPprof, err := startPprof(ctx, pprofAddr(f.pprof), pprofServe(), os.Stderr)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	defer stopPprof()
	// The handler is made before the listener binds: its verifier refuses
	// requests dated before it, and the kernel queues connections from the
	// bind on, so one made after the replica opened would refuse requests
	// a client signed (and sent) while it opened — a client retrying
	// across a restart would get 401. It serves the replica once that is
	// open: Serve, below, starts after.
	var node *replicated.Node
	served := &lateReplica{}
	var foreground atomic.Uint64 // the S3 path's requests: the repair throttle's signal
	handler := metaremote.NewHandler(served, secret, metaremote.HandlerConfig{
		Foreground: &foreground,
		LeaderURL: func(id, _ string) string {
			if a := node.LeaderAPI(id); a != "" {
				return inet.url(a)
			}
			return ""
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/", handler)
	f.serve.TLS = inet.server
	srv, err := serve.Listen(f.listen, mux, f.serve)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	apiAddr := f.advertise
	if apiAddr == "" {
		apiAddr = srv.Addr().String()
	}
	if node, err = openReplica(f, secret, inet, apiAddr); err != nil {
		_ = srv.Close()
		return err
	}
	served.Node = node
	closeAll := func() {
		_ = srv.Close()
		_ = node.Close()
	}
	mln, err := listenMetrics(f.metricsListen, f.metricsServe)
	if err != nil {
		closeAll()
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	repairTask, metrics, err := newRepair(node, node.Store(), f, secret, inet, &foreground, logger)
	if err != nil {
		_ = mln.Close()
		closeAll()
		return fmt.Errorf("meta: repair loop: %w", err)
	}
	// Membership ticks and the repair loop are leader-only work: they run
	// on the replica that leads, after a barrier, and stop when it no
	// longer does.
	work := leader.New(leader.Config{Logger: logger}, node,
		leader.Task{Name: "membership", Run: node.Membership(time.Second, logger)}, repairTask)
	metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shale_meta_leader_work",
		Help: "1 while this meta replica leads and runs the leader-only work (membership ticks, repair, garbage collection), else 0; the sum over the replicas is at most 1.",
	}, func() float64 {
		if work.Active() {
			return 1
		}
		return 0
	}))
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
	if cerr := node.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("meta: close replica: %w", cerr)
	}
	return err
}
