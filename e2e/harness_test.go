package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// shaleBin is the shale binary TestMain builds before any test runs; tests
// only read it.
var shaleBin string

// Bounds on every wait the harness does.
const (
	readyTimeout = 60 * time.Second // `shale dev` until its ready line
	stopGrace    = 10 * time.Second // SIGTERM until SIGKILL
	adminTimeout = 30 * time.Second // one `shale admin` run
	readyLine    = "shale dev cluster ready"
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shale-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin := filepath.Join(dir, "shale")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/shale")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/shale in %s: %v\n%s", root, err, out)
		return 1
	}
	shaleBin = bin
	return m.Run()
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// opts are the `shale dev` settings of one test cluster. Zero fields take
// the defaults noted.
type opts struct {
	nodes, zones, k, m  int           // 6, 3, 4, 2
	downAfter, outAfter time.Duration // 0: dev's own defaults
	tls                 bool          // serve S3 over HTTPS (self-signed)
	extra               []string      // more `shale dev` flags
}

func (o opts) withDefaults() opts {
	if o.nodes == 0 {
		o.nodes = 6
	}
	if o.zones == 0 {
		o.zones = min(3, o.nodes)
	}
	if o.k == 0 {
		o.k = 4
	}
	if o.m == 0 {
		o.m = 2
	}
	return o
}

// credentials mirrors DATA/credentials.json.
type credentials struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// proc is one process the harness started, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait returned
	err  error         // Wait's result; read after done
}

// startProc runs shale with args in its own process group; stdout and
// stderr are appended to logPath. onLine, when set, sees every stdout line.
func startProc(name string, args []string, logPath string, onLine func(string)) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(shaleBin, args...)
	cmd.Stderr = logf
	// Pdeathsig: should the test binary die, its children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() { // ends at EOF: when the process and its children closed stdout
		defer close(copied)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if onLine != nil {
				onLine(sc.Text())
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		// The copier ends when every holder of the pipe is gone; don't let
		// an orphaned grandchild keep this goroutine forever.
		select {
		case <-copied:
		case <-time.After(stopGrace):
			pr.Close()
		}
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// the group and waits (bounded) for the process to be reaped.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
	}
}

// Cluster is one running `shale dev` and clients for its S3 endpoint.
type Cluster struct {
	t    testing.TB
	Data string // the --data directory
	Opts opts

	// Set by each (re)start.
	File      devcluster.File
	Creds     credentials
	Endpoint  string       // the S3 URL
	HTTP      *http.Client // plain client that trusts the cluster's CA
	S3        *s3.Client   // aws-sdk-go-v2 with the SDK's default settings
	Minio     *minio.Client
	Wire      *wireLog // what the S3 SDK client sent
	MinioWire *wireLog // what the minio-go client sent

	starts int
	dev    *proc

	mu    sync.Mutex
	procs map[string]*proc // nodes or meta restarted by the test, by name
}

// startDev runs `shale dev` on a fresh data directory and returns once it
// is ready; the cluster is stopped when the test ends.
func startDev(t *testing.T, o opts) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Data: filepath.Join(t.TempDir(), "data"), Opts: o.withDefaults(), procs: map[string]*proc{}}
	t.Cleanup(c.cleanup)
	c.start(t)
	return c
}

// startAttempts bounds how often start runs `shale dev` again when it
// failed because a port was taken between being picked and being bound:
// the harness picks --s3, and dev picks its meta replicas' and nodes'
// ports, by listening on port 0 and closing, so another process (or dev's
// own next pick) can take one first.
const startAttempts = 3

