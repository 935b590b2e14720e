package bench

// The S3 load benchmark (S3): a fixed number of workers issue S3 requests
// back to back against one endpoint for a bounded time and count, through
// the real aws-sdk-go-v2 S3 client, and the run is summed up as throughput,
// request rate, latency percentiles and errors by kind.
//
// Nouns:
//   - an op is one request of the workload: a PutObject of Size bytes to a
//     new key, or a GetObject of a pre-uploaded key whose body is read to
//     its end (its latency is time to last byte);
//   - a worker is one goroutine issuing ops one after the other, so at most
//     Concurrency ops are in flight; the HTTP transport keeps an idle
//     connection for every worker;
//   - the run is the timed phase; before it, prepare uploads the Keys
//     objects that get and mixed read, and after it, cleanup deletes every
//     key the benchmark wrote (and the bucket, if the benchmark created it);
//   - an error kind names why an op failed: the S3 error code ("SlowDown",
//     "NoSuchKey", …), "http_<status>" when the answer had no code,
//     "timeout", "conn_refused", "conn_reset", "tls", "eof", "net", "short_read"
//     (a GET body shorter than Size) or "other".
//
// Invariants: ops = successful ops; Bytes = bytes moved by successful ops
// (Size per PUT, the bytes read per GET); a failed op adds to the errors and
// to nothing else; latencies are of successful ops only. Ops are not retried
// during the run (a SlowDown is an error, not a hidden retry); prepare and
// cleanup retry as the SDK does by default. No op starts after Duration has
// passed or Count ops have started, and ops in flight then are allowed to
// finish (bounded by OpTimeout), so the elapsed time is that of the last op's
// end and no op is cut short by the clock. The payload is one random buffer
// made once; every PUT reads it through its own bytes.Reader.
//
// What it does not do: it does not verify GET contents beyond their length,
// does not exercise multipart uploads, listing or deletes in the timed run,
// and does not judge the numbers.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Workloads of the S3 benchmark (S3Config.Op).
const (
	S3OpPut   = "put"   // PutObject of Size bytes to a new key each time
	S3OpGet   = "get"   // GetObject of one of Keys pre-uploaded objects, chosen at random
	S3OpMixed = "mixed" // GetPercent % get, the rest put
)

// Request checksum settings (S3Config.Checksum).
const (
	// S3ChecksumWhenSupported is the SDK's default: a CRC32 of every PUT
	// body is computed and sent, and GETs ask for the stored checksum and
	// validate it when the server returns one. It costs client CPU.
	S3ChecksumWhenSupported = "when_supported"
	// S3ChecksumWhenRequired computes and validates checksums only where
	// the operation requires them (neither PutObject nor GetObject does),
	// as aws.RequestChecksumCalculationWhenRequired and
	// aws.ResponseChecksumValidationWhenRequired.
	S3ChecksumWhenRequired = "when_required"
)

// Phases reported to S3Config.Progress.
const (
	S3PhasePrepare = "prepare" // uploading the objects get and mixed read
	S3PhaseRun     = "run"     // the timed run
	S3PhaseCleanup = "cleanup" // deleting what the benchmark wrote
)

// ErrS3Config: an S3Config field is missing or out of range.
var ErrS3Config = errors.New("bench: invalid s3 config")

// ErrShortRead: a GET body ended before Size bytes (error kind "short_read").
var ErrShortRead = errors.New("bench: short read")

