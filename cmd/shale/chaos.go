package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/drill"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

func init() { commands = append(commands, newChaosCmd) }

// chaosFlags are the flags of `shale chaos`.
type chaosFlags struct {
	data, clusterFile       string
	endpoint, access, skey  string
	insecure                bool
	objects, multipart      int
	maxSize                 string
	concurrency             int
	killNodes, rounds       int
	killZone, killMeta      bool
	force, keep, asJSON     bool
	quiet                   bool
	seed                    uint64
	timeout, sampleInterval time.Duration
	bucket                  string
}

// exitError ends the process with its code (main honours ExitCode) after
// printing its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func newChaosCmd() *cobra.Command {
	var f chaosFlags
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run a failure drill against a running cluster: write, kill, read back, wait for repair, verdict",
		Long: `shale chaos is the operator's failure drill. Against a running cluster it
writes a verification set of objects of mixed sizes (their SHA-256 kept in
memory) into a bucket of its own, SIGKILLs what it is told — --kill-nodes N
random nodes, or every node of one random --kill-zone, and/or the meta
leader — the first time while its writes are still going, reads every
object back during the degraded window, waits for meta to mark the victims
down and then out and for repair to bring every object back to k+m, and
does it again for each of --rounds. It prints a timeline (kills, detection,
objects by spare shards over time, time-to-repair, bytes repaired) and a
verdict.

It only kills processes of this cluster: pids from the cluster file, each
checked first to still be a shale process started with that node's --data.
Victims are chosen with a seeded random source; the seed is printed, and
--seed replays the same choices. Killed processes stay dead: restart them
(or the dev cluster) afterwards.

Exit status: 0 pass; 2 an object was lost or read back wrong; 3 repair did
not finish within --timeout; 1 anything else (a refused plan, an unreachable
cluster). --timeout bounds the whole drill: waiting for repair stops early
enough to leave a quarter of it (at most a minute) for the final read-back
and the cleanup of the bucket (kept with --keep).`,
		Example: `  shale chaos --data ./shale-data --kill-nodes 2 --rounds 2
  shale chaos --data ./shale-data --kill-zone --objects 500 --json
  shale chaos --endpoint https://s3.example:9000 --access AK --secret SK --cluster-file cluster.json --kill-nodes 1 --kill-meta-leader`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runChaos(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "a dev cluster's data dir (reads DATA/cluster.json; default ./shale-data)")
	fl.StringVar(&f.clusterFile, "cluster-file", "", "a cluster file (cluster.json format): pids, meta addresses, secret file; with --endpoint and credentials")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint URL (default: the cluster file's)")
	fl.StringVar(&f.access, "access", envFirst("AWS_ACCESS_KEY_ID", "SHALE_ACCESS_KEY"), "access key (default: the cluster file's credentials file)")
	fl.StringVar(&f.skey, "secret", envFirst("AWS_SECRET_ACCESS_KEY", "SHALE_SECRET_KEY"), "secret key")
	fl.BoolVar(&f.insecure, "insecure", false, "skip TLS verification of the S3 endpoint")
	fl.IntVar(&f.objects, "objects", 200, "objects in the verification set")
	fl.IntVar(&f.multipart, "multipart", 2, "of which multipart uploads (two parts: 5 MiB and the rest)")
	fl.StringVar(&f.maxSize, "max-size", "4MiB", "largest single-PUT object (sizes are drawn from 0 B up to it)")
	fl.IntVar(&f.concurrency, "concurrency", 4, "writes and reads in flight")
	fl.IntVar(&f.killNodes, "kill-nodes", 0, "nodes to kill each round (more than m needs --force)")
	fl.BoolVar(&f.killZone, "kill-zone", false, "kill every node of one random zone each round")
	fl.BoolVar(&f.killMeta, "kill-meta-leader", false, "also kill the meta replica that leads")
	fl.IntVar(&f.rounds, "rounds", 1, "rounds of kill, read back, wait for repair")
	fl.BoolVar(&f.force, "force", false, "run a plan that would lose data by design")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random choices (0: from the clock; printed)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "bound on the whole drill")
	fl.DurationVar(&f.sampleInterval, "sample", time.Second, "how often meta's status is sampled")
	fl.StringVar(&f.bucket, "bucket", "", "bucket to create and use (default shale-chaos-SEED-TIME)")
	fl.BoolVar(&f.keep, "keep", false, "keep the bucket and its objects")
	fl.BoolVar(&f.asJSON, "json", false, "print the report (timeline, rounds, verdict) as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress line on stderr")
	return cmd
}