func (c *Cluster) start(t testing.TB) {
	t.Helper()
	c.starts++
	for attempt := 1; ; attempt++ {
		err := c.startOnce(t)
		if err == nil {
			break
		}
		if attempt == startAttempts || !c.portTaken() {
			t.Fatal(err)
		}
		t.Logf("shale dev, attempt %d: a port was taken (%v); starting it again", attempt, err)
		if c.starts == 1 { // a fresh cluster starts again from nothing
			c.Data = filepath.Join(t.TempDir(), "data")
		}
	}
	var err error
	if c.File, err = devcluster.Read(c.Data); err != nil {
		t.Fatal(err)
	}
	if err := readJSON(c.File.Credentials, &c.Creds); err != nil {
		t.Fatal(err)
	}
	c.Endpoint = c.File.S3
	if c.Opts.tls != strings.HasPrefix(c.Endpoint, "https://") {
		t.Fatalf("cluster.json s3 = %q with tls=%v", c.Endpoint, c.Opts.tls)
	}
	c.newClients(t)
	t.Logf("dev cluster #%d up: %s, meta %s, %d nodes, %d+%d, data %s",
		c.starts, c.Endpoint, c.File.Meta, len(c.File.Nodes), c.File.K, c.File.M, c.Data)
}

// portTaken reports whether a log of the last start says a listen failed
// on a port in use.
func (c *Cluster) portTaken() bool {
	logs, _ := filepath.Glob(filepath.Join(c.Data, "logs", "*.log"))
	for _, f := range append(logs, c.devLog()) {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("address already in use")) {
			return true
		}
	}
	return false
}

// startOnce runs `shale dev` and waits until it is ready; an error when it
// exits first.
func (c *Cluster) startOnce(t testing.TB) error {
	t.Helper()
	s3addr, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	o := c.Opts
	args := []string{"dev", "--data", c.Data, "--s3", s3addr,
		"--nodes", strconv.Itoa(o.nodes), "--zones", strconv.Itoa(o.zones),
		"--k", strconv.Itoa(o.k), "--m", strconv.Itoa(o.m)}
	if o.downAfter > 0 {
		args = append(args, "--down-after", o.downAfter.String())
	}
	if o.outAfter > 0 {
		args = append(args, "--out-after", o.outAfter.String())
	}
	if o.tls {
		args = append(args, "--tls")
	}
	args = append(args, o.extra...)

	ready := make(chan struct{})
	var once sync.Once
	dev, err := startProc("dev", args, c.devLog(), func(line string) {
		if strings.Contains(line, readyLine) {
			once.Do(func() { close(ready) })
		}
	})
	if err != nil {
		t.Fatalf("shale %s: %v", strings.Join(args, " "), err)
	}
	c.dev = dev
	select {
	case <-ready:
		return nil
	case <-dev.done:
		return fmt.Errorf("shale dev exited before it was ready: %v:\n%s", dev.err, tail(c.devLog(), 10))
	case <-time.After(readyTimeout):
		t.Fatalf("shale dev not ready within %v", readyTimeout)
		return nil
	}
}