// S3Config says what S3 runs. Zero fields take the defaults.
type S3Config struct {
	// Endpoint is the S3 base URL, e.g. "http://127.0.0.1:9000". Required.
	// Requests are path-style (http://host:port/bucket/key).
	Endpoint string
	// AccessKey and SecretKey sign the requests (SigV4). Required.
	AccessKey, SecretKey string
	// Region of the SigV4 credential scope. Default "us-east-1".
	Region string
	// Bucket to use; created if missing (and then deleted by cleanup).
	// Default "shale-bench".
	Bucket string
	// Op is the workload: S3OpPut, S3OpGet or S3OpMixed. Default S3OpPut.
	Op string
	// Size of every object in bytes, at most 5 GiB (one PutObject); the
	// payload buffer of this size is held in memory. Default 1 MiB.
	Size int64
	// Concurrency is the number of workers (ops in flight). Default 8.
	Concurrency int
	// Duration bounds the run: no op starts after it. Default 10 s.
	Duration time.Duration
	// Count, if positive, bounds the run to that many ops started
	// (successful or not). Default 0: bounded by Duration alone.
	Count int64
	// Keys is the number of distinct objects get and mixed read, uploaded
	// before the run. Ignored for put. Default 32.
	Keys int
	// GetPercent is the share of gets in mixed, 1–100. Default 50.
	GetPercent int
	// Prefix of every key the benchmark writes; each run adds its own run
	// id below it, so runs never read or delete each other's keys.
	// Default "shale-bench/".
	Prefix string
	// Insecure skips TLS certificate verification (self-signed endpoints).
	Insecure bool
	// Checksum is S3ChecksumWhenSupported or S3ChecksumWhenRequired.
	// Default S3ChecksumWhenSupported, what current SDKs do out of the box.
	Checksum string
	// UnsignedPayload sends every PUT body as UNSIGNED-PAYLOAD: the SDK
	// does not hash it for the signature and the server does not check
	// it (over http the SDK otherwise signs the payload's SHA-256, which
	// the server then computes too). Default false, the SDK's own choice.
	UnsignedPayload bool
	// OpTimeout bounds one op, request and body; an op past it fails with
	// kind "timeout". Default 1 minute.
	OpTimeout time.Duration
	// Keep leaves the written keys (and a created bucket) in place instead
	// of deleting them after the run.
	Keep bool
	// Seed of the payload bytes and of the workers' key and op choices.
	// Default 1.
	Seed uint64
	// Progress, if set, is called about every ProgressInterval during each
	// phase and once at the end of each phase, always from one goroutine at
	// a time and never after S3 returns.
	Progress func(S3Progress)
	// ProgressInterval between Progress calls. Default 500 ms.
	ProgressInterval time.Duration
}

// S3Progress is a snapshot of the phase under way.
type S3Progress struct {
	// Phase is S3PhasePrepare, S3PhaseRun or S3PhaseCleanup.
	Phase string
	// Elapsed since the phase began.
	Elapsed time.Duration
	// Ops done so far in the phase: successful ops (run), objects uploaded
	// (prepare), keys deleted (cleanup).
	Ops int64
	// Total ops of the phase when known: Keys (prepare), keys to delete
	// (cleanup), Count (run; 0 when bounded by Duration only).
	Total int64
	// Bytes moved so far by successful ops of the phase.
	Bytes int64
	// Errors so far in the phase.
	Errors int64
	// Final is set on the last call of the phase.
	Final bool
}

// MBps is the phase's throughput so far in MB/s (10^6 bytes per second).
func (p S3Progress) MBps() float64 { return s3MBps(p.Bytes, p.Elapsed) }

// S3Stats sums up the ops of one kind (or all ops) of a run.
type S3Stats struct {
	Ops     int64   `json:"ops"`       // successful ops
	Bytes   int64   `json:"bytes"`     // bytes moved by successful ops
	MBps    float64 `json:"mbps"`      // Bytes per second of the run, in MB/s (10^6 bytes/s)
	OpsPerS float64 `json:"ops_per_s"` // successful ops per second of the run
	P50ms   float64 `json:"p50_ms"`    // latency percentiles of successful ops, ms (±1%)
	P90ms   float64 `json:"p90_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"` // exact
	// Errors counts failed ops by kind; empty when none failed.
	Errors map[string]int64 `json:"errors"`
	// ErrorsTotal is the sum of Errors.
	ErrorsTotal int64 `json:"errors_total"`
}