// chaosTarget is the cluster a drill runs against.
type chaosTarget struct {
	cf       devcluster.File
	endpoint string
	s3       *s3.Client
	meta     *metaremote.Client
	replicas resolvedTarget // for asking each meta replica alone
}

// resolveChaos reads the cluster file and the credentials and builds the
// clients; it refuses clearly when one is missing.
func resolveChaos(f chaosFlags) (chaosTarget, error) {
	var t chaosTarget
	var err error
	switch {
	case f.clusterFile != "" && f.data != "":
		return t, errors.New("--data and --cluster-file: give one")
	case f.clusterFile != "":
		b, rerr := os.ReadFile(f.clusterFile)
		if rerr != nil {
			return t, fmt.Errorf("no cluster file: %w", rerr)
		}
		if err := json.Unmarshal(b, &t.cf); err != nil {
			return t, fmt.Errorf("parse %s: %w", f.clusterFile, err)
		}
	default:
		data := f.data
		if data == "" {
			data = "./shale-data"
		}
		if t.cf, err = devcluster.Read(data); err != nil {
			return t, fmt.Errorf("no cluster file (give --data of a dev cluster, or --cluster-file): %w", err)
		}
	}
	cf := t.cf
	if len(cf.Nodes) == 0 || cf.Meta == "" {
		return t, errors.New("the cluster file lists no nodes or no meta: the drill needs both")
	}
	if cf.K <= 0 || cf.M <= 0 {
		return t, fmt.Errorf("the cluster file gives coding %d+%d: the drill needs k and m", cf.K, cf.M)
	}
	t.endpoint = f.endpoint
	if t.endpoint == "" {
		t.endpoint = cf.S3
	}
	if t.endpoint == "" {
		return t, errors.New("no S3 endpoint: give --endpoint")
	}
	access, skey := f.access, f.skey
	if (access == "" || skey == "") && cf.Credentials != "" {
		var c struct {
			AccessKey string `json:"access_key"`
			SecretKey string `json:"secret_key"`
		}
		b, rerr := os.ReadFile(cf.Credentials)
		if rerr == nil {
			rerr = json.Unmarshal(b, &c)
		}
		if rerr != nil {
			return t, fmt.Errorf("no credentials: --access/--secret not given and the cluster's credentials file: %w", rerr)
		}
		access, skey = c.AccessKey, c.SecretKey
	}
	if access == "" || skey == "" {
		return t, errors.New("no credentials: give --access and --secret (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
	}
	// Never mint a secret here (loadSecretFlag would): a drill only joins
	// a cluster that has one.
	secret, err := peerauth.LoadSecret(cf.SecretFile)
	if err != nil {
		return t, fmt.Errorf("the cluster secret (cluster file's secret_file): %w", err)
	}
	inet, err := devNet(cf)
	if err != nil {
		return t, err
	}
	t.meta = newMetaClient(cf.Meta, secret, inet)
	t.replicas = resolvedTarget{addrs: cf.Meta, secret: secret, inet: inet, cf: &t.cf}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = f.concurrency + 4
	if strings.HasPrefix(t.endpoint, "https://") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.insecure}
		if cf.CACert != "" && !f.insecure {
			pem, err := os.ReadFile(cf.CACert)
			if err != nil {
				return t, fmt.Errorf("the cluster's CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return t, fmt.Errorf("no certificate in %s", cf.CACert)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	t.s3 = s3.New(s3.Options{
		Region:                     "us-east-1",
		Credentials:                awscreds.NewStaticCredentialsProvider(access, skey, ""),
		BaseEndpoint:               aws.String(t.endpoint),
		UsePathStyle:               true,
		HTTPClient:                 &http.Client{Transport: tr},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return t, nil
}

// chaosObject is one object of the verification set.
type chaosObject struct {
	key       string
	size      int64
	multipart bool
	sum       [32]byte
}

// chaosPlanObjects draws the verification set's sizes from seed: mostly
// small (0 B – 64 KiB, a tenth under 1 KiB, zero included), a third up to
// maxSize, and multipart objects of 5 MiB plus up to maxSize.
func chaosPlanObjects(seed uint64, n, multipart int, maxSize int64) []chaosObject {
	rng := drill.RNG(seed, 0)
	out := make([]chaosObject, n)
	for i := range n {
		var size int64
		switch {
		case i < multipart:
			size = 5<<20 + 1 + rng.Int64N(maxSize+1)
		case i%10 == 0:
			size = rng.Int64N(min(1024, maxSize) + 1)
		case i%3 == 0:
			size = rng.Int64N(maxSize + 1)
		default:
			size = rng.Int64N(min(64<<10, maxSize) + 1)
		}
		out[i] = chaosObject{key: fmt.Sprintf("obj/%05d-%d", i, size), size: size, multipart: i < multipart}
	}
	rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// chaosPayload is object i's bytes: pseudo-random from seed, so nothing
// between client and disk can shortcut them.
func chaosPayload(seed uint64, i int, n int64) []byte {
	var key [32]byte
	for j := range 4 {
		v := seed ^ (uint64(i)+1)*0x9e3779b97f4a7c15 + uint64(j)
		for b := range 8 {
			key[8*j+b] = byte(v >> (8 * b))
		}
	}
	p := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(p)
	return p
}

// chaosRun is one drill in progress: the shared state of its goroutines.
type chaosRun struct {
	f     chaosFlags
	t     chaosTarget
	start time.Time
	seed  uint64
	exe   string
	procs fs.FS

	mu      sync.Mutex // guards tl, tracker, last, killed, phase, oldLeader
	tl      drill.Timeline
	tracker *drill.Tracker
	last    drill.Sample
	killed  map[string]bool
	phase   string
	// oldLeader is the meta replica this round killed while no other has
	// been seen leading since; "" otherwise.
	oldLeader string

	acked      []chaosObject // written; read only after writes end
	ackedN     atomic.Int64
	putsFailed atomic.Int64
	putErr     atomic.Pointer[string] // the last PUT's error
	// firstKill is set once round 1 has killed; ackedAfterKill counts the
	// PUTs acknowledged after it.
	firstKill      atomic.Bool
	ackedAfterKill atomic.Int64
	reads          atomic.Int64
	wrongKeys      sync.Map // key → true: read back with other bytes
}

func (r *chaosRun) since() time.Duration { return time.Since(r.start) }

func (r *chaosRun) event(e drill.Event) {
	e.At = r.since()
	r.mu.Lock()
	r.tl.Add(e)
	r.mu.Unlock()
}

func (r *chaosRun) setPhase(p string) {
	r.mu.Lock()
	r.phase = p
	r.mu.Unlock()
}

func runChaos(cmd *cobra.Command, f chaosFlags) error {
	maxSize, err := cluster.ParseBytes(f.maxSize)
	if err != nil || maxSize < 0 {
		return fmt.Errorf("chaos: --max-size %q: want bytes such as 4MiB", f.maxSize)
	}
	if f.objects < 1 || f.multipart < 0 || f.multipart > f.objects || f.concurrency < 1 || f.timeout <= 0 || f.sampleInterval <= 0 {
		return errors.New("chaos: --objects ≥ 1, 0 ≤ --multipart ≤ --objects, --concurrency ≥ 1, --timeout and --sample > 0")
	}
	t, err := resolveChaos(f)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	seed := f.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	exe, _ := os.Executable()
	r := &chaosRun{f: f, t: t, start: time.Now(), seed: seed, exe: filepath.Base(exe), procs: os.DirFS("/proc"), killed: map[string]bool{}}
	r.tracker = drill.NewTracker(t.cf.M, &r.tl)
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "shale chaos: seed %d (--seed %d replays the choices)\n", seed, seed)

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The whole drill ends by deadline; kills, reads and waits stop by
	// waitEnd, leaving the rest for the final read-back and the cleanup.
	deadline := r.start.Add(f.timeout)
	waitEnd := deadline.Add(-min(f.timeout/4, time.Minute))
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	wctx, wcancel := context.WithDeadline(dctx, waitEnd)
	defer wcancel()

	// The cluster as it is now; the plan is checked against its live nodes.
	st, err := r.status(wctx)
	if err != nil {
		return fmt.Errorf("chaos: meta status: %w", err)
	}
	r.event(drill.Event{Kind: drill.KindStart, Detail: fmt.Sprintf("%d+%d, %d nodes; plan: %s, %d round(s), seed %d", t.cf.K, t.cf.M, len(t.cf.Nodes), chaosPlanText(f), f.rounds, seed)})
	r.observe(st)
	plan := drill.Plan{K: t.cf.K, M: t.cf.M, Nodes: r.candidates(), KillNodes: f.killNodes, KillZone: f.killZone,
		KillMetaLeader: f.killMeta, Rounds: f.rounds, Force: f.force, Metas: r.metaCandidates()}
	if err := plan.Check(); err != nil {
		return fmt.Errorf("chaos: refused: %w", err)
	}
	zones := map[string]bool{}
	for _, n := range t.cf.Nodes {
		zones[n.Zone] = true
	}

	bucket := f.bucket
	if bucket == "" {
		bucket = fmt.Sprintf("shale-chaos-%x-%x", seed&0xffffff, time.Now().Unix())
	}
	if _, err := t.s3.CreateBucket(wctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("chaos: create bucket %s: %w", bucket, err)
	}
	report := drill.Report{Seed: seed, K: t.cf.K, M: t.cf.M, Nodes: len(t.cf.Nodes), Zones: len(zones), Bucket: bucket, Kept: f.keep}

	// Sampler and progress line run until the drill is over.
	bg, bgStop := context.WithCancel(dctx)
	var bgWG sync.WaitGroup
	bgWG.Add(1)
	go func() { defer bgWG.Done(); r.sample(bg) }()
	tty := !f.quiet && isTerminal(stderr)
	if tty {
		bgWG.Add(1)
		go func() { defer bgWG.Done(); r.progress(bg, stderr) }()
	}

	objs := chaosPlanObjects(seed, f.objects, f.multipart, maxSize)
	var planned int64
	for _, o := range objs {
		planned += o.size
	}
	r.event(drill.Event{Kind: drill.KindWrite, Detail: fmt.Sprintf("writing %d objects (%s, %d multipart) into bucket %s, %d at a time",
		len(objs), drill.HumanBytes(planned), f.multipart, bucket, f.concurrency)})

	// Round 1's kill lands while the writes go on: once a third of them
	// are acknowledged.
	third := make(chan struct{})
	var writeWG sync.WaitGroup
	writeWG.Add(1)
	go func() { defer writeWG.Done(); r.write(wctx, bucket, objs, third) }()
	select {
	case <-third:
	case <-wctx.Done():
	}

	counts := drill.Counts{RepairFinished: true}
	for round := 1; round <= f.rounds; round++ {
		if wctx.Err() != nil {
			counts.RepairFinished, counts.Unfinished = false, fmt.Sprintf("round %d never started: time ran out", round)
			break
		}
		if err := r.kill(wctx, round); err != nil {
			r.event(drill.Event{Round: round, Kind: drill.KindNote, Detail: "round stopped: " + err.Error()})
			counts.RepairFinished, counts.Unfinished = false, fmt.Sprintf("round %d: %v", round, err)
			break
		}
		if round == 1 {
			writeWG.Wait()
		}
		r.setPhase(fmt.Sprintf("round %d: degraded read-back", round))
		ok, failed, wrong := r.readAll(wctx, bucket, 3)
		counts.Failed += failed
		r.event(drill.Event{Round: round, Kind: drill.KindRead, Detail: fmt.Sprintf("degraded read-back of %d objects: %d ok, %d failed after retries, %d wrong", len(r.acked), ok, failed, wrong)})
		r.setPhase(fmt.Sprintf("round %d: waiting for repair", round))
		if why := r.waitRepaired(wctx); why != "" {
			counts.RepairFinished, counts.Unfinished = false, fmt.Sprintf("round %d: %s", round, why)
			r.event(drill.Event{Round: round, Kind: drill.KindTimeout, Detail: "repair did not finish within --timeout " + f.timeout.String() + ": " + why})
			break
		}
	}
	wcancel()
	writeWG.Wait() // when time ran out before the first kill

	// Final read-back: every acknowledged object, whole and right.
	r.setPhase("final read-back")
	ok, lost, wrong := r.readAll(dctx, bucket, 3)
	if dctx.Err() != nil {
		// Reads the deadline cut are not losses; they were not verified.
		counts.Failed += lost
		lost = 0
		r.event(drill.Event{Kind: drill.KindNote, Detail: "the final read-back was cut by --timeout: unverified reads count as failed, not lost"})
	}
	r.event(drill.Event{Kind: drill.KindRead, Detail: fmt.Sprintf("final read-back of %d objects: %d ok, %d unreadable, %d wrong", len(r.acked), ok, lost, wrong)})
	counts.Objects, counts.Lost, counts.PutsFailed, counts.Reads = len(r.acked), lost, int(r.putsFailed.Load()), int(r.reads.Load())
	for _, o := range r.acked {
		report.Bytes += o.size
	}
	r.wrongKeys.Range(func(_, _ any) bool { counts.Wrong++; return true })

	// The cluster's story ends here; the cleanup's deletes are not part of it.
	bgStop()
	bgWG.Wait()
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if !f.keep {
		if err := r.cleanup(dctx, bucket); err != nil {
			report.Kept = true
			r.event(drill.Event{Kind: drill.KindNote, Detail: "cleanup: " + err.Error()})
		}
	}

	r.mu.Lock()
	report.Events = r.tl.Events()
	report.Rounds = r.tracker.Rounds()
	r.mu.Unlock()
	report.Verdict = drill.Decide(counts)
	report.Elapsed = r.since().Seconds()
	out := cmd.OutOrStdout()
	if f.asJSON {
		err = printJSON(out, report)
	} else {
		err = report.WriteText(out)
	}
	if err != nil {
		return err
	}
	if report.Verdict.Exit != drill.ExitPass {
		return &exitError{code: report.Verdict.Exit, msg: "chaos: " + report.Verdict.Summary}
	}
	return nil
}

func chaosPlanText(f chaosFlags) string {
	var parts []string
	if f.killNodes > 0 {
		parts = append(parts, fmt.Sprintf("kill %d node(s)", f.killNodes))
	}
	if f.killZone {
		parts = append(parts, "kill a zone")
	}
	if f.killMeta {
		parts = append(parts, "kill the meta leader")
	}
	return strings.Join(parts, " and ")
}

// status asks meta for its status, bounded.
func (r *chaosRun) status(ctx context.Context) (meta.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return r.t.meta.Status(ctx)
}

// observe feeds a status to the tracker.
func (r *chaosRun) observe(st meta.Status) {
	s := drill.Sample{At: r.since(), Nodes: map[string]string{}, Spare: st.ObjectsBySpareShards, Objects: st.Objects, RepairQueue: st.RepairQueue}
	for _, n := range st.Nodes {
		s.Nodes[string(n.ID)] = n.State.String()
	}
	if st.Repair != nil {
		s.BytesRepaired, s.ShardsRepaired = st.Repair.BytesRepaired, st.Repair.ShardsRepaired
	}
	r.mu.Lock()
	r.tracker.Observe(s)
	r.last = s
	r.mu.Unlock()
}

// sample reads meta's status every interval until ctx ends.
func (r *chaosRun) sample(ctx context.Context) {
	tick := time.NewTicker(r.f.sampleInterval)
	defer tick.Stop()
	for {
		if st, err := r.status(ctx); err == nil {
			r.observe(st)
		}
		r.watchLeader(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watchLeader asks the meta replicas, while a killed leader has no
// successor seen yet, whether another one leads now.
func (r *chaosRun) watchLeader(ctx context.Context) {
	r.mu.Lock()
	old := r.oldLeader
	r.mu.Unlock()
	if old == "" {
		return
	}
	for _, row := range replicaRows(ctx, r.t.replicas, 2*time.Second) {
		if row.State == "leader" && row.ID != old {
			r.mu.Lock()
			r.oldLeader = ""
			round := len(r.tracker.Rounds())
			r.mu.Unlock()
			r.event(drill.Event{Round: round, Kind: drill.KindLeader, Target: row.ID, Detail: fmt.Sprintf("meta %s leads (term %d) after %s was killed", row.ID, row.Term, old)})
			return
		}
	}
}

// progress redraws one status line on a terminal until ctx ends.
func (r *chaosRun) progress(ctx context.Context, w io.Writer) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		line := fmt.Sprintf("t+%.0fs %s | written %d, PUTs failed %d, reads %d | objects by spare shards %s, repair queue %d",
			r.since().Seconds(), r.phase, r.ackedN.Load(), r.putsFailed.Load(), r.reads.Load(), drill.FormatSpare(r.last.Spare, r.t.cf.M), r.last.RepairQueue)
		if w := r.tracker.Waiting(); w != "" {
			line += " | " + w
		}
		r.mu.Unlock()
		fmt.Fprint(w, "\r\033[K"+line)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// candidates are the cluster's nodes, Alive when their pid is still this
// cluster's shale process, meta shows them up, and the drill has not
// killed them.
func (r *chaosRun) candidates() []drill.Candidate {
	r.mu.Lock()
	states := r.last.Nodes
	killed := r.killed
	var out []drill.Candidate
	for _, n := range r.t.cf.Nodes {
		c := drill.Candidate{ID: n.ID, Zone: n.Zone, PID: n.PID, Marker: n.Data}
		c.Alive = !killed[n.ID] && states[n.ID] == "up" && drill.IsClusterProcess(r.procs, n.PID, n.Data, r.exe)
		out = append(out, c)
	}
	r.mu.Unlock()
	return out
}

// metaCandidates are the cluster's meta replicas, Alive when their pid is
// still this cluster's shale process.
func (r *chaosRun) metaCandidates() []drill.Candidate {
	var out []drill.Candidate
	for _, m := range r.t.cf.Metas {
		out = append(out, drill.Candidate{ID: m.ID, Zone: m.Zone, PID: m.PID, Marker: m.Data,
			Alive: drill.IsClusterProcess(r.procs, m.PID, m.Data, r.exe)})
	}
	return out
}

// write PUTs the verification set, concurrency at a time, and closes third
// once a third of it is acknowledged (or every write ended).
func (r *chaosRun) write(ctx context.Context, bucket string, objs []chaosObject, third chan<- struct{}) {
	r.setPhase("round 1: writing")
	var once sync.Once
	reached := func() { once.Do(func() { close(third) }) }
	defer reached()
	threshold := int64(max(1, len(objs)/3))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.f.concurrency)
	for i, o := range objs {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			p := chaosPayload(r.seed, i, o.size)
			o.sum = sha256.Sum256(p)
			if err := r.put(gctx, bucket, o, p); err != nil {
				r.putsFailed.Add(1)
				msg := fmt.Sprintf("%s: %v", o.key, err)
				r.putErr.Store(&msg)
				return nil
			}
			if r.firstKill.Load() {
				r.ackedAfterKill.Add(1)
			}
			mu.Lock()
			r.acked = append(r.acked, o)
			mu.Unlock()
			if r.ackedN.Add(1) >= threshold {
				reached()
			}
			return nil
		})
	}
	_ = g.Wait()
	detail := fmt.Sprintf("writes done: %d acknowledged (%d after the first kill), %d not (left out of the set)", r.ackedN.Load(), r.ackedAfterKill.Load(), r.putsFailed.Load())
	if e := r.putErr.Load(); e != nil {
		detail += "; last PUT error: " + *e
	}
	r.event(drill.Event{Round: 1, Kind: drill.KindWrite, Detail: detail})
}

// put writes one object, with the SDK's retries.
func (r *chaosRun) put(ctx context.Context, bucket string, o chaosObject, p []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !o.multipart {
		_, err := r.t.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &o.key, Body: bytes.NewReader(p), ContentLength: aws.Int64(o.size)})
		return err
	}
	up, err := r.t.s3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &o.key})
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	for n, part := range [][]byte{p[:5<<20], p[5<<20:]} {
		num := int32(n + 1)
		res, err := r.t.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &o.key, UploadId: up.UploadId, PartNumber: &num,
			Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part)))})
		if err != nil {
			_, _ = r.t.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &o.key, UploadId: up.UploadId})
			return err
		}
		parts = append(parts, types.CompletedPart{ETag: res.ETag, PartNumber: &num})
	}
	_, err = r.t.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &o.key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

