package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// TestMetaLeaderFailover is issue 12's failover demonstration on a real
// `shale dev` cluster with 3 meta replicas (8 nodes, 4 zones, 4+2: with a
// node lost, 7 nodes still hold 6 shards at most 2 per zone):
//
//  1. Writers run concurrently with real S3 clients: single PUTs (the SDK)
//     and multipart uploads (the SDK step by step, and minio-go); a reader
//     GETs what they acknowledged and must never get a wrong answer (an
//     acknowledged object absent, or other bytes). While they run, the meta
//     leader is SIGKILLed.
//  2. Another replica leads and writes resume: single PUTs and multipart
//     completions are acknowledged again. Exactly one replica runs the
//     leader-only work (the sum of shale_meta_leader_work over the live
//     replicas is 1).
//  3. The killed replica restarts under the write load, rejoins as a
//     follower and catches up (its applied index reaches the leader's).
//  4. The new leader is SIGKILLed in turn: again a leader, again writes.
//     The writers measure the longest write-unavailability window (the
//     longest gap between two successful write completions), which the
//     test prints. No S3 response is ever a 500 (503 SlowDown is what a
//     client may see while no leader exists).
//  5. A storage node is SIGKILLed: the third leader's membership ticks take
//     it out and its repair loop brings every object back to k+m shards.
//     The second killed replica comes back and catches up; leader work runs
//     exactly once over the three replicas.
//  6. Every write that got 200 reads back byte-identical; a write that
//     failed is either absent or whole, never wrong.
//
// Killing the leader during repair is TestDevClusterChaos's part.
func TestMetaLeaderFailover(t *testing.T) {
	const (
		nodes, zones, k, m = 8, 4, 4, 2
		downAfter          = time.Second
		outAfter           = 3 * time.Second
		bucket             = "failover"
		putWriters         = 3
		ackedBeforeKill    = 40 // acknowledged writes before the first kill
		ackedAfterKill     = 30 // … and begun after each, for writes to count as resumed
		maxWindow          = 20 * time.Second
	)
	seed := chaosSeed(t)
	tl := newChaosTimeline(t)
	c := startDev(t, opts{nodes: nodes, zones: zones, k: k, m: m, downAfter: downAfter, outAfter: outAfter})
	if len(c.File.Metas) != 3 {
		t.Fatalf("cluster.json lists %d meta replicas, want 3 (shale dev's default)", len(c.File.Metas))
	}
	mc := chaosMetaClient(t, c)
	t.Cleanup(func() { chaosDiagnose(t, c, mc, tl) })
	tl.event("cluster up: %d nodes in %d zones, %d+%d, meta replicas %s", nodes, zones, k, m, c.File.Meta)

	ctx, cancel := context.WithTimeout(t.Context(), 80*time.Second)
	defer cancel()
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	// The writers' and the reader's clients record the status of every
	// response they get.
	codes := &foStatusLog{}
	sdk := s3.New(c.S3.Options(), func(o *s3.Options) {
		o.HTTPClient = &http.Client{Transport: &foStatusRecorder{base: c.Wire, log: codes}}
	})
	mio := foMinio(t, c, &foStatusRecorder{base: c.MinioWire, log: codes})

	leaderWorkOnce := func(dead string) {
		t.Helper()
		tl.event("leader work runs exactly once: %s", waitLeaderWorkOnce(t, c, dead))
	}
	catchUp := func(id string) {
		t.Helper()
		c.RestartMetaReplica(t, id)
		tl.event("%s restarted with its cluster.json arguments", id)
		rs := waitCaughtUp(t, c, id)
		tl.event("%s follows %s, caught up at applied index %d", id, rs.LeaderID, rs.AppliedIndex)
	}

	lead := c.MetaLeader(t, 20*time.Second)
	leaderWorkOnce("")
	w := foStartWriters(ctx, sdk, mio, bucket, seed, putWriters)
	rd := foStartReader(ctx, sdk, bucket, w, seed)
	c.WaitFor(t, fmt.Sprintf("%d acknowledged writes and a multipart upload in flight", ackedBeforeKill), 30*time.Second, func() (bool, string) {
		n := w.ackedCount()
		return n >= ackedBeforeKill && w.mpuAcked() > 0 && w.mpuInFlight.Load() > 0,
			fmt.Sprintf("%d acknowledged, %d of them multipart", n, w.mpuAcked())
	})

	// 1.–4. Two rounds: SIGKILL the leader while writes run, wait for the
	// next one and for writes to resume; the first killed replica rejoins
	// under the write load.
	var kills []time.Time
	var killed []string
	for round := 1; round <= 2; round++ {
		puts, mpus := w.putInFlight.Load(), w.mpuInFlight.Load()
		killedAt := time.Now()
		c.KillMetaReplica(t, lead.ID)
		kills, killed = append(kills, killedAt), append(killed, lead.ID)
		tl.event("SIGKILL the meta leader %s with %d writes acknowledged, %d single PUTs and %d multipart uploads in flight",
			lead.ID, w.ackedCount(), puts, mpus)
		next := c.MetaLeader(t, 30*time.Second)
		if next.ID == lead.ID {
			t.Fatalf("%s still leads after its SIGKILL", lead.ID)
		}
		tl.event("%s leads (seen %.2fs after the kill)", next.ID, time.Since(killedAt).Seconds())
		// Writes begun after the kill can only be acknowledged through
		// the new leader.
		c.WaitFor(t, "writes begun after the kill acknowledged", 30*time.Second, func() (bool, string) {
			n, mpu := w.ackedBegunAfter(killedAt)
			return n >= ackedAfterKill && mpu > 0, fmt.Sprintf("%d writes begun since the kill acknowledged, %d of them multipart", n, mpu)
		})
		n, mpu := w.ackedBegunAfter(killedAt)
		tl.event("writes resumed: %d begun since the kill acknowledged (%d multipart)", n, mpu)
		leaderWorkOnce(lead.ID)
		if round == 1 {
			catchUp(lead.ID) // under the write load
		}
		lead = next
	}
	w.stop(t)
	rd.wait(t)
	acked, failed := w.results()
	tl.event("writers stopped: %d writes acknowledged (%d single PUTs, %d multipart), %d failed",
		len(acked), len(acked)-w.mpuAcked(), w.mpuAcked(), len(failed))
	for i, f := range failed {
		if i == 5 {
			t.Logf("… and %d more failed writes", len(failed)-5)
			break
		}
		t.Logf("%s %s failed (not acknowledged) after %.2fs: %v", f.kind, f.key, f.end.Sub(f.start).Seconds(), f.err)
	}

	// The windows, the reads, and never a 500.
	win := foLongestGap(acked, kills)
	for i, kw := range win.afterKill {
		t.Logf("kill %d (%s at t+%.2fs): longest gap after it: no write completed from t+%.2fs to t+%.2fs: %.2fs",
			i+1, killed[i], kills[i].Sub(tl.start).Seconds(), kw[0].Sub(tl.start).Seconds(), kw[1].Sub(tl.start).Seconds(), kw[1].Sub(kw[0]).Seconds())
	}
	for _, g := range win.long {
		t.Logf("no write completed from t+%.2fs to t+%.2fs: %.2fs", g[0].Sub(tl.start).Seconds(), g[1].Sub(tl.start).Seconds(), g[1].Sub(g[0]).Seconds())
	}
	t.Logf("longest write-unavailability window: %.2fs (no write completed from t+%.2fs to t+%.2fs)",
		win.gap.Seconds(), win.from.Sub(tl.start).Seconds(), win.to.Sub(tl.start).Seconds())
	if win.gap > maxWindow {
		t.Errorf("writes were unavailable for %.2fs, more than %v", win.gap.Seconds(), maxWindow)
	}
	tl.event("reads of acknowledged writes meanwhile: %d right, %d failed, %d wrong", rd.ok.Load(), rd.failed.Load(), rd.wrong.Load())
	for _, e := range rd.errs {
		t.Logf("read failed: %s", e)
	}
	for _, e := range rd.wrongs {
		t.Errorf("wrong answer: %s", e)
	}
	if rd.ok.Load() == 0 {
		t.Error("the reader never read an acknowledged write back")
	}
	tl.event("S3 responses seen by the writers and the reader: %s", codes)
	for _, r := range codes.serverErrors() {
		t.Errorf("%s %s answered %d at t+%.2fs (only 503 SlowDown is allowed while no leader exists)",
			r.method, r.path, r.code, r.at.Sub(tl.start).Seconds())
	}
	if t.Failed() {
		t.FailNow()
	}

	// 5. A node dies: the leader takes it out and repairs its shards; the
	// second killed replica comes back.
	victim := c.File.Nodes[int(seed%uint64(len(c.File.Nodes)))].ID
	c.KillNode(t, victim)
	tl.event("SIGKILL %s", victim)
	c.WaitNodeState(t, victim, cluster.Out, 30*time.Second)
	tl.event("%s is out", victim)
	c.WaitFor(t, "every object at k+m healthy shards and nothing left to repair", 60*time.Second, func() (bool, string) {
		st, err := c.Status()
		if err != nil {
			return false, err.Error()
		}
		return chaosAllHealthy(st, m) && st.DegradedQueue == 0 && st.Objects >= int64(len(acked)), chaosSummary(st)
	})
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	tl.event("repair done under %s: %s", lead.ID, chaosSummary(st))
	catchUp(killed[1])
	leaderWorkOnce("")

	// 6. Every acknowledged write reads back whole; no failed write reads
	// back wrong.
	var mu sync.Mutex
	var wrong, missing int
	foEach(acked, 3, func(o foWrite) {
		exists, err := foRead(ctx, c.S3, bucket, o)
		if err == nil && exists {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		missing++
		if !exists && err == nil {
			err = errors.New("NoSuchKey")
		}
		if missing <= 10 {
			t.Errorf("acknowledged %s %s (%d bytes, done t+%.2fs): %v", o.kind, o.key, o.content.Size(), o.end.Sub(tl.start).Seconds(), err)
		}
	})
	var present []foWrite
	foEach(failed, 3, func(o foWrite) {
		exists, err := foRead(ctx, c.S3, bucket, o)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			wrong++
			t.Errorf("failed %s %s: reading it back: %v", o.kind, o.key, err)
		} else if exists {
			present = append(present, o)
		}
	})
	tl.event("read back %d acknowledged writes (%d not byte-identical); of %d failed writes %d are whole, %d absent, %d wrong",
		len(acked), missing, len(failed), len(present), len(failed)-len(present)-wrong, wrong)

	// The bucket lists exactly those objects, and no multipart upload is
	// left open: each one was completed or aborted once (a create or
	// complete applied twice would leave one behind). A failed upload's
	// abort may itself have failed, so that case is only logged.
	want := map[string]sized{}
	for _, o := range append(slices.Clone(acked), present...) {
		want[o.key] = o.content
	}
	checkListing(t, "listing after the failovers", listAll(ctx, t, c, bucket, ""), want)
	ups, err := c.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	var open []string
	for _, u := range ups.Uploads {
		open = append(open, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
	}
	mpuFailed := slices.ContainsFunc(failed, foWrite.multipart)
	switch {
	case len(open) > 0 && !mpuFailed:
		t.Errorf("%d multipart uploads left open though every upload completed or was aborted: %s", len(open), strings.Join(open, ", "))
	case len(open) > 0:
		t.Logf("%d multipart uploads left open (some uploads failed; their abort may have too): %s", len(open), strings.Join(open, ", "))
	}
	tl.event("the bucket lists the %d objects; %d multipart uploads left open", len(want), len(open))
}

// foWrite is one write a writer made: a single PUT or a multipart upload.
type foWrite struct {
	kind       string // "put", "mpu-sdk", "mpu-minio"
	key        string
	content    sized
	start, end time.Time
	err        error // nil: acknowledged
}

func (w foWrite) multipart() bool { return w.kind != "put" }

// foWriters is a running set of writers.
type foWriters struct {
	quit chan struct{} // closed by stop
	wg   sync.WaitGroup
	seq  atomic.Int64
	// Writes under way, by kind.
	putInFlight, mpuInFlight atomic.Int64

	mu     sync.Mutex
	acked  []foWrite
	failed []foWrite
}

// foStartWriters starts puts writers of single PUTs (0–128 KiB, the SDK)
// and two multipart writers: the SDK step by step (a 5 MiB part and a
// smaller last one) and minio-go (which splits 5–6 MiB into parts itself).
func foStartWriters(ctx context.Context, sdk *s3.Client, mio *minio.Client, bucket string, seed uint64, puts int) *foWriters {
	w := &foWriters{quit: make(chan struct{})}
	stopped := func() bool {
		select {
		case <-w.quit:
			return true
		default:
			return ctx.Err() != nil
		}
	}
	run := func(kind string, one func(ctx context.Context, i int64) foWrite) {
		inFlight := &w.mpuInFlight
		if kind == "put" {
			inFlight = &w.putInFlight
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for !stopped() {
				inFlight.Add(1)
				o := one(ctx, w.seq.Add(1))
				inFlight.Add(-1)
				if ctx.Err() != nil && o.err != nil {
					return // the test is over, not a failure
				}
				w.mu.Lock()
				if o.err == nil {
					w.acked = append(w.acked, o)
				} else {
					w.failed = append(w.failed, o)
				}
				w.mu.Unlock()
				if o.err != nil {
					select { // a failed write is not retried in a tight loop
					case <-ctx.Done():
					case <-w.quit:
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	for range puts {
		run("put", func(ctx context.Context, i int64) foWrite {
			p := payload{seed: seed*1_000_003 + uint64(i), size: int64(chaosRand64(seed, int(i)) % (128<<10 + 1))}
			o := foWrite{kind: "put", key: fmt.Sprintf("put/%05d-%d", i, p.size), content: p, start: time.Now()}
			pctx, pcancel := context.WithTimeout(ctx, 45*time.Second)
			out, err := sdk.PutObject(pctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key),
				Body: p.Reader(), ContentLength: aws.Int64(p.size)})
			pcancel()
			if err == nil && aws.ToString(out.ETag) != md5ETag(p) {
				err = fmt.Errorf("ETag %s, want %s", aws.ToString(out.ETag), md5ETag(p))
			}
			o.end, o.err = time.Now(), err
			return o
		})
	}
	run("mpu-sdk", func(ctx context.Context, i int64) foWrite {
		tail := int64(chaosRand64(seed, int(i)) % (512<<10 + 1))
		parts := concat{payload{seed: seed*1_000_003 + uint64(i), size: 5 << 20},
			payload{seed: seed*1_000_003 + uint64(i) + 1<<40, size: tail}}
		o := foWrite{kind: "mpu-sdk", key: fmt.Sprintf("mpu-sdk/%05d-%d", i, parts.Size()), content: parts, start: time.Now()}
		pctx, pcancel := context.WithTimeout(ctx, 45*time.Second)
		o.err = foMultipartSDK(pctx, sdk, bucket, o.key, parts)
		pcancel()
		o.end = time.Now()
		return o
	})
	run("mpu-minio", func(ctx context.Context, i int64) foWrite {
		p := payload{seed: seed*1_000_003 + uint64(i), size: 5<<20 + int64(chaosRand64(seed, int(i))%(1<<20)) + 1}
		o := foWrite{kind: "mpu-minio", key: fmt.Sprintf("mpu-minio/%05d-%d", i, p.size), content: p, start: time.Now()}
		pctx, pcancel := context.WithTimeout(ctx, 45*time.Second)
		info, err := mio.PutObject(pctx, bucket, o.key, p.Reader(), p.size, minio.PutObjectOptions{PartSize: 5 << 20})
		pcancel()
		if err == nil && !strings.HasSuffix(strings.Trim(info.ETag, `"`), "-2") {
			err = fmt.Errorf("ETag %s: not a 2-part multipart upload", info.ETag)
		}
		o.end, o.err = time.Now(), err
		return o
	})
	return w
}

// foMultipartSDK uploads parts as one multipart upload with the SDK's
// low-level calls; on a failure it aborts the upload (best effort).
func foMultipartSDK(ctx context.Context, sdk *s3.Client, bucket, key string, parts concat) error {
	up, err := sdk.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	var done []types.CompletedPart
	err = func() error {
		for i, p := range parts {
			n := int32(i + 1)
			out, err := sdk.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key),
				UploadId: up.UploadId, PartNumber: aws.Int32(n),
				Body: io.NewSectionReader(p, 0, p.Size()), ContentLength: aws.Int64(p.Size())})
			if err != nil {
				return fmt.Errorf("part %d: %w", n, err)
			}
			if got, want := aws.ToString(out.ETag), md5ETag(p); got != want {
				return fmt.Errorf("part %d: ETag %s, want %s", n, got, want)
			}
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
		}
		out, err := sdk.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		if err != nil {
			return fmt.Errorf("complete: %w", err)
		}
		if et := strings.Trim(aws.ToString(out.ETag), `"`); !strings.HasSuffix(et, "-"+strconv.Itoa(len(parts))) {
			return fmt.Errorf("complete: ETag %s, not a %d-part upload's", et, len(parts))
		}
		return nil
	}()
	if err != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, _ = sdk.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId})
		acancel()
	}
	return err
}