// S3Result is the outcome of a run.
type S3Result struct {
	Op          string  `json:"op"`
	Size        int64   `json:"size"`
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"` // the run's elapsed time: first op's start to last op's end
	S3Stats             // all ops together
	// ByOp holds put and get apart for mixed; nil otherwise.
	ByOp map[string]S3Stats `json:"by_op,omitempty"`
	// Keys read by get and mixed (0 for put).
	Keys            int    `json:"keys,omitempty"`
	Checksum        string `json:"checksum"`
	UnsignedPayload bool   `json:"unsigned_payload"`
	// Cleaned is the number of keys deleted after the run, CleanupErrors
	// the deletes that failed (bucket delete included).
	Cleaned       int64 `json:"cleaned"`
	CleanupErrors int64 `json:"cleanup_errors"`
}

func (cfg S3Config) withDefaults() (S3Config, error) {
	bad := func(format string, a ...any) (S3Config, error) {
		return cfg, fmt.Errorf("%w: "+format, append([]any{ErrS3Config}, a...)...)
	}
	if cfg.Endpoint == "" {
		return bad("endpoint is required")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return bad("access and secret key are required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "shale-bench"
	}
	if cfg.Op == "" {
		cfg.Op = S3OpPut
	}
	if cfg.Op != S3OpPut && cfg.Op != S3OpGet && cfg.Op != S3OpMixed {
		return bad("op %q: want put, get or mixed", cfg.Op)
	}
	if cfg.Size == 0 {
		cfg.Size = 1 << 20
	}
	if cfg.Size < 0 || cfg.Size > 5<<30 {
		return bad("size %d: want 1 byte to 5 GiB", cfg.Size)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 8
	}
	if cfg.Concurrency < 0 || cfg.Concurrency > 10000 {
		return bad("concurrency %d: want 1 to 10000", cfg.Concurrency)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Duration < 0 {
		return bad("duration %v is negative", cfg.Duration)
	}
	if cfg.Count < 0 {
		return bad("count %d is negative", cfg.Count)
	}
	if cfg.Op == S3OpPut {
		cfg.Keys = 0
	} else if cfg.Keys == 0 {
		cfg.Keys = 32
	}
	if cfg.Keys < 0 || cfg.Keys > 10_000_000 {
		return bad("keys %d: want 1 to 10000000", cfg.Keys)
	}
	if cfg.GetPercent == 0 {
		cfg.GetPercent = 50
	}
	if cfg.GetPercent < 0 || cfg.GetPercent > 100 {
		return bad("get percent %d: want 1 to 100", cfg.GetPercent)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "shale-bench/"
	}
	if cfg.Checksum == "" {
		cfg.Checksum = S3ChecksumWhenSupported
	}
	if cfg.Checksum != S3ChecksumWhenSupported && cfg.Checksum != S3ChecksumWhenRequired {
		return bad("checksum %q: want %s or %s", cfg.Checksum, S3ChecksumWhenSupported, S3ChecksumWhenRequired)
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = time.Minute
	}
	if cfg.OpTimeout < 0 {
		return bad("op timeout %v is negative", cfg.OpTimeout)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 500 * time.Millisecond
	}
	return cfg, nil
}

// S3 runs the load benchmark cfg describes: it makes sure the bucket exists,
// uploads the keys get and mixed read, runs the workers until Duration has
// passed or Count ops have started, and deletes what it wrote unless Keep.
//
// When ctx ends during the run, S3 returns what was measured so far with
// an error wrapping ctx.Err(), and skips cleanup. An error before the run
// (config, bucket, prepare) returns a zero S3Result.
func S3(ctx context.Context, cfg S3Config) (S3Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return S3Result{}, err
	}
	b := newS3Bench(cfg)
	defer b.transport.CloseIdleConnections()

	created, err := b.ensureBucket(ctx)
	if err != nil {
		return S3Result{}, err
	}
	if err := b.prepare(ctx); err != nil {
		if !cfg.Keep && ctx.Err() == nil {
			b.cleanup(ctx, created)
		}
		return S3Result{}, err
	}
	res := b.run(ctx)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("s3 bench %s on %s: %w", cfg.Op, cfg.Endpoint, err)
	}
	if !cfg.Keep {
		res.Cleaned, res.CleanupErrors = b.cleanup(ctx, created)
	}
	return res, nil
}