// readAll reads every acknowledged object back, each up to attempts times
// (a second apart), and counts those that read whole, those that still
// failed, and those whose bytes were wrong (recorded in wrongKeys).
func (r *chaosRun) readAll(ctx context.Context, bucket string, attempts int) (ok, failed, wrong int) {
	var mu sync.Mutex
	g := new(errgroup.Group)
	g.SetLimit(r.f.concurrency)
	for _, o := range r.acked {
		g.Go(func() error {
			var err error
			bad := false
			for a := range attempts {
				if a > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
				}
				if ctx.Err() != nil {
					err = ctx.Err()
					break
				}
				bad, err = r.get(ctx, bucket, o)
				if err == nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failed++
			case bad:
				wrong++
				r.wrongKeys.Store(o.key, true)
			default:
				ok++
			}
			return nil
		})
	}
	_ = g.Wait()
	return ok, failed, wrong
}

// get reads one object and compares it with its checksum.
func (r *chaosRun) get(ctx context.Context, bucket string, o chaosObject) (wrong bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r.reads.Add(1)
	res, err := r.t.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &o.key})
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	if err != nil {
		return false, err
	}
	return n != o.size || !bytes.Equal(h.Sum(nil), o.sum[:]), nil
}

// kill runs round's kills: victims chosen with the round's seeded source
// among live nodes, then the meta leader if asked; every pid is checked to
// be this cluster's shale process right before its SIGKILL.
func (r *chaosRun) kill(ctx context.Context, round int) error {
	rng := drill.RNG(r.seed, round)
	var victims []drill.Candidate
	var zone string
	var err error
	switch {
	case r.f.killZone:
		zone, victims, err = drill.ChooseZone(rng, r.candidates())
	case r.f.killNodes > 0:
		victims, err = drill.ChooseNodes(rng, r.candidates(), r.f.killNodes)
	}
	if err != nil {
		return err
	}
	for _, v := range victims {
		if !drill.IsClusterProcess(r.procs, v.PID, v.Marker, r.exe) {
			return fmt.Errorf("%s: pid %d is no longer this cluster's shale process; not killing it", v.ID, v.PID)
		}
	}
	leader := ""
	var leaderPID int
	var leaderMarker string
	if r.f.killMeta {
		rows := replicaRows(ctx, r.t.replicas, 3*time.Second)
		for _, row := range rows {
			if row.State == "leader" {
				leader, leaderPID = row.ID, row.PID
			}
		}
		for _, m := range r.t.cf.Metas {
			if m.ID == leader {
				leaderMarker = m.Data
			}
		}
		if leader == "" || !drill.IsClusterProcess(r.procs, leaderPID, leaderMarker, r.exe) {
			return fmt.Errorf("no meta leader to kill: found %q (pid %d) among %d replicas", leader, leaderPID, len(rows))
		}
	}
	at := r.since()
	for _, v := range victims {
		if err := syscall.Kill(v.PID, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill %s (pid %d): %w", v.ID, v.PID, err)
		}
	}
	r.mu.Lock()
	for _, v := range victims {
		r.killed[v.ID] = true
	}
	r.tracker.Killed(at, victims, zone, leader)
	r.oldLeader = leader
	r.mu.Unlock()
	r.firstKill.Store(true)
	if leader != "" {
		if err := syscall.Kill(leaderPID, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill meta %s (pid %d): %w", leader, leaderPID, err)
		}
		r.event(drill.Event{Round: round, Kind: drill.KindKill, Target: leader, PID: leaderPID, Detail: "SIGKILL meta leader " + leader})
	}
	return nil
}