func (c *Cluster) devLog() string {
	return filepath.Join(filepath.Dir(c.Data), fmt.Sprintf("dev-%d.out", c.starts))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

func freePort() (string, error) {
	ps, err := freePorts(1)
	if err != nil {
		return "", err
	}
	return ps[0], nil
}

// freePorts returns n distinct free loopback addresses: it holds each
// listener until it has them all, so no two are the same port (picking
// one at a time can hand out a port just released twice).
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// newClients builds the S3 clients: the SDK with the settings an application
// gets by default (so request checksums are on: CRC32 headers over HTTP,
// aws-chunked trailers over HTTPS), plus endpoint, path-style and static
// credentials; minio-go with its defaults.
func (c *Cluster) newClients(t testing.TB) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.File.CACert != "" {
		pem, err := os.ReadFile(c.File.CACert)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatalf("no certificate in %s", c.File.CACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.HTTP = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	c.Wire = &wireLog{base: tr}
	c.MinioWire = &wireLog{base: tr.Clone()}

	// Built from s3.Options rather than config.LoadDefaultConfig so that the
	// environment (AWS_CA_BUNDLE, AWS_PROFILE, …) cannot change the test; the
	// checksum settings are the ones LoadDefaultConfig resolves by default.
	c.S3 = s3.New(s3.Options{
		Region:                     "us-east-1",
		Credentials:                awscreds.NewStaticCredentialsProvider(c.Creds.AccessKey, c.Creds.SecretKey, ""),
		BaseEndpoint:               aws.String(c.Endpoint),
		UsePathStyle:               true,
		HTTPClient:                 &http.Client{Transport: c.Wire},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	})

	host := strings.TrimPrefix(strings.TrimPrefix(c.Endpoint, "https://"), "http://")
	mc, err := minio.New(host, &minio.Options{
		Creds:     miniocreds.NewStaticV4(c.Creds.AccessKey, c.Creds.SecretKey, ""),
		Secure:    c.Opts.tls,
		Transport: c.MinioWire,
		Region:    "us-east-1",
	})
	if err != nil {
		t.Fatalf("minio client: %v", err)
	}
	c.Minio = mc
}

// wireLog is a RoundTripper that remembers, per HTTP method, how request
// bodies were signed and checksummed, so a test can show which of the SDK's
// upload paths it exercised.
type wireLog struct {
	base http.RoundTripper

	mu   sync.Mutex
	seen []wireEntry
}

type wireEntry struct {
	Method, Path      string
	ContentSHA256     string // x-amz-content-sha256
	ContentEncoding   string
	Trailer           string // x-amz-trailer
	HeaderChecksumCRC bool   // x-amz-checksum-crc32 sent as a header
}

func (w *wireLog) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.seen = append(w.seen, wireEntry{
		Method: r.Method, Path: r.URL.Path,
		ContentSHA256:     r.Header.Get("X-Amz-Content-Sha256"),
		ContentEncoding:   r.Header.Get("Content-Encoding"),
		Trailer:           r.Header.Get("X-Amz-Trailer"),
		HeaderChecksumCRC: r.Header.Get("X-Amz-Checksum-Crc32") != "",
	})
	w.mu.Unlock()
	return w.base.RoundTrip(r)
}

// entries returns the requests seen so far whose path ends with suffix.
func (w *wireLog) entries(method, suffix string) []wireEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []wireEntry
	for _, e := range w.seen {
		if e.Method == method && strings.HasSuffix(e.Path, suffix) {
			out = append(out, e)
		}
	}
	return out
}

// Stop ends the whole cluster: processes the test restarted, then `shale
// dev` (which stops its meta, nodes and gateway), then whatever of those is
// still alive. Stop is idempotent and bounded.
func (c *Cluster) Stop() {
	c.mu.Lock()
	procs := make([]*proc, 0, len(c.procs))
	for _, p := range c.procs {
		procs = append(procs, p)
	}
	c.procs = map[string]*proc{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(stopGrace) }()
	}
	wg.Wait()
	if c.dev != nil {
		c.dev.stop(stopGrace)
	}
	// dev's children die with it (it stops them; Pdeathsig backs that up),
	// but a restart on the same data must not race their exit.
	pids := map[int]string{c.File.GatewayPID: "gateway"}
	for _, m := range c.File.Metas {
		pids[m.PID] = m.ID
	}
	for _, n := range c.File.Nodes {
		pids[n.PID] = n.ID
	}
	for pid, name := range pids {
		if pid > 0 {
			c.reap(pid, name)
		}
	}
}

// Restart stops the cluster and starts `shale dev` again on the same data
// directory; clients are rebuilt for the new endpoint.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	c.start(t)
}

func (c *Cluster) cleanup() {
	c.Stop()
	if c.t.Failed() {
		c.dumpLogs()
	}
}