// s3Bench holds what the phases of one S3 call share.
type s3Bench struct {
	cfg       S3Config
	transport *http.Transport
	runClient *s3.Client // no retries: every failure is counted
	setup     *s3.Client // SDK default retries: bucket, prepare, cleanup
	payload   []byte
	runID     string
	// puts[w] is the number of PUTs worker w started: its keys are
	// putKey(w, 0..puts[w]-1). Written by worker w during the run only.
	puts []int64
}

func newS3Bench(cfg S3Config) *s3Bench {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // measure the endpoint, not a proxy from the environment
	tr.MaxIdleConns = cfg.Concurrency + 4
	tr.MaxIdleConnsPerHost = cfg.Concurrency + 4
	tr.DisableCompression = true
	// One HTTP/1.1 connection per worker, as S3 clients use; HTTP/2 would
	// multiplex every worker onto one connection.
	tr.ForceAttemptHTTP2 = false
	var protos http.Protocols
	protos.SetHTTP1(true)
	tr.Protocols = &protos
	if cfg.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	hc := &http.Client{Transport: tr}

	opts := s3.Options{
		Region:                     cfg.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, ""),
		BaseEndpoint:               aws.String(cfg.Endpoint),
		UsePathStyle:               true,
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
		// A server that returns no checksum is not worth a log line per GET.
		DisableLogOutputChecksumValidationSkipped: true,
	}
	if cfg.Checksum == S3ChecksumWhenRequired {
		opts.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		opts.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	if cfg.UnsignedPayload {
		opts.APIOptions = append(opts.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
	setup := s3.New(opts)
	opts.Retryer = aws.NopRetryer{}
	run := s3.New(opts)

	return &s3Bench{
		cfg:       cfg,
		transport: tr,
		runClient: run,
		setup:     setup,
		payload:   s3Payload(cfg.Seed, cfg.Size),
		runID:     strconv.FormatInt(time.Now().UnixNano(), 36),
		puts:      make([]int64, cfg.Concurrency),
	}
}

// s3Payload returns n pseudo-random bytes from seed: incompressible, so no
// layer between client and disk can shortcut them.
func s3Payload(seed uint64, n int64) []byte {
	var key [32]byte
	for i := range 4 {
		v := seed + uint64(i)*0x9e3779b97f4a7c15
		for j := range 8 {
			key[8*i+j] = byte(v >> (8 * j))
		}
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

func (b *s3Bench) getKey(i int) string {
	return b.cfg.Prefix + b.runID + "/get/" + strconv.Itoa(i)
}

func (b *s3Bench) putKey(w int, seq int64) string {
	return b.cfg.Prefix + b.runID + "/put/" + strconv.Itoa(w) + "/" + strconv.FormatInt(seq, 10)
}

// ensureBucket creates the bucket unless it exists, and says whether it
// created it.
func (b *s3Bench) ensureBucket(ctx context.Context) (bool, error) {
	bucket := aws.String(b.cfg.Bucket)
	_, err := b.setup.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket})
	if err == nil {
		return false, nil
	}
	if !s3IsNotFound(err) {
		return false, fmt.Errorf("head bucket %s: %w", b.cfg.Bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: bucket}
	if b.cfg.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(b.cfg.Region),
		}
	}
	_, err = b.setup.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	switch {
	case errors.As(err, &owned): // created meanwhile by someone with our keys
		return false, nil
	case err != nil:
		return false, fmt.Errorf("create bucket %s: %w", b.cfg.Bucket, err)
	}
	return true, nil
}

// s3IsNotFound reports a 404 answer (HeadBucket's has no body, so no code).
func s3IsNotFound(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return true
	}
	var nf *types.NotFound
	var nb *types.NoSuchBucket
	return errors.As(err, &nf) || errors.As(err, &nb)
}