// waitRepaired waits until the tracker sees the round repaired and, when
// the round killed the meta leader, another replica was seen leading; it
// returns what it still waited for when ctx ended, "" once done.
func (r *chaosRun) waitRepaired(ctx context.Context) string {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		done, why, old := r.tracker.Repaired(), r.tracker.Waiting(), r.oldLeader
		r.mu.Unlock()
		if done && old == "" {
			return ""
		}
		if old != "" {
			why = strings.TrimPrefix(why+"; ", "; ") + "no meta replica seen leading since " + old + " was killed"
		}
		select {
		case <-ctx.Done():
			return why
		case <-tick.C:
		}
	}
}

// cleanup deletes every object of the bucket (and unfinished uploads),
// then the bucket.
func (r *chaosRun) cleanup(ctx context.Context, bucket string) error {
	ups, err := r.t.s3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err == nil {
		for _, u := range ups.Uploads {
			_, _ = r.t.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	g := new(errgroup.Group)
	g.SetLimit(r.f.concurrency)
	var failed atomic.Int64
	p := s3.NewListObjectsV2Paginator(r.t.s3, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			_ = g.Wait()
			return fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			g.Go(func() error {
				if _, err := r.t.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
					failed.Add(1)
				}
				return nil
			})
		}
	}
	_ = g.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d objects of %s not deleted; bucket kept", n, bucket)
	}
	if _, err := r.t.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return nil
}
