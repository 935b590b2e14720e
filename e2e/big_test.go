package e2e

// The big-object memory check (run with SHALE_BIG=1; see TestBigObjectMemory):
// a 2 GiB PUT and GET through a dev cluster while the gateway's resident set
// is sampled, so "memory is bounded by stripes in flight, never by object
// size" is shown on the real processes rather than argued.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	bigObjectSize = 2 << 30   // bytes PUT and GET through the gateway
	bigRSSLimit   = 256 << 20 // the gateway's peak RSS must stay at or under this
	bigSeed       = 20240611  // seed of the body's bytes
	bigTimeout    = 25 * time.Minute
	bigSampleRate = 50 * time.Millisecond // RSS sampling interval
)

// TestBigObjectMemory streams a 2 GiB pseudo-random body through the
// gateway with one aws-sdk-go-v2 PutObject (known Content-Length; the body
// is an io.ReadSeeker that regenerates its bytes, so the SDK can hash it and
// rewind without either side ever holding 2 GiB), GETs it back comparing a
// running SHA-256 with the body's, and fails if the gateway's peak resident
// set (VmHWM of /proc/<gateway pid>/status, cross-checked by sampling
// VmRSS) exceeds 256 MiB. It is skipped unless SHALE_BIG=1.
func TestBigObjectMemory(t *testing.T) {
	if os.Getenv("SHALE_BIG") != "1" {
		t.Skip("set SHALE_BIG=1 to run the 2 GiB object test")
	}
	c := startDev(t, opts{})
	pid := c.File.GatewayPID
	if pid <= 0 || !isShale(pid, "gateway") {
		t.Fatalf("cluster.json gateway_pid %d is not a running shale gateway", pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bigTimeout)
	defer cancel()

	start, err := bigReadMem(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gateway pid %d at start: VmRSS %s, VmHWM %s", pid, bigMiB(start.rss), bigMiB(start.hwm))
	sampler := bigStartSampler(pid, bigSampleRate)
	defer sampler.stop()

	const bucket, key = "big", "two-gib"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}

	// The SHA-256 the GET must match, from the generator itself.
	want, err := bigSHA256(newBigBody(bigSeed, bigObjectSize))
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	_, err = c.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
		Body: newBigBody(bigSeed, bigObjectSize), ContentLength: aws.Int64(bigObjectSize),
	})
	putDur := time.Since(t0)
	afterPut := sampler.snapshot()
	if err != nil {
		t.Fatalf("put %s/%s (%d bytes) after %v: %v", bucket, key, bigObjectSize, putDur.Round(time.Millisecond), err)
	}
	t.Logf("PUT 2 GiB in %v (%.1f MB/s); gateway peak so far: VmHWM %s, max sampled VmRSS %s",
		putDur.Round(time.Millisecond), bigMBps(bigObjectSize, putDur), bigMiB(afterPut.hwm), bigMiB(afterPut.maxRSS))

	t1 := time.Now()
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s/%s: %v", bucket, key, err)
	}
	if n := aws.ToInt64(out.ContentLength); n != bigObjectSize {
		t.Errorf("get %s/%s: Content-Length %d, want %d", bucket, key, n, int64(bigObjectSize))
	}
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	out.Body.Close()
	getDur := time.Since(t1)
	if err != nil {
		t.Fatalf("get %s/%s: body after %d bytes: %v", bucket, key, n, err)
	}
	if n != bigObjectSize {
		t.Errorf("get %s/%s: %d body bytes, want %d", bucket, key, n, int64(bigObjectSize))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("get %s/%s: sha256 %s, want %s", bucket, key, got, want)
	}
	t.Logf("GET 2 GiB in %v (%.1f MB/s), sha256 %s", getDur.Round(time.Millisecond), bigMBps(n, getDur), want)

	sampler.stop()
	end, err := bigReadMem(pid)
	if err != nil {
		t.Fatalf("gateway after the GET: %v", err)
	}
	fin := sampler.snapshot()
	peak := max(end.hwm, fin.maxRSS)
	t.Logf("gateway memory: VmHWM %s, max sampled VmRSS %s over %d samples, VmRSS now %s",
		bigMiB(end.hwm), bigMiB(fin.maxRSS), fin.samples, bigMiB(end.rss))
	t.Logf("gateway peak RSS: %d MiB", (peak+(1<<20)-1)>>20)
	if peak > bigRSSLimit {
		t.Errorf("gateway peak RSS %s exceeds the %s limit for a 2 GiB PUT and GET", bigMiB(peak), bigMiB(bigRSSLimit))
	}
	if fin.err != nil {
		t.Errorf("sampling gateway memory: %v", fin.err)
	}
}

// bigBlock is the unit of body generation: block i is a PCG stream seeded by
// (seed, i), so any offset can be made without making what precedes it.
const bigBlock = 64 << 10

// bigBody is a deterministic pseudo-random body of size bytes: an
// io.ReadSeeker that regenerates bytes on demand and holds one block.
type bigBody struct {
	seed, size int64
	off        int64
	cur        int64 // index of the block in buf; -1: none
	buf        [bigBlock]byte
}