// s3Counters are the progress counters of a phase, shared by its workers.
type s3Counters struct {
	ops, bytes, errors atomic.Int64
}

// track calls Progress every ProgressInterval with c's counters until the
// returned stop is called; stop makes the final call and returns once the
// ticker goroutine has ended.
func (b *s3Bench) track(phase string, total int64, c *s3Counters) (stop func()) {
	start := time.Now()
	snap := func(final bool) S3Progress {
		return S3Progress{Phase: phase, Elapsed: time.Since(start), Ops: c.ops.Load(), Total: total,
			Bytes: c.bytes.Load(), Errors: c.errors.Load(), Final: final}
	}
	if b.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(b.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				b.cfg.Progress(snap(false))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		b.cfg.Progress(snap(true))
	}
}

// prepare uploads the keys that get and mixed read.
func (b *s3Bench) prepare(ctx context.Context) error {
	if b.cfg.Keys == 0 {
		return nil
	}
	var c s3Counters
	stop := b.track(S3PhasePrepare, int64(b.cfg.Keys), &c)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(b.cfg.Concurrency, b.cfg.Keys) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= b.cfg.Keys {
					return
				}
				key := b.getKey(i)
				_, err := b.setup.PutObject(ctx, &s3.PutObjectInput{
					Bucket:        aws.String(b.cfg.Bucket),
					Key:           aws.String(key),
					Body:          bytes.NewReader(b.payload),
					ContentLength: aws.Int64(b.cfg.Size),
				})
				if err != nil {
					c.errors.Add(1)
					errOnce.Do(func() {
						firstErr = fmt.Errorf("prepare: put %s/%s: %w", b.cfg.Bucket, key, err)
						cancel()
					})
					return
				}
				c.ops.Add(1)
				c.bytes.Add(b.cfg.Size)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// s3WorkerStats is what one worker measured; merged after the run.
type s3WorkerStats struct {
	lat    [2]s3Hist // by s3OpIndex
	bytes  [2]int64
	errors [2]map[string]int64
}

const (
	s3IdxPut = 0
	s3IdxGet = 1
)

var s3OpNames = [2]string{S3OpPut, S3OpGet}

// run is the timed phase.
func (b *s3Bench) run(ctx context.Context) S3Result {
	cfg := b.cfg
	var (
		c       s3Counters
		started atomic.Int64
		wg      sync.WaitGroup
	)
	stats := make([]s3WorkerStats, cfg.Concurrency)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	stop := b.track(S3PhaseRun, cfg.Count, &c)
	// claim reserves the next op, or says the run is over.
	claim := func() bool {
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return false
		}
		return cfg.Count == 0 || started.Add(1) <= cfg.Count
	}
	for w := range cfg.Concurrency {
		st := &stats[w]
		st.errors = [2]map[string]int64{{}, {}}
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
		wg.Go(func() {
			for claim() {
				op := s3IdxPut
				switch cfg.Op {
				case S3OpGet:
					op = s3IdxGet
				case S3OpMixed:
					if rng.IntN(100) < cfg.GetPercent {
						op = s3IdxGet
					}
				}
				t0 := time.Now()
				n, err := b.do(ctx, op, w, rng)
				lat := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						return // cut short by the caller, not failed by the store
					}
					st.errors[op][s3ErrorKind(err)]++
					c.errors.Add(1)
					continue
				}
				st.lat[op].record(lat)
				st.bytes[op] += n
				c.ops.Add(1)
				c.bytes.Add(n)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()

	res := S3Result{Op: cfg.Op, Size: cfg.Size, Concurrency: cfg.Concurrency, DurationS: elapsed.Seconds(),
		Keys: cfg.Keys, Checksum: cfg.Checksum, UnsignedPayload: cfg.UnsignedPayload}
	var all s3Hist
	allErr := map[string]int64{}
	var allBytes int64
	for op := range 2 {
		var h s3Hist
		errs := map[string]int64{}
		var nb int64
		for w := range stats {
			h.merge(&stats[w].lat[op])
			nb += stats[w].bytes[op]
			for k, v := range stats[w].errors[op] {
				errs[k] += v
				allErr[k] += v
			}
		}
		all.merge(&h)
		allBytes += nb
		if cfg.Op == S3OpMixed {
			if res.ByOp == nil {
				res.ByOp = map[string]S3Stats{}
			}
			res.ByOp[s3OpNames[op]] = h.stats(nb, errs, elapsed)
		}
	}
	res.S3Stats = all.stats(allBytes, allErr, elapsed)
	return res
}

// do runs one op of worker w and returns the bytes it moved.
func (b *s3Bench) do(ctx context.Context, op, w int, rng *rand.Rand) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	bucket := aws.String(b.cfg.Bucket)
	if op == s3IdxPut {
		seq := b.puts[w]
		b.puts[w]++
		key := b.putKey(w, seq)
		_, err := b.runClient.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        bucket,
			Key:           aws.String(key),
			Body:          bytes.NewReader(b.payload),
			ContentLength: aws.Int64(b.cfg.Size),
		})
		if err != nil {
			return 0, fmt.Errorf("put %s: %w", key, err)
		}
		return b.cfg.Size, nil
	}
	key := b.getKey(rng.IntN(b.cfg.Keys))
	out, err := b.runClient.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	n, err := io.Copy(io.Discard, out.Body)
	out.Body.Close()
	if err != nil {
		return n, fmt.Errorf("get %s: body after %d bytes: %w", key, n, err)
	}
	if n != b.cfg.Size {
		return n, fmt.Errorf("get %s: %w: %d of %d bytes", key, ErrShortRead, n, b.cfg.Size)
	}
	return n, nil
}