// reap waits (bounded) for a process of the cluster that the harness did not
// start itself to be gone, and SIGKILLs it if it is still shale's process.
func (c *Cluster) reap(pid int, marker string) {
	deadline := time.Now().Add(stopGrace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	if isShale(pid, marker) {
		c.t.Logf("%s (pid %d) outlived shale dev; killing it", marker, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may hold spaces and parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// isShale reports whether pid runs a shale binary with marker among its
// arguments, so a recycled pid is never signalled.
func isShale(pid int, marker string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != "shale" {
		return false
	}
	for _, a := range args[1:] {
		if a == marker || strings.Contains(a, marker) {
			return true
		}
	}
	return false
}

// dumpLogs logs the tail of every log of the cluster.
func (c *Cluster) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(c.Data), "dev-*.out"))
	logs, _ := filepath.Glob(filepath.Join(c.Data, "logs", "*.log"))
	for _, f := range append(files, logs...) {
		c.t.Logf("---- tail of %s ----\n%s", f, tail(f, 40))
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

func (c *Cluster) node(t testing.TB, id string) devcluster.Node {
	t.Helper()
	for _, n := range c.File.Nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %s in cluster.json", id)
	return devcluster.Node{}
}

// kill SIGKILLs the named process: the harness's own restart of it if there
// is one, else the pid cluster.json recorded. It returns once the process is
// gone (bounded).
func (c *Cluster) kill(t testing.TB, name string, pid int) {
	t.Helper()
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			t.Fatalf("%s (pid %d) survived SIGKILL for %v", name, p.cmd.Process.Pid, stopGrace)
		}
		return
	}
	if !isShale(pid, name) {
		t.Fatalf("%s: pid %d is not a running shale %s", name, pid, name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", name, pid, err)
	}
	deadline := time.Now().Add(stopGrace)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) survived SIGKILL for %v", name, pid, stopGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart runs shale again with args, as a child of the test, logging to
// the same file the cluster logs the process to.
func (c *Cluster) restart(t testing.TB, name string, args []string) {
	t.Helper()
	p, err := startProc(name, args, filepath.Join(c.Data, "logs", name+".log"), nil)
	if err != nil {
		t.Fatalf("restart %s: %v", name, err)
	}
	c.mu.Lock()
	old := c.procs[name]
	c.procs[name] = p
	c.mu.Unlock()
	if old != nil {
		old.stop(stopGrace)
	}
}

// KillNode SIGKILLs a storage node: a crash, as kill -9 would do.
func (c *Cluster) KillNode(t testing.TB, id string) { t.Helper(); c.kill(t, id, c.node(t, id).PID) }

// RestartNode runs the node again with the arguments cluster.json recorded.
// It does not wait for the node to register; see WaitNodeState.
func (c *Cluster) RestartNode(t testing.TB, id string) {
	t.Helper()
	c.restart(t, id, c.node(t, id).Args)
}

// KillMeta SIGKILLs every meta replica: metadata is down.
func (c *Cluster) KillMeta(t testing.TB) {
	t.Helper()
	for _, m := range c.File.Metas {
		c.KillMetaReplica(t, m.ID)
	}
}

// RestartMeta runs every meta replica again (same data, same addresses) and
// waits, bounded, until the group answers admin status.
func (c *Cluster) RestartMeta(t testing.TB) {
	t.Helper()
	for _, m := range c.File.Metas {
		c.restart(t, m.ID, m.Args)
	}
	c.WaitFor(t, "meta answers after restart", 30*time.Second, func() (bool, string) {
		_, err := c.Status()
		return err == nil, fmt.Sprint(err)
	})
}

// metaReplica returns replica id's record in cluster.json.
func (c *Cluster) metaReplica(t testing.TB, id string) devcluster.MetaReplica {
	t.Helper()
	for _, m := range c.File.Metas {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("no meta replica %s in cluster.json", id)
	return devcluster.MetaReplica{}
}

// KillMetaReplica SIGKILLs one meta replica.
func (c *Cluster) KillMetaReplica(t testing.TB, id string) {
	t.Helper()
	c.kill(t, id, c.metaReplica(t, id).PID)
}

// RestartMetaReplica runs one meta replica again with its cluster.json
// arguments; it does not wait for it to catch up.
func (c *Cluster) RestartMetaReplica(t testing.TB, id string) {
	t.Helper()
	c.restart(t, id, c.metaReplica(t, id).Args)
}

// replicaClient is a client of meta replica id alone, whose calls fail
// fast (a dead replica costs one attempt).
func (c *Cluster) replicaClient(id string) (*metaremote.Client, error) {
	for _, m := range c.File.Metas {
		if m.ID == id {
			secret, err := peerauth.LoadSecret(c.File.SecretFile)
			if err != nil {
				return nil, err
			}
			return metaremote.New(metaremote.Config{Addrs: []string{"http://" + m.Addr}, Secret: secret,
				HTTP: &http.Client{Timeout: 2 * time.Second}, RetryFor: time.Millisecond}), nil
		}
	}
	return nil, fmt.Errorf("no meta replica %s", id)
}

// ReplicaStatus asks meta replica id for its own view of the group.
func (c *Cluster) ReplicaStatus(id string) (meta.ReplicaStatus, error) {
	mc, err := c.replicaClient(id)
	if err != nil {
		return meta.ReplicaStatus{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return mc.ReplicaStatus(ctx)
}

// replicaHash asks meta replica id for the hash of its keyspace.
func (c *Cluster) replicaHash(id string) (meta.ReplicaHash, error) {
	mc, err := c.replicaClient(id)
	if err != nil {
		return meta.ReplicaHash{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return mc.ReplicaHash(ctx)
}

// MetaLeader waits (bounded) until one replica says it leads and returns
// its record.
func (c *Cluster) MetaLeader(t testing.TB, timeout time.Duration) devcluster.MetaReplica {
	t.Helper()
	var lead devcluster.MetaReplica
	c.WaitFor(t, "a meta leader", timeout, func() (bool, string) {
		var states []string
		for _, m := range c.File.Metas {
			st, err := c.ReplicaStatus(m.ID)
			if err != nil {
				states = append(states, m.ID+": "+err.Error())
				continue
			}
			states = append(states, m.ID+": "+st.State)
			if st.State == "leader" {
				lead = m
				return true, ""
			}
		}
		return false, strings.Join(states, "; ")
	})
	return lead
}

// Status runs `shale admin status --json` against the cluster.
func (c *Cluster) Status() (meta.Status, error) {
	var st meta.Status
	out, err := c.Admin("status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("decode admin status: %w\n%s", err, out)
	}
	return st, nil
}

// Admin runs `shale admin ARGS --data DATA` and returns its stdout.
func (c *Cluster) Admin(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	full := append([]string{"admin"}, args...)
	full = append(full, "--data", c.Data)
	cmd := exec.CommandContext(ctx, shaleBin, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("shale %s: %w: %s", strings.Join(full, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// StatusNode is node id as admin status shows it, and the map epoch.
func (c *Cluster) StatusNode(id string) (cluster.Node, uint64, error) {
	st, err := c.Status()
	if err != nil {
		return cluster.Node{}, 0, err
	}
	for _, n := range st.Nodes {
		if string(n.ID) == id {
			return n, st.Epoch, nil
		}
	}
	return cluster.Node{}, st.Epoch, fmt.Errorf("node %s not in admin status", id)
}

// NodeState is the state admin status shows for a node.
func (c *Cluster) NodeState(id string) (cluster.State, error) {
	n, _, err := c.StatusNode(id)
	return n.State, err
}

// WaitNodeState waits until admin status shows node id in state want.
func (c *Cluster) WaitNodeState(t testing.TB, id string, want cluster.State, timeout time.Duration) {
	t.Helper()
	c.WaitFor(t, fmt.Sprintf("node %s %s", id, want), timeout, func() (bool, string) {
		s, err := c.NodeState(id)
		if err != nil {
			return false, err.Error()
		}
		return s == want, "state " + s.String()
	})
}

// WaitFor polls cond until it holds, failing the test with cond's last
// explanation when timeout passes first.
func (c *Cluster) WaitFor(t testing.TB, what string, timeout time.Duration, cond func() (ok bool, why string)) {
	t.Helper()
	waitFor(t, what, timeout, cond)
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still not after %v (%s)", what, timeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nodeWatch polls admin status in the background and records the distinct
// states a node passes through, so a test can assert an order of states
// however long its own foreground work takes.
type nodeWatch struct {
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	states []cluster.State // consecutive duplicates collapsed
}

// WatchNode starts a nodeWatch; the caller must call Stop (it is also
// stopped when the test ends).
func (c *Cluster) WatchNode(t testing.TB, id string) *nodeWatch {
	w := &nodeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if s, err := c.NodeState(id); err == nil {
				w.mu.Lock()
				if n := len(w.states); n == 0 || w.states[n-1] != s {
					w.states = append(w.states, s)
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

// Seen returns the states recorded so far.
func (w *nodeWatch) Seen() []cluster.State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]cluster.State(nil), w.states...)
}

// Stop ends the polling and waits for it; idempotent.
func (w *nodeWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}