// stop lets the writes in flight end (acknowledged or failed) and starts no
// more; it waits for them, bounded.
func (w *foWriters) stop(t testing.TB) {
	t.Helper()
	close(w.quit)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("writers did not stop within 1m")
	}
}

// pick returns the acknowledged write number n modulo their count, or the
// latest for math.MaxUint64.
func (w *foWriters) pick(n uint64) (foWrite, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.acked) == 0 {
		return foWrite{}, false
	}
	if n == math.MaxUint64 {
		return w.acked[len(w.acked)-1], true
	}
	return w.acked[n%uint64(len(w.acked))], true
}

func (w *foWriters) results() (acked, failed []foWrite) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked), slices.Clone(w.failed)
}

// ackedCount counts the acknowledged writes.
func (w *foWriters) ackedCount() int {
	n, _ := w.ackedBegunAfter(time.Time{})
	return n
}

// ackedBegunAfter counts the acknowledged writes begun after t, and the
// multipart uploads among them.
func (w *foWriters) ackedBegunAfter(t time.Time) (n, mpu int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.acked {
		if o.start.After(t) {
			n++
			if o.multipart() {
				mpu++
			}
		}
	}
	return n, mpu
}

// mpuAcked counts the multipart uploads completed.
func (w *foWriters) mpuAcked() int {
	_, mpu := w.ackedBegunAfter(time.Time{})
	return mpu
}