// cleanup deletes every key the benchmark wrote, then the bucket if it
// created it, and returns how many keys it deleted and how many deletes
// failed. It stops early when ctx ends.
func (b *s3Bench) cleanup(ctx context.Context, deleteBucket bool) (deleted, failed int64) {
	total := int64(b.cfg.Keys)
	for _, n := range b.puts {
		total += n
	}
	var c s3Counters
	stop := b.track(S3PhaseCleanup, total, &c)
	keys := make(chan string)
	var wg sync.WaitGroup
	for range b.cfg.Concurrency {
		wg.Go(func() {
			for key := range keys {
				_, err := b.setup.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(key)})
				if err != nil {
					c.errors.Add(1)
					continue
				}
				c.ops.Add(1)
			}
		})
	}
	send := func(key string) bool {
		select {
		case keys <- key:
			return true
		case <-ctx.Done():
			return false
		}
	}
	func() {
		for i := range b.cfg.Keys {
			if !send(b.getKey(i)) {
				return
			}
		}
		for w, n := range b.puts {
			for seq := range n {
				if !send(b.putKey(w, seq)) {
					return
				}
			}
		}
	}()
	close(keys)
	wg.Wait()
	if deleteBucket && ctx.Err() == nil && c.errors.Load() == 0 {
		if _, err := b.setup.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b.cfg.Bucket)}); err != nil {
			c.errors.Add(1)
		}
	}
	stop()
	return c.ops.Load(), c.errors.Load()
}

// s3ErrorKind names why an op failed (see the nouns at the top of this file).
func s3ErrorKind(err error) string {
	var (
		api smithy.APIError
		re  *awshttp.ResponseError
		ne  net.Error
		tv  *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrShortRead):
		return "short_read"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "conn_reset"
	case errors.As(err, &tv):
		return "tls"
	case errors.As(err, &api) && api.ErrorCode() != "":
		return api.ErrorCode()
	case errors.As(err, &re) && re.HTTPStatusCode() != 0: // 0: no answer
		return "http_" + strconv.Itoa(re.HTTPStatusCode())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "eof"
	case errors.As(err, &ne):
		if ne.Timeout() {
			return "timeout"
		}
		return "net"
	}
	return "other"
}

func s3MBps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds() / 1e6
}