func newBigBody(seed, size int64) *bigBody { return &bigBody{seed: seed, size: size, cur: -1} }

func (b *bigBody) fill(i int64) {
	if b.cur == i {
		return
	}
	r := rand.NewPCG(uint64(b.seed), uint64(i)^0x5ba1e)
	for j := 0; j < bigBlock; j += 8 {
		binary.LittleEndian.PutUint64(b.buf[j:], r.Uint64())
	}
	b.cur = i
}

func (b *bigBody) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && b.off < b.size {
		i, within := b.off/bigBlock, b.off%bigBlock
		b.fill(i)
		end := min(int64(bigBlock), b.size-i*bigBlock)
		c := copy(p[n:], b.buf[within:end])
		n += c
		b.off += int64(c)
	}
	return n, nil
}

func (b *bigBody) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = b.off + offset
	case io.SeekEnd:
		abs = b.size + offset
	default:
		return b.off, fmt.Errorf("big body: seek whence %d", whence)
	}
	if abs < 0 {
		return b.off, errors.New("big body: seek before start")
	}
	b.off = abs
	return abs, nil
}

func bigSHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("hash big body: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// bigMem is one reading of /proc/<pid>/status.
type bigMem struct{ rss, hwm int64 } // bytes

// bigReadMem reads VmRSS and VmHWM of pid.
func bigReadMem(pid int) (bigMem, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return bigMem{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	return bigParseStatus(b)
}

// bigParseStatus takes VmRSS and VmHWM (in kB) out of a /proc status file.
func bigParseStatus(b []byte) (bigMem, error) {
	var m bigMem
	found := 0
	for line := range bytes.Lines(b) {
		name, rest, ok := strings.Cut(string(line), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("proc status: %s line %q", name, strings.TrimSpace(string(line)))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("proc status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.hwm = kb << 10
		}
		found++
	}
	if found != 2 {
		return m, errors.New("proc status: no VmRSS and VmHWM lines")
	}
	return m, nil
}

// bigSampler polls a process's memory until stopped.
type bigSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu   sync.Mutex
	last bigSnapshot
}

type bigSnapshot struct {
	hwm, maxRSS int64
	samples     int
	err         error // the first failed reading
}

func bigStartSampler(pid int, every time.Duration) *bigSampler {
	s := &bigSampler{done: make(chan struct{})}
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m, err := bigReadMem(pid)
			s.mu.Lock()
			if err != nil && s.last.err == nil {
				s.last.err = err
			}
			if err == nil {
				s.last.hwm = max(s.last.hwm, m.hwm)
				s.last.maxRSS = max(s.last.maxRSS, m.rss)
				s.last.samples++
			}
			s.mu.Unlock()
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *bigSampler) snapshot() bigSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// stop ends the sampling goroutine and waits for it; idempotent.
func (s *bigSampler) stop() {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
}

func bigMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func bigMBps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds() / 1e6
}

// TestBigHelpers checks the body generator and the status parser the big
// test relies on; it is small and always runs.
func TestBigHelpers(t *testing.T) {
	const size = 3*bigBlock + 1234
	whole, err := io.ReadAll(newBigBody(7, size))
	if err != nil || len(whole) != size {
		t.Fatalf("read all: %d bytes, %v", len(whole), err)
	}
	if bytes.Equal(whole[:bigBlock], whole[bigBlock:2*bigBlock]) {
		t.Fatal("blocks 0 and 1 are equal")
	}
	other, _ := io.ReadAll(newBigBody(8, size))
	if bytes.Equal(whole, other) {
		t.Fatal("seeds 7 and 8 give the same body")
	}
	// Odd-sized reads after seeks give the same bytes.
	b := newBigBody(7, size)
	for _, off := range []int64{0, 5, bigBlock - 3, 2*bigBlock + 17, size - 10, size} {
		if _, err := b.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{b}, 777))
		if err != nil {
			t.Fatal(err)
		}
		if want := whole[off:min(off+777, size)]; !bytes.Equal(got, want) {
			t.Fatalf("at %d: %d bytes differ from the whole read", off, len(got))
		}
	}
	if end, _ := b.Seek(0, io.SeekEnd); end != size {
		t.Fatalf("seek end = %d, want %d", end, size)
	}
	if _, err := b.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("seek before start succeeded")
	}

	m, err := bigParseStatus([]byte("Name:\tshale\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"))
	if err != nil || m.hwm != 200<<20 || m.rss != 100<<20 {
		t.Fatalf("parse status = %+v, %v", m, err)
	}
	if _, err := bigParseStatus([]byte("Name:\tshale\nVmRSS:\t1 kB\n")); err == nil {
		t.Fatal("status without VmHWM parsed")
	}
	if _, err := bigParseStatus([]byte("VmHWM:\tx kB\nVmRSS:\t1 kB\n")); err == nil {
		t.Fatal("bad number parsed")
	}
	self, err := bigReadMem(os.Getpid())
	if err != nil || self.rss <= 0 || self.hwm < self.rss {
		t.Fatalf("own memory = %+v, %v", self, err)
	}
}