// foReader GETs acknowledged writes, at random, while the writers run.
type foReader struct {
	done              chan struct{}
	ok, failed, wrong atomic.Int64

	mu     sync.Mutex
	errs   []string // the first failures
	wrongs []string // every wrong answer
}

// foStartReader reads what w acknowledged until w stops. An acknowledged
// object that reads as absent or with other bytes is a wrong answer; a
// read that fails (503 after the SDK's retries, a timeout) is only counted.
func foStartReader(ctx context.Context, sdk *s3.Client, bucket string, w *foWriters, seed uint64) *foReader {
	r := &foReader{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for i := 0; ; i++ {
			select {
			case <-w.quit:
				return
			case <-ctx.Done():
				return
			default:
			}
			// Every other read is of the latest acknowledged write: a
			// replica serving a stale read would answer NoSuchKey.
			n := chaosRand64(seed^0x4ead, i)
			if i%2 == 0 {
				n = math.MaxUint64
			}
			o, ok := w.pick(n)
			if !ok {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			from := time.Now()
			exists, err := foRead(ctx, sdk, bucket, o)
			switch {
			case ctx.Err() != nil:
				return
			case err == nil && exists:
				r.ok.Add(1)
			case err == nil || errors.Is(err, errWrongBytes):
				if err == nil {
					err = errors.New("NoSuchKey")
				}
				r.wrong.Add(1)
				r.mu.Lock()
				r.wrongs = append(r.wrongs, fmt.Sprintf("%s %s (acknowledged at %s) read at %s: %v",
					o.kind, o.key, o.end.Format("15:04:05.000"), from.Format("15:04:05.000"), err))
				r.mu.Unlock()
			default:
				r.failed.Add(1)
				r.mu.Lock()
				if len(r.errs) < 5 {
					r.errs = append(r.errs, fmt.Sprintf("%s at %s: %v", o.key, from.Format("15:04:05.000"), err))
				}
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// wait waits (bounded) for the reader to end once the writers stopped.
func (r *foReader) wait(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("reader did not stop within 1m")
	}
}

// foWindow is the longest stretch without a successful write completion.
type foWindow struct {
	gap      time.Duration
	from, to time.Time // the completions that bound it
	// afterKill[j] bounds the longest gap that ends after kills[j] and
	// not after the next kill.
	afterKill [][2]time.Time
	long      [][2]time.Time // every gap over foLongGap
}

// foLongGap is the shortest gap between write completions the test lists.
const foLongGap = 500 * time.Millisecond

// foLongestGap finds, over the acknowledged writes, the longest gap between
// two consecutive completions, and the longest one after each kill.
func foLongestGap(acked []foWrite, kills []time.Time) foWindow {
	ends := make([]time.Time, 0, len(acked))
	for _, o := range acked {
		ends = append(ends, o.end)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Before(ends[j]) })
	w := foWindow{afterKill: make([][2]time.Time, len(kills))}
	for i := 1; i < len(ends); i++ {
		if ends[i].Sub(ends[i-1]) > foLongGap {
			w.long = append(w.long, [2]time.Time{ends[i-1], ends[i]})
		}
		if g := ends[i].Sub(ends[i-1]); g > w.gap {
			w.gap, w.from, w.to = g, ends[i-1], ends[i]
		}
		for j, kill := range kills {
			a := &w.afterKill[j]
			if ends[i].After(kill) && (j+1 == len(kills) || !ends[i].After(kills[j+1])) && ends[i].Sub(ends[i-1]) > a[1].Sub(a[0]) {
				*a = [2]time.Time{ends[i-1], ends[i]}
			}
		}
	}
	return w
}

// foRead GETs o: exists is false on NoSuchKey; err is set when the read
// failed otherwise, or wraps errWrongBytes when the bytes are not o's.
func foRead(ctx context.Context, cl *s3.Client, bucket string, o foWrite) (exists bool, err error) {
	gctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := cl.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
	if errCode(err) == "NoSuchKey" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body) // at most a few MiB
	if err != nil {
		return true, fmt.Errorf("read body: %w", err)
	}
	if err := compareBody(bytes.NewReader(b), o.content); err != nil {
		return true, fmt.Errorf("%w: %w", errWrongBytes, err)
	}
	return true, nil
}

// errWrongBytes marks a read that returned other bytes than were written
// (rather than failing).
var errWrongBytes = errors.New("wrong bytes")

// foEach runs fn over ws with n goroutines.
func foEach(ws []foWrite, n int, fn func(foWrite)) {
	work := make(chan foWrite)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				fn(o)
			}
		}()
	}
	for _, o := range ws {
		work <- o
	}
	close(work)
	wg.Wait()
}