// s3Hist counts latencies in log-linear buckets: values under 2^s3HistSub
// nanoseconds each have their own bucket; above, every power-of-two range
// is cut into 2^(s3HistSub-1) equal buckets, so a bucket's width is at most
// 1/64 of its lower bound and its midpoint is within 0.8% of any value in
// it. It needs no allocation per sample and merges by adding counts.
type s3Hist struct {
	counts   [s3HistBuckets]int64
	n        int64
	min, max time.Duration
}

const (
	s3HistSub     = 7
	s3HistHalf    = 1 << (s3HistSub - 1)
	s3HistBuckets = 1<<s3HistSub + (64-s3HistSub)*s3HistHalf
)

// s3HistIndex is the bucket of v ≥ 0.
func s3HistIndex(v uint64) int {
	if v < 1<<s3HistSub {
		return int(v)
	}
	shift := bits.Len64(v) - s3HistSub // ≥ 1
	sub := int(v >> shift)             // in [s3HistHalf, 2·s3HistHalf)
	return 1<<s3HistSub + (shift-1)*s3HistHalf + sub - s3HistHalf
}

// s3HistBounds is bucket i's range [lo, lo+width).
func s3HistBounds(i int) (lo, width uint64) {
	if i < 1<<s3HistSub {
		return uint64(i), 1
	}
	j := i - 1<<s3HistSub
	shift := uint(j/s3HistHalf + 1)
	sub := uint64(j%s3HistHalf + s3HistHalf)
	return sub << shift, 1 << shift
}

func (h *s3Hist) record(d time.Duration) {
	d = max(d, 0)
	h.counts[s3HistIndex(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
}

func (h *s3Hist) merge(o *s3Hist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1) of the recorded latencies:
// the midpoint of the bucket holding the ⌈q·n⌉-th smallest, kept within
// [min, max]; 0 when nothing was recorded.
func (h *s3Hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := s3HistBounds(i)
			v := time.Duration(lo + (w-1)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

func (h *s3Hist) stats(nbytes int64, errs map[string]int64, elapsed time.Duration) S3Stats {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	s := S3Stats{
		Ops:    h.n,
		Bytes:  nbytes,
		MBps:   s3MBps(nbytes, elapsed),
		P50ms:  ms(h.quantile(0.50)),
		P90ms:  ms(h.quantile(0.90)),
		P99ms:  ms(h.quantile(0.99)),
		MaxMs:  ms(h.max),
		Errors: errs,
	}
	if elapsed > 0 {
		s.OpsPerS = float64(h.n) / elapsed.Seconds()
	}
	for _, v := range errs {
		s.ErrorsTotal += v
	}
	return s
}

// WriteS3Table prints a run as a table: one row for all ops and, for
// mixed, one per op kind, then the errors by kind when there were any.
func WriteS3Table(w io.Writer, r S3Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tsize\tconc\tsecs\tops\tMB/s\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\t")
	row := func(op string, s S3Stats) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%d\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", op, FormatBytes(r.Size),
			r.Concurrency, r.DurationS, s.Ops, s.MBps, s.OpsPerS, s.P50ms, s.P90ms, s.P99ms, s.MaxMs, s.ErrorsTotal)
	}
	row(r.Op, r.S3Stats)
	for _, op := range []string{S3OpGet, S3OpPut} {
		if s, ok := r.ByOp[op]; ok {
			row("  "+op, s)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			if r.Errors[kinds[i]] != r.Errors[kinds[j]] {
				return r.Errors[kinds[i]] > r.Errors[kinds[j]]
			}
			return kinds[i] < kinds[j]
		})
		fmt.Fprint(w, "errors:")
		for _, k := range kinds {
			fmt.Fprintf(w, " %s %d", k, r.Errors[k])
		}
		fmt.Fprintln(w)
	}
	if r.CleanupErrors > 0 {
		fmt.Fprintf(w, "cleanup: %d keys deleted, %d deletes failed\n", r.Cleaned, r.CleanupErrors)
	}
	return nil
}
