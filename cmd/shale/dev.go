package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/devctl"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/internal/privfs"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/storage"
)

func init() { commands = append(commands, newDevCmd) }

type devFlags struct {
	data, s3            string
	nodes, zones, k, m  int
	downAfter, outAfter time.Duration
	tls                 bool
	internalTLS         bool
	repairRate          int64
	repairConcurrency   int
	blockSize           int
	scrubRate           int64
	inlineMax           int
	replicateMax        int64
	scrubInterval       time.Duration
	abortUploadsAfter   time.Duration
	metaReplicas        int
	childProcs          int
}

func newDevCmd() *cobra.Command {
	var f devFlags
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole cluster on this machine: meta replicas, N node processes over Z zones, and an S3 gateway",
		Long: `dev starts --meta-replicas meta processes (one raft group, each replica in
another zone), --nodes storage node processes spread over --zones zones (each
its own process, data dir and loopback port, so kill -9 of one is a real
failure) and an S3 gateway. It writes DATA/cluster.json so scripts and
operators can find (and kill) every process, and stops them all on Ctrl-C.
Restarting on the same --data brings every object back; a data dir of a
cluster with a single meta (before replication) is adopted and grown to
--meta-replicas.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "./shale-data", "data directory of the whole cluster")
	fl.StringVar(&f.s3, "s3", "127.0.0.1:9000", "S3 listen address")
	fl.IntVar(&f.nodes, "nodes", 6, "storage node processes")
	fl.IntVar(&f.zones, "zones", 3, "zones the nodes (and meta replicas) are spread over")
	fl.IntVar(&f.metaReplicas, "meta-replicas", 3, "meta replicas (one raft group; 1 is a group of one); a restarted cluster keeps the replicas it has")
	fl.IntVar(&f.k, "k", 4, "data shards per stripe")
	fl.IntVar(&f.m, "m", 2, "parity shards per stripe")
	fl.DurationVar(&f.downAfter, "down-after", 5*time.Second, "a node without heartbeat this long is down")
	fl.DurationVar(&f.outAfter, "out-after", 10*time.Minute, "a node down this long is out and its shards are re-created")
	fl.BoolVar(&f.tls, "tls", false, "serve S3 over HTTPS with a self-signed certificate")
	fl.BoolVar(&f.internalTLS, "internal-tls", false, "mutual TLS between the cluster's processes, with a cluster CA kept in DATA/internal-tls")
	fl.Int64Var(&f.repairRate, "repair-rate", 0, "repair throttle, bytes/s (0: unthrottled)")
	fl.IntVar(&f.repairConcurrency, "repair-concurrency", 0, "objects repaired at once (0: the repair loop's default)")
	fl.IntVar(&f.blockSize, "block-size", 0, "bytes per shard block (0: the codec's default)")
	fl.Int64Var(&f.scrubRate, "scrub-rate", 0, "scrubber rate per node, bytes/s (0: the node's default)")
	fl.Int64Var(&f.replicateMax, "replicate-max", object.DefaultReplicateMax, "objects up to this many bytes are stored as m+1 copies instead of k+m shards (0: never)")
	fl.IntVar(&f.inlineMax, "inline-max", storage.DefaultInlineMax, "shards up to this many bytes are kept in each node's index, not in files (0: never)")
	fl.DurationVar(&f.scrubInterval, "scrub-interval", 0, "time between scrub passes on each node (0: the node's default)")
	fl.DurationVar(&f.abortUploadsAfter, "abort-uploads-after", 7*24*time.Hour, "multipart uploads still incomplete this long after they began are aborted (0: never)")
	fl.IntVar(&f.childProcs, "child-procs", 0, "processors (--procs, GOMAXPROCS) of each node and meta process, which share this machine's cores (0: the cores divided among them, at least 1)")
	return cmd
}

// procsEach is --child-procs, or each node's and meta replica's share of
// the machine's cores: their idle schedulers would otherwise spin on the
// same cores looking for work (docs/bench/profile-issue13.md; measured in
// docs/BENCHMARKS.md, "Issue 13, session 6").
func (f devFlags) procsEach() int {
	if f.childProcs > 0 {
		return f.childProcs
	}
	return max(1, runtime.NumCPU()/max(1, f.nodes+f.metaReplicas))
}

// child is one supervised process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startChild runs exe with args, its stderr (and stdout after the first
// line that contains marker) appended to logPath, and returns the text after
// marker on that line — the address the process listens on.
func startChild(ctx context.Context, name, exe string, args []string, logPath, marker string) (*child, string, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if !sent {
				if i := strings.Index(line, marker); i >= 0 {
					addrc <- strings.TrimSpace(line[i+len(marker):])
					sent = true
				}
			}
		}
		_, _ = io.Copy(logf, out)
		c.err = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	select {
	case addr := <-addrc:
		return c, addr, nil
	case <-c.done:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v); see %s", name, c.err, logPath)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, "", fmt.Errorf("%s did not start within 30s; see %s", name, logPath)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, "", ctx.Err()
	}
}

// startChildOnPort is startChild for a process whose args[listenAt] is a
// loopback address dev picked: should another process take that port
// between the pick and the child's bind (an outgoing connection's ephemeral
// port, say), the child fails with "address already in use" and is started
// again on a port picked anew, at most twice.
func startChildOnPort(ctx context.Context, name, exe string, args []string, listenAt int, logPath, marker string) (*child, string, error) {
	args = slices.Clone(args)
	for try := 0; ; try++ {
		var before int64
		if fi, err := os.Stat(logPath); err == nil {
			before = fi.Size()
		}
		c, addr, err := startChild(ctx, name, exe, args, logPath, marker)
		if err == nil || try == 2 || !logSaysSince(logPath, before, "address already in use") {
			return c, addr, err
		}
		pp := newPorts(args[listenAt])
		port, perr := pp.pick("")
		pp.release()
		if perr != nil {
			return nil, "", errors.Join(err, perr)
		}
		args[listenAt] = port
	}
}

// logSaysSince reports whether the log at path holds s after its first
// from bytes.
func logSaysSince(path string, from int64, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, from, 1<<20))
	return err == nil && strings.Contains(string(b), s)
}

func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// ports picks the dev cluster's loopback ports: the one each process had
// in the previous run when it is free (so a restarted cluster keeps its
// addresses), else one the kernel hands out. Every port picked stays bound
// until release, so no two picks (and no pick and the S3 address) collide
// before the processes bind them.
type ports struct {
	held  []net.Listener
	avoid map[string]bool
}

func newPorts(avoid ...string) *ports {
	p := &ports{avoid: map[string]bool{}}
	for _, a := range avoid {
		p.avoid[a] = true
	}
	return p
}

// pick returns prev if it can be bound, else a free port.
func (p *ports) pick(prev string) (string, error) {
	if prev != "" && !p.avoid[prev] {
		if ln, err := net.Listen("tcp", prev); err == nil {
			p.held = append(p.held, ln)
			return prev, nil
		}
	}
	for range 16 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		p.held = append(p.held, ln)
		if a := ln.Addr().String(); !p.avoid[a] {
			return a, nil
		}
	}
	return "", errors.New("no free loopback port")
}

// release frees every port picked, for the processes to bind.
func (p *ports) release() {
	for _, ln := range p.held {
		_ = ln.Close()
	}
	p.held = nil
}

func runDev(ctx context.Context, out io.Writer, f devFlags) error {
	if f.nodes < f.k+f.m {
		return fmt.Errorf("%d nodes cannot hold %d+%d distinct shards", f.nodes, f.k, f.m)
	}
	if f.zones < 1 || f.zones > f.nodes {
		return fmt.Errorf("--zones must be between 1 and --nodes")
	}
	if f.metaReplicas < 1 || f.metaReplicas > 9 {
		return fmt.Errorf("--meta-replicas must be between 1 and 9")
	}
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	for _, d := range []string{data, filepath.Join(data, "logs"), filepath.Join(data, "nodes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	prev, _ := devcluster.Read(data)
	specs := devNodeSpecs(data, f, prev)
	secretFile := filepath.Join(data, "secret")
	if _, err := peerauth.LoadOrCreateSecret(secretFile); err != nil {
		return err
	}
	credsFile := filepath.Join(data, "credentials.json")
	creds, err := loadCredentials(credsFile, true)
	if err != nil {
		return err
	}
	if os.Getenv("SHALE_ACCESS_KEY") != "" { // keep env credentials for the gateway child
		b, _ := json.MarshalIndent(creds, "", "  ")
		if err := privfs.WriteFile(credsFile, append(b, '\n')); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	procs := &devProcs{ctx: ctx, log: os.Stderr}
	defer procs.stopAll(5 * time.Second)
	add := procs.add

	cf := devcluster.File{SecretFile: secretFile, Credentials: credsFile, K: f.k, M: f.m}
	itls := map[string]internalTLSFlags{} // by process name; empty: plain HTTP
	if f.internalTLS {
		names := []string{"gateway", "admin"}
		for i := 1; i <= max(f.metaReplicas, len(prev.Metas)); i++ {
			names = append(names, fmt.Sprintf("meta-%d", i))
		}
		for _, n := range specs {
			names = append(names, n.ID)
		}
		if itls, err = devInternalTLS(data, names); err != nil {
			return err
		}
		a := itls["admin"]
		cf.InternalTLS = &devcluster.InternalTLS{CA: a.ca, Cert: a.cert, Key: a.key}
	}
	pp := newPorts(f.s3)
	defer pp.release()
	nodePorts := make([]string, len(specs))
	for i, n := range specs {
		if nodePorts[i], err = pp.pick(n.Addr); err != nil {
			return err
		}
	}
	metas, err := startDevMetas(ctx, exe, data, prev, f, secretFile, itls, pp, add)
	if err != nil {
		return err
	}
	cf.Metas, cf.Meta = metas, devMetaAddrs(metas)

	starter := devNodeStarter{exe: exe, data: data, meta: cf.Meta, secretFile: secretFile, f: f}
	for i, n := range specs {
		n, c, err := starter.start(ctx, n, nodePorts[i], itls[n.ID])
		if err != nil {
			return err
		}
		add(c)
		cf.Nodes = append(cf.Nodes, n)
	}

	cf.GatewayArgs = []string{"gateway", "--listen", f.s3, "--meta", cf.Meta, "--secret-file", secretFile,
		"--credentials-file", credsFile, "--k", strconv.Itoa(f.k), "--m", strconv.Itoa(f.m)}
	if f.blockSize > 0 {
		cf.GatewayArgs = append(cf.GatewayArgs, "--block-size", strconv.Itoa(f.blockSize))
	}
	if f.replicateMax != object.DefaultReplicateMax {
		cf.GatewayArgs = append(cf.GatewayArgs, "--replicate-max", strconv.FormatInt(f.replicateMax, 10))
	}
	cf.GatewayArgs = append(cf.GatewayArgs, itls["gateway"].args()...)
	if f.tls {
		cert, key, err := selfSignedCert(filepath.Join(data, "tls"))
		if err != nil {
			return err
		}
		cf.CACert = cert
		cf.GatewayArgs = append(cf.GatewayArgs, "--tls-cert", cert, "--tls-key", key)
	}
	gc, url, err := startChild(ctx, "gateway", exe, cf.GatewayArgs, filepath.Join(data, "logs", "gateway.log"), "gateway listening on ")
	if err != nil {
		return err
	}
	add(gc)
	cf.S3, cf.GatewayPID = url, gc.cmd.Process.Pid

	if err := waitNodesUp(ctx, cf); err != nil {
		return err
	}
	// The control channel is empty before the file names this dev, so a
	// request waits only for a dev that is alive to take it.
	if err := devctl.Open(data); err != nil {
		return err
	}
	cf.DevPID = os.Getpid()
	if err := devcluster.Write(data, cf); err != nil {
		return err
	}
	printDevBanner(out, cf, creds.AccessKey, os.Getenv("SHALE_SECRET_KEY") != "", f)

	// `shale admin node add` asks through DATA/control.
	inet, err := devNet(cf)
	if err != nil {
		return err
	}
	secret, err := peerauth.LoadSecret(secretFile)
	if err != nil {
		return err
	}
	adder := &devNodeAdder{start: starter, procs: procs, meta: newMetaClient(cf.Meta, secret, inet),
		avoid: []string{f.s3}, tlsOn: f.internalTLS, log: os.Stderr, data: data}
	control := make(chan error, 1)
	go func() { control <- devctl.Serve(ctx, data, 200*time.Millisecond, adder.handle) }()
	select {
	case err := <-control:
		if err != nil {
			fmt.Fprintf(os.Stderr, "shale dev: %v; shale admin node add is unavailable until dev restarts\n", err)
		}
		<-ctx.Done()
	case <-ctx.Done():
		<-control
	}
	fmt.Fprintln(out, "\nstopping the cluster…")
	return nil
}

func waitNodesUp(ctx context.Context, cf devcluster.File) error {
	secret, err := peerauth.LoadSecret(cf.SecretFile)
	if err != nil {
		return err
	}
	inet, err := devNet(cf)
	if err != nil {
		return err
	}
	mc := newMetaClient(cf.Meta, secret, inet)
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := mc.Map(ctx)
		if err == nil && allRegistered(m, cf.Nodes) {
			for _, n := range m.InState(cluster.Out, cluster.Draining) {
				fmt.Fprintf(os.Stderr, "shale dev: %s is %s (shale admin in %s brings it back)\n", n.ID, n.State, n.ID)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes did not all register with meta within 30s (last error: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// allRegistered reports whether every node of the dev cluster is in the map
// and not down. A node an operator (or out-after) took out stays out across
// restarts until `shale admin in`, and counts as registered.
func allRegistered(m *cluster.Map, nodes []devcluster.Node) bool {
	for _, cn := range nodes {
		n, ok := m.Node(cluster.NodeID(cn.ID))
		if !ok || n.State == cluster.Down {
			return false
		}
	}
	return true
}

// printDevBanner says how to reach the cluster. It never prints the S3
// secret key: it says where it is kept (the credentials file, readable by its
// owner only) or, when it came from SHALE_SECRET_KEY, that it did.
func printDevBanner(out io.Writer, cf devcluster.File, accessKey string, secretFromEnv bool, f devFlags) {
	secretAt, secretExpr := "in "+cf.Credentials+` ("secret_key")`, "$(jq -r .secret_key "+shellQuote(cf.Credentials)+")"
	if secretFromEnv {
		secretAt, secretExpr = "from $SHALE_SECRET_KEY (as you set it)", `"$SHALE_SECRET_KEY"`
	}
	zones := map[string]bool{}
	for _, n := range cf.Nodes {
		zones[n.Zone] = true
	}
	fmt.Fprintf(out, "shale dev cluster ready: %d nodes over %d zones, coding %d+%d\n\n", len(cf.Nodes), len(zones), f.k, f.m)
	fmt.Fprintf(out, "  S3 endpoint   %s\n  access key    %s\n  secret key    %s\n  region        us-east-1\n  meta          %s\n  cluster file  %s\n\n",
		cf.S3, accessKey, secretAt, cf.Meta, filepath.Join(filepath.Dir(cf.SecretFile), devcluster.FileName))
	ca := ""
	if cf.CACert != "" {
		ca = "AWS_CA_BUNDLE=" + shellQuote(cf.CACert) + " "
		fmt.Fprintf(out, "  TLS: self-signed; trust it with AWS_CA_BUNDLE=%s (aws cli, SDKs) or --ca-bundle\n\n", cf.CACert)
	}
	fmt.Fprintf(out, "try:\n  %sAWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws --endpoint-url %s --region us-east-1 s3 mb s3://demo\n",
		ca, accessKey, secretExpr, cf.S3)
	fmt.Fprintf(out, "  %s admin status --data %s\n\nCtrl-C stops every process.\n", os.Args[0], filepath.Dir(cf.SecretFile))
}

// shellQuote returns s as one POSIX shell word.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:,=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// selfSignedCert makes (once) a certificate for 127.0.0.1 and localhost.
func selfSignedCert(dir string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := os.Stat(certPath); err == nil {
		return certPath, keyPath, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "shale dev"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", errors.Join(err, os.Remove(keyPath))
	}
	return certPath, keyPath, nil
}
