package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/httpapi"
	"github.com/shale-store/shale/internal/md5lanes"
	"github.com/shale-store/shale/internal/privfs"
	"github.com/shale-store/shale/internal/s3auth"
	"github.com/shale-store/shale/internal/serve"
	metaremote "github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/object"
	storageremote "github.com/shale-store/shale/storage/remote"
)

func init() { commands = append(commands, newGatewayCmd) }

type gatewayFlags struct {
	listen, metaAddr, secretFile, credsFile string
	region, baseDomain, tlsCert, tlsKey     string
	pprof                                   string
	k, m, blockSize, quorum, maxInFlight    int
	memLimit, memBudget, replicateMax       int64
	gcPercent                               int
	readTimeout                             time.Duration
	// Client deadlines (httpapi.Config) and the memory budget's waits
	// (object.Config); see those fields.
	bodyStall, bodyRateGrace, writeStall time.Duration
	minBodyRate                          int64
	budgetWait, clientYield              time.Duration
	serve                                serve.Config // the S3 listener's limits
	itls                                 internalTLSFlags
}

func newGatewayCmd() *cobra.Command {
	var f gatewayFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve the S3 API: encode, place and stream objects to the storage nodes",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runGateway(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9000", "S3 listen address")
	fl.StringVar(&f.metaAddr, "meta", "127.0.0.1:7000", "meta replicas' addresses, host:port[,host:port…]; calls follow the leader")
	fl.StringVar(&f.secretFile, "secret-file", "", "cluster secret file (required)")
	fl.StringVar(&f.credsFile, "credentials-file", "", "JSON {access_key, secret_key}; default SHALE_ACCESS_KEY/SHALE_SECRET_KEY")
	fl.StringVar(&f.region, "region", "us-east-1", "the S3 region clients sign for")
	fl.StringVar(&f.baseDomain, "base-domain", "", "virtual-host-style addressing: BUCKET.BASE-DOMAIN")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM); with --tls-key serves HTTPS")
	fl.StringVar(&f.tlsKey, "tls-key", "", "TLS private key (PEM)")
	fl.IntVar(&f.k, "k", 4, "data shards per stripe")
	fl.IntVar(&f.m, "m", 2, "parity shards per stripe")
	fl.IntVar(&f.blockSize, "block-size", erasure.DefaultBlockSize, "bytes per shard block")
	fl.IntVar(&f.quorum, "write-quorum", 0, "durable shard writes needed to commit (default k+1)")
	fl.Int64Var(&f.replicateMax, "replicate-max", object.DefaultReplicateMax, "objects (and parts) up to this many bytes are stored as m+1 full copies across failure domains instead of k+m shards: same loss tolerance, one node per GET (0: never)")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 256, "requests served at once; more get SlowDown")
	fl.Int64Var(&f.memLimit, "memory-limit", 256<<20, "soft heap limit in bytes (GOMEMLIMIT); 0 leaves it")
	fl.IntVar(&f.gcPercent, "gc-percent", defaultGatewayGCPercent, "the least GC percent (GOGC): the gateway lets its heap grow 32 MiB over what the last collection left, or this many percent of it when that is more, at most 100 (stripe buffers are cheap to collect, and Go's 100 would double the stripes in flight); 0 leaves Go's default; $GOGC, when set, wins")
	fl.Int64Var(&f.memBudget, "memory-budget", object.DefaultMemoryBudget, "bytes of stripe buffers all requests together may hold; past it requests wait (keep it under about 3/8 of --memory-limit); negative: no bound")
	fl.StringVar(&f.pprof, "pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060; default $"+pprofEnv+", else off)")
	fl.DurationVar(&f.readTimeout, "shard-read-timeout", 2*time.Second, "a shard read making no progress this long is read around with parity")
	f.itls.register(fl)
	fl.DurationVar(&f.bodyStall, "body-stall", httpapi.DefaultBodyStall, "a request body read waiting this long on the client cuts the connection")
	fl.Int64Var(&f.minBodyRate, "min-body-rate", httpapi.DefaultMinBodyRate, "bytes/s a request body must average once it has kept the gateway waiting --body-rate-grace; slower clients are cut (negative: no rule)")
	fl.DurationVar(&f.bodyRateGrace, "body-rate-grace", httpapi.DefaultBodyRateGrace, "waiting on a request body allowed before --min-body-rate applies")
	fl.DurationVar(&f.writeStall, "write-stall", httpapi.DefaultWriteStall, "a response write the client does not take within this cuts the connection")
	fl.DurationVar(&f.budgetWait, "budget-wait", 5*time.Second, "a request waiting this long for --memory-budget gets 503 SlowDown")
	fl.DurationVar(&f.clientYield, "client-yield", 100*time.Millisecond, "a request blocked this long on its client gives its memory budget back until the client moves (negative: never)")
	addServeFlags(fl, &f.serve, 1024)
	return cmd
}