// waitLeaderWorkOnce waits (bounded) until the meta replicas other than
// skip run the leader-only work exactly once between them (the sum of
// their shale_meta_leader_work is 1) and returns each one's value.
func waitLeaderWorkOnce(t testing.TB, c *Cluster, skip string) string {
	t.Helper()
	dead := map[string]bool{skip: true}
	c.WaitFor(t, "exactly one meta replica running the leader work", 20*time.Second, func() (bool, string) {
		sum, per := foLeaderWork(c, dead)
		return sum == 1, per
	})
	_, per := foLeaderWork(c, dead)
	return per
}

// waitCaughtUp waits (bounded) until meta replica id follows the leader
// and has applied every command the leader had applied just before.
func waitCaughtUp(t testing.TB, c *Cluster, id string) meta.ReplicaStatus {
	t.Helper()
	var rs meta.ReplicaStatus
	c.WaitFor(t, id+" following and caught up", 30*time.Second, func() (bool, string) {
		var ls meta.ReplicaStatus
		for _, r := range c.File.Metas {
			if st, err := c.ReplicaStatus(r.ID); r.ID != id && err == nil && st.State == "leader" {
				ls = st
			}
		}
		if ls.ID == "" {
			return false, "no other replica leads"
		}
		var err error
		if rs, err = c.ReplicaStatus(id); err != nil {
			return false, id + ": " + err.Error()
		}
		return rs.State == "follower" && rs.LeaderID == ls.ID && rs.AppliedIndex >= ls.AppliedIndex,
			fmt.Sprintf("%s %s applied %d; %s %s applied %d, leader %q", ls.ID, ls.State, ls.AppliedIndex,
				id, rs.State, rs.AppliedIndex, rs.LeaderID)
	})
	return rs
}

