package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeS3 is just enough of S3 for the benchmark: path-style bucket create,
// head and delete, object put, get and delete. It checks no signature. It
// keeps object sizes, not contents, and counts what it served.
type fakeS3 struct {
	mu      sync.Mutex
	buckets map[string]bool
	objects map[string]int64 // "bucket/key" → size

	puts, gets, deletes, putBytes atomic.Int64
	chunked                       atomic.Int64 // PUTs with an aws-chunked body
	unsigned                      atomic.Int64 // PUTs whose payload hash is UNSIGNED-PAYLOAD

	// fail, if set, answers a request with the S3 error it names, if any
	// ("SlowDown": 503, "AccessDenied": 403).
	fail func(r *http.Request) string
	// getBody, if set, replaces the GET body length.
	getBody func(size int64) int64
	// block, if set, holds every GET until the request's context ends.
	block bool
}

func newFakeS3() *fakeS3 {
	return &fakeS3{buckets: map[string]bool{}, objects: map[string]int64{}}
}

func (f *fakeS3) s3Error(w http.ResponseWriter, r *http.Request, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>1</RequestId></Error>`, code, code)
	}
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if code := ""; f.fail != nil {
		if code = f.fail(r); code != "" {
			io.Copy(io.Discard, r.Body)
			status := http.StatusServiceUnavailable
			if code == "AccessDenied" {
				status = http.StatusForbidden
			}
			f.s3Error(w, r, status, code)
			return
		}
	}
	f.mu.Lock()
	exists := f.buckets[bucket]
	f.mu.Unlock()
	if key == "" {
		switch r.Method {
		case http.MethodHead:
			if !exists {
				f.s3Error(w, r, http.StatusNotFound, "NotFound")
			}
		case http.MethodPut:
			if exists {
				f.s3Error(w, r, http.StatusConflict, "BucketAlreadyOwnedByYou")
				return
			}
			f.mu.Lock()
			f.buckets[bucket] = true
			f.mu.Unlock()
		case http.MethodDelete:
			f.mu.Lock()
			defer f.mu.Unlock()
			for k := range f.objects {
				if strings.HasPrefix(k, bucket+"/") {
					f.s3Error(w, r, http.StatusConflict, "BucketNotEmpty")
					return
				}
			}
			delete(f.buckets, bucket)
			w.WriteHeader(http.StatusNoContent)
		default:
			f.s3Error(w, r, http.StatusNotImplemented, "NotImplemented")
		}
		return
	}
	if !exists {
		f.s3Error(w, r, http.StatusNotFound, "NoSuchBucket")
		return
	}
	name := bucket + "/" + key
	switch r.Method {
	case http.MethodPut:
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			f.chunked.Add(1)
		}
		if r.Header.Get("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD" {
			f.unsigned.Add(1)
		}
		n, err := readS3Body(r)
		if err != nil {
			f.s3Error(w, r, http.StatusBadRequest, "IncompleteBody")
			return
		}
		if want := r.Header.Get("X-Amz-Decoded-Content-Length"); want != "" && want != strconv.FormatInt(n, 10) {
			f.s3Error(w, r, http.StatusBadRequest, "IncompleteBody")
			return
		}
		f.mu.Lock()
		f.objects[name] = n
		f.mu.Unlock()
		f.puts.Add(1)
		f.putBytes.Add(n)
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	case http.MethodGet:
		f.mu.Lock()
		size, ok := f.objects[name]
		f.mu.Unlock()
		if !ok {
			f.s3Error(w, r, http.StatusNotFound, "NoSuchKey")
			return
		}
		f.gets.Add(1)
		if f.block {
			<-r.Context().Done()
			return
		}
		if f.getBody != nil {
			size = f.getBody(size)
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		io.CopyN(w, zeroReader{}, size)
	case http.MethodDelete:
		f.mu.Lock()
		delete(f.objects, name)
		f.mu.Unlock()
		f.deletes.Add(1)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.s3Error(w, r, http.StatusNotImplemented, "NotImplemented")
	}
}

// readS3Body counts the payload bytes of a PUT, decoding an aws-chunked
// body (signed or not, with or without trailers) when the request has one.
func readS3Body(r *http.Request) (int64, error) {
	if !strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") &&
		!strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return io.Copy(io.Discard, r.Body)
	}
	br := bufio.NewReader(r.Body)
	var total int64
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return total, fmt.Errorf("chunk header: %w", err)
		}
		hexSize, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		n, err := strconv.ParseInt(hexSize, 16, 64)
		if err != nil {
			return total, fmt.Errorf("chunk size %q: %w", line, err)
		}
		if n == 0 {
			_, err := io.Copy(io.Discard, br) // trailers
			return total, err
		}
		if _, err := io.CopyN(io.Discard, br, n); err != nil {
			return total, err
		}
		total += n
		if _, err := br.Discard(2); err != nil { // CRLF
			return total, err
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func (f *fakeS3) objectCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.objects)
}

func (f *fakeS3) hasBucket(b string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buckets[b]
}

func startFakeS3(t *testing.T, f *fakeS3) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

// startQuietTLS serves h over HTTPS with a self-signed certificate, without
// logging the handshakes that clients refuse.
func startQuietTLS(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

func testS3Config(url string) S3Config {
	return S3Config{
		Endpoint:         url,
		AccessKey:        "AKTEST",
		SecretKey:        "secret",
		Size:             64 << 10,
		Concurrency:      2,
		Duration:         300 * time.Millisecond,
		Keys:             4,
		OpTimeout:        10 * time.Second,
		ProgressInterval: 50 * time.Millisecond,
	}
}

// checkStats checks the invariants every S3Stats must hold.
func checkStats(t *testing.T, what string, s S3Stats, size int64, op string) {
	t.Helper()
	if s.Ops <= 0 {
		t.Errorf("%s: %d ops", what, s.Ops)
	}
	if s.Bytes != s.Ops*size {
		t.Errorf("%s: %d bytes for %d ops of %d", what, s.Bytes, s.Ops, size)
	}
	if !(0 < s.P50ms && s.P50ms <= s.P90ms && s.P90ms <= s.P99ms && s.P99ms <= s.MaxMs) {
		t.Errorf("%s: percentiles out of order: p50 %v p90 %v p99 %v max %v", what, s.P50ms, s.P90ms, s.P99ms, s.MaxMs)
	}
	if s.MBps <= 0 || s.OpsPerS <= 0 {
		t.Errorf("%s: %v MB/s, %v ops/s", what, s.MBps, s.OpsPerS)
	}
	var sum int64
	for _, v := range s.Errors {
		sum += v
	}
	if sum != s.ErrorsTotal {
		t.Errorf("%s: errors %v sum to %d, total says %d", what, s.Errors, sum, s.ErrorsTotal)
	}
}

func TestS3Workloads(t *testing.T) {
	for _, op := range []string{S3OpPut, S3OpGet, S3OpMixed} {
		for _, checksum := range []string{S3ChecksumWhenSupported, S3ChecksumWhenRequired} {
			t.Run(op+"/"+checksum, func(t *testing.T) {
				f := newFakeS3()
				cfg := testS3Config(startFakeS3(t, f))
				cfg.Op = op
				cfg.Checksum = checksum
				var (
					mu    sync.Mutex
					progs []S3Progress
				)
				cfg.Progress = func(p S3Progress) {
					mu.Lock()
					progs = append(progs, p)
					mu.Unlock()
				}
				res, err := S3(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %d ops, %.1f MB/s, p50 %.2f ms, p99 %.2f ms, chunked PUTs %d",
					op, res.Ops, res.MBps, res.P50ms, res.P99ms, f.chunked.Load())
				checkStats(t, "all", res.S3Stats, cfg.Size, op)
				if res.ErrorsTotal != 0 {
					t.Errorf("errors: %v", res.Errors)
				}
				if res.Op != op || res.Size != cfg.Size || res.Concurrency != 2 || res.Checksum != checksum {
					t.Errorf("result echoes config wrong: %+v", res)
				}
				if res.DurationS < cfg.Duration.Seconds() {
					t.Errorf("run lasted %.3fs, less than the configured %v", res.DurationS, cfg.Duration)
				}
				prep := int64(0)
				if op != S3OpPut {
					prep = int64(cfg.Keys)
				}
				var puts, gets int64
				switch op {
				case S3OpPut:
					puts = res.Ops
				case S3OpGet:
					gets = res.Ops
				case S3OpMixed:
					if len(res.ByOp) != 2 {
						t.Fatalf("by op: %v", res.ByOp)
					}
					checkStats(t, "put", res.ByOp[S3OpPut], cfg.Size, S3OpPut)
					checkStats(t, "get", res.ByOp[S3OpGet], cfg.Size, S3OpGet)
					puts, gets = res.ByOp[S3OpPut].Ops, res.ByOp[S3OpGet].Ops
					if puts+gets != res.Ops {
						t.Errorf("mixed: %d puts + %d gets != %d ops", puts, gets, res.Ops)
					}
				}
				if op != S3OpMixed && res.ByOp != nil {
					t.Errorf("by op set for %s", op)
				}
				if got := f.puts.Load(); got != prep+puts {
					t.Errorf("server saw %d PUTs, want %d prepared + %d", got, prep, puts)
				}
				if got := f.putBytes.Load(); got != (prep+puts)*cfg.Size {
					t.Errorf("server got %d PUT bytes, want %d", got, (prep+puts)*cfg.Size)
				}
				if got := f.gets.Load(); got != gets {
					t.Errorf("server saw %d GETs, bench counted %d", got, gets)
				}
				// Cleanup deleted every key and the bucket it created.
				if got := f.deletes.Load(); got != prep+puts || res.Cleaned != got || res.CleanupErrors != 0 {
					t.Errorf("cleanup: server saw %d deletes, result says %d (%d failed), want %d",
						got, res.Cleaned, res.CleanupErrors, prep+puts)
				}
				if n := f.objectCount(); n != 0 || f.hasBucket(cfg.Bucket) {
					t.Errorf("after cleanup: %d objects left, bucket left %v", n, f.hasBucket(cfg.Bucket))
				}

				mu.Lock()
				defer mu.Unlock()
				var finals []S3Progress
				for _, p := range progs {
					if p.Final {
						finals = append(finals, p)
					}
				}
				wantPhases := []string{S3PhaseRun, S3PhaseCleanup}
				if op != S3OpPut {
					wantPhases = []string{S3PhasePrepare, S3PhaseRun, S3PhaseCleanup}
				}
				var phases []string
				for _, p := range finals {
					phases = append(phases, p.Phase)
				}
				if !slices.Equal(phases, wantPhases) {
					t.Fatalf("final progress phases %v, want %v", phases, wantPhases)
				}
				last := finals[len(finals)-2] // the run's
				if last.Ops != res.Ops || last.Bytes != res.Bytes || last.Errors != 0 {
					t.Errorf("final run progress %+v disagrees with result %+v", last, res.S3Stats)
				}
				if op != S3OpPut && (finals[0].Ops != prep || finals[0].Total != prep) {
					t.Errorf("final prepare progress %+v, want %d of %d", finals[0], prep, prep)
				}
				var prev int64
				for _, p := range progs {
					if p.Phase == S3PhaseRun {
						if p.Ops < prev {
							t.Errorf("run progress went back from %d to %d ops", prev, p.Ops)
						}
						prev = p.Ops
					}
				}
			})
		}
	}
}

// TestS3CountAndExistingBucket: Count bounds the run exactly, and a bucket
// that already existed is used and kept.
// TestS3UnsignedPayload: --unsigned-payload sends every PUT (the GET
// cells' uploads too) as UNSIGNED-PAYLOAD over http, where the SDK would
// otherwise sign the payload's SHA-256; without it none is.
func TestS3UnsignedPayload(t *testing.T) {
	for _, unsigned := range []bool{false, true} {
		f := newFakeS3()
		cfg := testS3Config(startFakeS3(t, f))
		cfg.Op = S3OpMixed
		cfg.Checksum = S3ChecksumWhenRequired
		cfg.UnsignedPayload = unsigned
		res, err := S3(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		puts, got := f.puts.Load(), f.unsigned.Load()
		switch {
		case puts == 0:
			t.Fatal("no PUTs")
		case unsigned && got != puts:
			t.Errorf("unsigned: %d of %d PUTs sent UNSIGNED-PAYLOAD", got, puts)
		case !unsigned && got != 0:
			t.Errorf("signed: %d of %d PUTs sent UNSIGNED-PAYLOAD", got, puts)
		}
		if res.UnsignedPayload != unsigned {
			t.Errorf("result says unsigned_payload %v", res.UnsignedPayload)
		}
	}
}

func TestS3CountAndExistingBucket(t *testing.T) {
	f := newFakeS3()
	f.buckets["mine"] = true
	cfg := testS3Config(startFakeS3(t, f))
	cfg.Bucket = "mine"
	cfg.Duration = time.Minute // the count ends it
	cfg.Count = 25
	cfg.Size = 1000
	cfg.Keep = true
	res, err := S3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 25 || f.puts.Load() != 25 || res.Bytes != 25000 {
		t.Errorf("count 25: %d ops, %d bytes, server saw %d PUTs", res.Ops, res.Bytes, f.puts.Load())
	}
	if f.deletes.Load() != 0 || f.objectCount() != 25 || !f.hasBucket("mine") {
		t.Errorf("keep: %d deletes, %d objects, bucket %v", f.deletes.Load(), f.objectCount(), f.hasBucket("mine"))
	}

	cfg.Keep = false
	if _, err := S3(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if f.objectCount() != 25 || !f.hasBucket("mine") {
		t.Errorf("second run: %d objects (the first run's 25 should remain), bucket %v", f.objectCount(), f.hasBucket("mine"))
	}
}

// TestS3ErrorKinds: failed ops are counted by kind, apart from the
// successful ones, and are not retried.
func TestS3ErrorKinds(t *testing.T) {
	t.Run("SlowDown", func(t *testing.T) {
		f := newFakeS3()
		var n atomic.Int64
		f.fail = func(r *http.Request) string {
			if r.Method == http.MethodGet && n.Add(1)%3 == 0 {
				return "SlowDown"
			}
			return ""
		}
		cfg := testS3Config(startFakeS3(t, f))
		cfg.Op = S3OpGet
		cfg.Count = 30
		cfg.Duration = time.Minute
		res, err := S3(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 20 || res.ErrorsTotal != 10 || res.Errors["SlowDown"] != 10 || len(res.Errors) != 1 {
			t.Errorf("every third GET refused: %d ops, errors %v (total %d); want 20 ops, SlowDown 10",
				res.Ops, res.Errors, res.ErrorsTotal)
		}
		if n.Load() != 30 {
			t.Errorf("server saw %d GETs for 30 ops: retried?", n.Load())
		}
	})
	t.Run("short_read", func(t *testing.T) {
		f := newFakeS3()
		f.getBody = func(size int64) int64 { return size / 2 }
		cfg := testS3Config(startFakeS3(t, f))
		cfg.Op = S3OpGet
		cfg.Count = 5
		res, err := S3(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 0 || res.Errors["short_read"] != 5 || res.Bytes != 0 {
			t.Errorf("half bodies: %d ops, %d bytes, errors %v; want 0, 0, short_read 5", res.Ops, res.Bytes, res.Errors)
		}
		if res.P50ms != 0 || res.MaxMs != 0 || res.MBps != 0 {
			t.Errorf("no successful op, yet latency %v/%v ms, %v MB/s", res.P50ms, res.MaxMs, res.MBps)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newFakeS3()
		f.block = true
		cfg := testS3Config(startFakeS3(t, f))
		cfg.Op = S3OpGet
		cfg.Count = 2
		cfg.OpTimeout = 100 * time.Millisecond
		res, err := S3(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Ops != 0 || res.Errors["timeout"] != 2 {
			t.Errorf("blocked GETs: %d ops, errors %v; want timeout 2", res.Ops, res.Errors)
		}
	})
	t.Run("prepare fails", func(t *testing.T) {
		f := newFakeS3()
		f.fail = func(r *http.Request) string {
			if r.Method == http.MethodPut && strings.Count(r.URL.Path, "/") > 1 {
				return "AccessDenied" // not retried
			}
			return ""
		}
		cfg := testS3Config(startFakeS3(t, f))
		cfg.Op = S3OpMixed
		_, err := S3(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "prepare") {
			t.Fatalf("every PUT refused: err %v, want a prepare error", err)
		}
		if f.hasBucket(cfg.Bucket) {
			t.Errorf("bucket created for a failed run was left behind")
		}
	})
	t.Run("refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := S3(context.Background(), testS3Config(url))
		if err == nil || s3ErrorKind(err) != "conn_refused" {
			t.Fatalf("closed endpoint: err %v (kind %s)", err, s3ErrorKind(err))
		}
	})
	t.Run("tls", func(t *testing.T) {
		srv := startQuietTLS(newFakeS3())
		defer srv.Close()
		_, err := S3(context.Background(), testS3Config(srv.URL))
		if err == nil || s3ErrorKind(err) != "tls" {
			t.Fatalf("self-signed endpoint without Insecure: err %v (kind %s)", err, s3ErrorKind(err))
		}
	})
}

// TestS3Insecure runs against a self-signed HTTPS endpoint, where the SDK
// by default sends PUT bodies aws-chunked with a checksum trailer.
func TestS3Insecure(t *testing.T) {
	f := newFakeS3()
	srv := startQuietTLS(f)
	defer srv.Close()
	cfg := testS3Config(srv.URL)
	cfg.Insecure = true
	cfg.Op = S3OpMixed
	cfg.Count = 20
	res, err := S3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 20 || res.ErrorsTotal != 0 || f.puts.Load() != int64(cfg.Keys)+res.ByOp[S3OpPut].Ops {
		t.Errorf("https: %d ops, errors %v, server saw %d PUTs", res.Ops, res.Errors, f.puts.Load())
	}
	if got := f.putBytes.Load(); got != f.puts.Load()*cfg.Size {
		t.Errorf("https: server decoded %d PUT bytes for %d PUTs of %d", got, f.puts.Load(), cfg.Size)
	}
	t.Logf("aws-chunked PUTs: %d of %d", f.chunked.Load(), f.puts.Load())
}

// TestS3Cancel: cancelling ctx ends the run promptly, returns what was
// measured with the context's error, and in-flight ops are not errors.
func TestS3Cancel(t *testing.T) {
	f := newFakeS3()
	f.block = true
	cfg := testS3Config(startFakeS3(t, f))
	cfg.Op = S3OpGet
	cfg.Duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Progress = func(p S3Progress) {
		if p.Phase == S3PhaseRun && p.Elapsed > 100*time.Millisecond {
			cancel()
		}
	}
	res, err := S3(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res.ErrorsTotal != 0 || res.Ops != 0 || res.Op != S3OpGet {
		t.Errorf("cancelled run: %+v", res)
	}
	if res.DurationS >= 30 {
		t.Errorf("cancel took %.1fs", res.DurationS)
	}
}

func TestS3ConfigInvalid(t *testing.T) {
	good := S3Config{Endpoint: "http://127.0.0.1:1", AccessKey: "a", SecretKey: "s"}
	if _, err := good.withDefaults(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*S3Config){
		"no endpoint":   func(c *S3Config) { c.Endpoint = "" },
		"bad endpoint":  func(c *S3Config) { c.Endpoint = "127.0.0.1:9000" },
		"no secret":     func(c *S3Config) { c.SecretKey = "" },
		"op":            func(c *S3Config) { c.Op = "delete" },
		"size":          func(c *S3Config) { c.Size = 6 << 30 },
		"negative size": func(c *S3Config) { c.Size = -1 },
		"concurrency":   func(c *S3Config) { c.Concurrency = -1 },
		"duration":      func(c *S3Config) { c.Duration = -time.Second },
		"count":         func(c *S3Config) { c.Count = -1 },
		"keys":          func(c *S3Config) { c.Op = S3OpGet; c.Keys = -1 },
		"get percent":   func(c *S3Config) { c.GetPercent = 101 },
		"checksum":      func(c *S3Config) { c.Checksum = "always" },
	} {
		c := good
		mod(&c)
		if _, err := S3(context.Background(), c); !errors.Is(err, ErrS3Config) {
			t.Errorf("%s: err %v, want ErrS3Config", name, err)
		}
	}
}

func TestS3HistQuantiles(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, n := range []int{1, 2, 10, 1000, 100000} {
		var parts [3]s3Hist
		vals := make([]time.Duration, n)
		for i := range vals {
			// Log-uniform from 1 ns to ~100 s, with exact small values.
			v := time.Duration(rng.Float64() * float64(int64(1)<<uint(rng.IntN(37))))
			vals[i] = v
			parts[i%3].record(v)
		}
		var h s3Hist
		for i := range parts {
			h.merge(&parts[i])
		}
		slices.Sort(vals)
		if h.n != int64(n) || h.max != vals[n-1] || h.min != vals[0] {
			t.Fatalf("n %d: hist n %d min %v max %v, want %v %v", n, h.n, h.min, h.max, vals[0], vals[n-1])
		}
		prev := time.Duration(0)
		for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
			rank := int(q * float64(n))
			if float64(rank) < q*float64(n) {
				rank++
			}
			want := vals[max(rank, 1)-1]
			got := h.quantile(q)
			if diff := float64(got - want); diff > 0.008*float64(want)+1 || -diff > 0.008*float64(want)+1 {
				t.Errorf("n %d q %v: got %v, want %v (±0.8%%)", n, q, got, want)
			}
			if got < prev {
				t.Errorf("n %d: quantile %v = %v below the previous %v", n, q, got, prev)
			}
			prev = got
		}
	}
	var empty s3Hist
	if empty.quantile(0.5) != 0 {
		t.Errorf("empty histogram quantile %v", empty.quantile(0.5))
	}
}

func TestS3HistBuckets(t *testing.T) {
	// Every bucket's bounds contain exactly the values that map to it, and
	// buckets tile the axis without gaps.
	next := uint64(0)
	for i := range s3HistBuckets {
		lo, w := s3HistBounds(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		for _, v := range []uint64{lo, lo + w/2, lo + w - 1} {
			if got := s3HistIndex(v); got != i {
				t.Fatalf("value %d in bucket %d [%d,+%d) maps to %d", v, i, lo, w, got)
			}
		}
		if lo > 1<<s3HistSub && float64(w)/float64(lo) > 1.0/float64(s3HistHalf)+1e-12 {
			t.Fatalf("bucket %d: width %d over lower bound %d", i, w, lo)
		}
		next = lo + w
		if next == 0 { // wrapped past 2^64: the last bucket
			if i != s3HistBuckets-1 {
				t.Fatalf("bucket %d reaches 2^64 before the last", i)
			}
		}
	}
	if next != 0 {
		t.Fatalf("buckets end at %d, not 2^64", next)
	}
}

func TestWriteS3Table(t *testing.T) {
	r := S3Result{Op: S3OpMixed, Size: 1 << 20, Concurrency: 4, DurationS: 2,
		S3Stats: S3Stats{Ops: 10, Bytes: 10 << 20, MBps: 5.2, OpsPerS: 5, P50ms: 1, P90ms: 2, P99ms: 3, MaxMs: 4,
			Errors: map[string]int64{"SlowDown": 2, "timeout": 1}, ErrorsTotal: 3},
		ByOp: map[string]S3Stats{S3OpGet: {Ops: 6}, S3OpPut: {Ops: 4}}}
	var b strings.Builder
	if err := WriteS3Table(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"MB/s", "p99 ms", "1MiB", "mixed", "  get", "  put", "errors: SlowDown 2 timeout 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