// credentials are the S3 access key pair a gateway accepts.
type credentials struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// loadCredentials reads SHALE_ACCESS_KEY/SHALE_SECRET_KEY, else path; with
// create it makes and keeps a new pair in path (mode 0600) when there is
// none. A file group or others may access is refused (privfs.ErrNotPrivate).
func loadCredentials(path string, create bool) (credentials, error) {
	if ak, sk := os.Getenv("SHALE_ACCESS_KEY"), os.Getenv("SHALE_SECRET_KEY"); ak != "" || sk != "" {
		if ak == "" || sk == "" {
			return credentials{}, errors.New("set both SHALE_ACCESS_KEY and SHALE_SECRET_KEY, or neither")
		}
		return credentials{AccessKey: ak, SecretKey: sk}, nil
	}
	if path == "" {
		return credentials{}, errors.New("no S3 credentials: set SHALE_ACCESS_KEY and SHALE_SECRET_KEY or pass --credentials-file")
	}
	b, err := privfs.ReadFile(path)
	if err == nil {
		var c credentials
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKey == "" || c.SecretKey == "" {
			return credentials{}, fmt.Errorf("credentials file %s: want {\"access_key\": …, \"secret_key\": …}", path)
		}
		return c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !create {
		return credentials{}, fmt.Errorf("read credentials: %w", err)
	}
	c := credentials{AccessKey: "SHALE" + randomHex(8), SecretKey: randomHex(20)}
	b, _ = json.MarshalIndent(c, "", "  ")
	if err := privfs.WriteFile(path, append(b, '\n')); err != nil {
		return credentials{}, fmt.Errorf("keep credentials: %w", err)
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// nodeDialer hands the object layer one remote shard store per node (id and
// address), reusing clients (and their connections).
type nodeDialer struct {
	secret []byte
	hc     *http.Client
	inet   *internalNet

	mu      sync.Mutex
	clients map[string]*storageremote.Client
}

func newNodeDialer(secret []byte, inet *internalNet) *nodeDialer {
	return &nodeDialer{secret: secret, hc: &http.Client{Transport: inet.transport()}, inet: inet, clients: map[string]*storageremote.Client{}}
}

func (d *nodeDialer) Store(n cluster.Node) (object.ShardStore, error) {
	if n.Addr == "" {
		return nil, fmt.Errorf("node %s has no address", n.ID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := string(n.ID) + "@" + n.Addr // a node's requests are signed for its id
	c, ok := d.clients[key]
	if !ok {
		c = storageremote.NewClient(d.inet.url(n.Addr), string(n.ID), d.secret, d.hc)
		d.clients[key] = c
	}
	return c, nil
}

func newMetaClient(addrs string, secret []byte, inet *internalNet) *metaremote.Client {
	return metaremote.NewClient(inet.urls(addrs), secret, &http.Client{Transport: inet.transport()})
}

// validate refuses flag combinations that would silently serve something
// other than what the operator asked for.
func (f gatewayFlags) validate() error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		// With only --tls-key the gateway would serve plain HTTP; with only
		// --tls-cert it would fail at the first handshake.
		return errors.New("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
	}
	if f.gcPercent < 0 {
		return fmt.Errorf("--gc-percent %d: give a percent, or 0 to leave Go's default", f.gcPercent)
	}
	if least := min(f.k+1, f.k+f.m); f.quorum != 0 && f.quorum < least {
		return fmt.Errorf("--write-quorum %d is below k+1 = %d: PUTs would be acknowledged without redundancy", f.quorum, least)
	}
	return nil
}

// defaultGatewayGCPercent is --gc-percent's default: with Go's 100 the heap
// of a busy gateway grows to twice its stripe buffers before a collection;
// at 25 throughout, a gateway serving small objects collects many times a
// second (docs/BENCHMARKS.md, "Issue 13, session 6"). See tuneGC.
const defaultGatewayGCPercent = 25

func runGateway(ctx context.Context, stdout io.Writer, f gatewayFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.memLimit > 0 {
		debug.SetMemoryLimit(f.memLimit)
	}
	if f.gcPercent > 0 && os.Getenv("GOGC") == "" {
		gcCtx, stopGC := context.WithCancel(ctx)
		gcDone := make(chan struct{})
		go func() {
			defer close(gcDone)
			tuneGC(gcCtx, f.gcPercent, time.Second)
		}()
		defer func() { stopGC(); <-gcDone }()
	}
	stopPprof, err := startPprof(ctx, pprofAddr(f.pprof), pprofServe(), os.Stderr)
	if err != nil {
		return err
	}
	defer stopPprof()
	secret, err := loadSecretFlag(f.secretFile)
	if err != nil {
		return err
	}
	creds, err := loadCredentials(f.credsFile, false)
	if err != nil {
		return err
	}
	inet, err := f.itls.load()
	if err != nil {
		return err
	}
	// Concurrent large PUTs' MD5s (ETags) share SIMD lanes; closed after
	// the server's shutdown below.
	md5s, err := md5lanes.New(md5lanes.Config{})
	if err != nil {
		return err
	}
	defer md5s.Close()
	coord, err := object.New(object.Config{
		K: f.k, M: f.m, BlockSize: f.blockSize, WriteQuorum: f.quorum, ReadTimeout: f.readTimeout,
		ReplicateMax: cmp.Or(f.replicateMax, -1),
		MemoryBudget: f.memBudget, BudgetWait: f.budgetWait, ClientYield: f.clientYield, MD5: md5s,
	}, newMetaClient(f.metaAddr, secret, inet), newNodeDialer(secret, inet))
	if err != nil {
		return err
	}
	auth := s3auth.New(s3auth.Config{
		Region: f.region,
		Lookup: func(ak string) (string, bool) {
			if ak == creds.AccessKey {
				return creds.SecretKey, true
			}
			return "", false
		},
	})
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := httpapi.New(httpapi.Config{
		Region: f.region, Auth: auth, BaseDomain: f.baseDomain, MaxInFlight: f.maxInFlight, Logger: logger,
		BodyStall: f.bodyStall, MinBodyRate: f.minBodyRate, BodyRateGrace: f.bodyRateGrace, WriteStall: f.writeStall,
	}, object.NewService(coord))
	srv, err := serve.Listen(f.listen, h, f.serve)
	if err != nil {
		return err
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "gateway listening on %s://%s\n", scheme, srv.Addr())
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- srv.ServeTLS(f.tlsCert, f.tlsKey)
		} else {
			errc <- srv.Serve()
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-errc
	return nil
}