// foLeaderWork scrapes shale_meta_leader_work from every replica not in
// skip and returns the sum (-1 when a replica could not be scraped) and a
// per-replica account.
func foLeaderWork(c *Cluster, skip map[string]bool) (float64, string) {
	cl := &http.Client{Timeout: 3 * time.Second}
	var sum float64
	var per []string
	for _, r := range c.File.Metas {
		if skip[r.ID] {
			continue
		}
		v, err := foScrape(cl, r.Metrics, "shale_meta_leader_work")
		if err != nil {
			sum = -1
			per = append(per, r.ID+": "+err.Error())
			continue
		}
		if sum >= 0 {
			sum += v
		}
		per = append(per, fmt.Sprintf("%s=%g", r.ID, v))
	}
	return sum, strings.Join(per, " ")
}

// foScrape reads one unlabelled sample from a /metrics endpoint.
func foScrape(cl *http.Client, addr, name string) (float64, error) {
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// foMinio is a minio-go client of the cluster over transport.
func foMinio(t testing.TB, c *Cluster, transport http.RoundTripper) *minio.Client {
	t.Helper()
	host := strings.TrimPrefix(strings.TrimPrefix(c.Endpoint, "https://"), "http://")
	mc, err := minio.New(host, &minio.Options{
		Creds:     miniocreds.NewStaticV4(c.Creds.AccessKey, c.Creds.SecretKey, ""),
		Secure:    c.Opts.tls,
		Transport: transport,
		Region:    "us-east-1",
	})
	if err != nil {
		t.Fatalf("minio client: %v", err)
	}
	return mc
}

// foStatusRecorder is a RoundTripper that logs the status of every response.
type foStatusRecorder struct {
	base http.RoundTripper
	log  *foStatusLog
}

func (r *foStatusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		path := req.URL.Path
		if req.URL.RawQuery != "" {
			path += "?" + req.URL.RawQuery
		}
		r.log.add(req.Method, path, resp.StatusCode)
	}
	return resp, err
}

// foStatusLog counts responses by status and keeps the 5xx other than 503.
type foStatusLog struct {
	mu     sync.Mutex
	counts map[int]int
	bad    []foResponse // 5xx but 503
	other  []foResponse // the first answers but 200
}

type foResponse struct {
	method, path string
	code         int
	at           time.Time
}

func (l *foStatusLog) add(method, path string, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[int]int{}
	}
	l.counts[code]++
	if code >= 500 && code != http.StatusServiceUnavailable {
		l.bad = append(l.bad, foResponse{method, path, code, time.Now()})
	}
	if code != http.StatusOK && len(l.other) < 10 {
		l.other = append(l.other, foResponse{method, path, code, time.Now()})
	}
}

func (l *foStatusLog) serverErrors() []foResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.bad)
}

func (l *foStatusLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var codes []int
	for code := range l.counts {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	var s []string
	for _, code := range codes {
		s = append(s, fmt.Sprintf("%d×%d", l.counts[code], code))
	}
	for _, r := range l.other {
		s = append(s, fmt.Sprintf("%d to %s %s at %s", r.code, r.method, r.path, r.at.Format("15:04:05.000")))
	}
	return strings.Join(s, ", ")
}
