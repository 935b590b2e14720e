package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/placement"
)

// TestGrowAndDrainWhileServing is issue 14's end-to-end demonstration of
// the rebalancer on a real dev cluster: 6 nodes in 3 zones, 4+2, holding
// 1 GiB, with a foreground PUT/GET load running throughout.
//
//   - Growth: 3 nodes are added, one per zone (`shale admin node add`,
//     which starts them under the running dev). Once the rebalance is done,
//     every node holds its capacity share of the shard bytes (±10%); the
//     bytes moved are at most 1.15× the minimum the placement change
//     implies (computed here from placement and the manifests before the
//     change); every object kept ≥ k+1 healthy shards all along (sampled:
//     in fact all k+m, since a move commits before its old shard goes);
//     the load saw no failed request and no wrong byte.
//   - Drain: 2 nodes are drained. Their shards move elsewhere, they end
//     out and holding nothing (meta's node→shard index is empty), and
//     every object reads back.
func TestGrowAndDrainWhileServing(t *testing.T) {
	const (
		k, m       = 4, 2
		objectSize = 1 << 20
		objects    = 1024 // 1 GiB of objects (1.5 GiB of shards)
		bucket     = "grow"
	)
	c := startDev(t, opts{nodes: 6, zones: 3, k: k, m: m, downAfter: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	mc := chaosMetaClient(t, c)
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}

	// 1 GiB: 1 MiB objects, so that 1024 segments spread the shards evenly
	// enough for a ±10% share per node to be a fair test of placement.
	start := time.Now()
	sums := make([][32]byte, objects)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= objects {
					return
				}
				body := seededBody(uint64(i), objectSize)
				sums[i] = sha256.Sum256(body)
				if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("o/%04d", i)), Body: bytes.NewReader(body)}); err != nil {
					errs <- fmt.Errorf("put %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("loaded %d MiB in %s", objects*objectSize>>20, time.Since(start).Round(time.Millisecond))

	load := startForegroundLoad(ctx, t, c, bucket)
	sampler := startHealthSampler(ctx, t, c)

	// Growth: the manifests before the change, and the map after it, give
	// the minimum any rebalancer must move.
	before := allManifests(ctx, t, mc, bucket, "o/")
	rb0 := rebalanceStats(t, c)
	// `shale admin node add` returns once the node is up in the map.
	for _, zone := range []string{"zone-1", "zone-2", "zone-3"} {
		if _, err := c.Admin("node", "add", "--zone", zone); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	mp, err := cluster.NewMap(st.Epoch, st.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	if up := len(mp.InState(cluster.Up)); up != 9 {
		t.Fatalf("%d nodes up after adding 3 to 6", up)
	}
	minBytes := minimalMoveBytes(t, mp, before)
	t.Logf("placement change 6 → 9 nodes: at least %d MiB of shards must move", minBytes>>20)
	if minBytes == 0 {
		t.Fatal("the growth moves nothing in placement: the test would show nothing")
	}
	moveStart := time.Now()
	rb := waitRebalanced(t, c, rb0, 8*time.Minute)
	moved := rb.BytesMoved - rb0.BytesMoved
	t.Logf("rebalance moved %d MiB (%d shards of %d objects) in %s; placement's minimum %d MiB (×%.3f)",
		moved>>20, rb.ShardsMoved-rb0.ShardsMoved, rb.ObjectsMoved-rb0.ObjectsMoved, time.Since(moveStart).Round(time.Second), minBytes>>20, float64(moved)/float64(minBytes))
	if moved < minBytes || float64(moved) > 1.15*float64(minBytes) {
		t.Errorf("moved %d bytes; placement's minimum is %d (want between 1× and 1.15×)", moved, minBytes)
	}
	checkCapacityShares(ctx, t, c, mc, bucket)

	// Drain 2 nodes (of different zones) while the load goes on.
	for _, id := range []string{"node-2", "node-7"} {
		if _, err := c.Admin("drain", id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"node-2", "node-7"} {
		c.WaitNodeState(t, id, cluster.Out, 5*time.Minute)
		sks, err := mc.NodeShards(ctx, cluster.NodeID(id), "", 10)
		if err != nil || len(sks) != 0 {
			t.Fatalf("drained %s still holds %v (%v)", id, sks, err)
		}
	}
	t.Logf("drained node-2 and node-7")
	// Drained is removable: once its process is stopped, node-2 leaves the
	// map (a node still holding shards, node-1, is refused).
	c.KillNode(t, "node-2")
	if _, err := c.Admin("remove", "node-1"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("remove of a node in use: %v", err)
	}
	c.WaitFor(t, "node-2 removed", time.Minute, func() (bool, string) {
		if _, err := c.Admin("remove", "node-2"); err != nil {
			return false, err.Error()
		}
		_, _, err := c.StatusNode("node-2")
		return err != nil, "node-2 still in admin status"
	})

	fg := load.stop()
	minHealthy := sampler.stop()
	t.Logf("foreground: %d PUTs, %d GETs, %d failed, %d wrong; fewest healthy shards beyond k sampled: %d (%d samples)",
		fg.puts, fg.gets, fg.failed, fg.wrong, minHealthy.min, minHealthy.samples)
	if fg.failed != 0 || fg.wrong != 0 || fg.puts == 0 || fg.gets == 0 {
		t.Errorf("foreground load: %+v (first error: %v)", fg, fg.firstErr)
	}
	if minHealthy.samples < 3 || minHealthy.min < 1 {
		t.Errorf("fewest healthy shards beyond k of any object sampled: %d over %d samples, want ≥ 1 (k+1 healthy)", minHealthy.min, minHealthy.samples)
	}

	// Every object reads back byte for byte.
	for i := range objects {
		out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("o/%04d", i))})
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, out.Body)
		out.Body.Close()
		if err != nil || [32]byte(h.Sum(nil)) != sums[i] {
			t.Fatalf("get %d: wrong bytes (%v)", i, err)
		}
	}
}

// seededBody is n bytes determined by seed.
func seededBody(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// allManifests reads the manifest of every key under prefix.
func allManifests(ctx context.Context, t *testing.T, mc *metaremote.Client, bucket, prefix string) []meta.Manifest {
	t.Helper()
	var out []meta.Manifest
	after := ""
	for {
		res, err := mc.List(ctx, bucket, meta.ListOptions{Prefix: prefix, After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			m, err := mc.Get(ctx, bucket, o.Key)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		if !res.Truncated {
			return out
		}
		after = res.NextAfter
	}
}

// minimalMoveBytes is what placement on mp says must move of ms: per
// segment, the bytes of the shards on nodes outside the set Place chooses.
func minimalMoveBytes(t *testing.T, mp *cluster.Map, ms []meta.Manifest) int64 {
	t.Helper()
	p := placement.NewPlanner(mp)
	var total int64
	for _, m := range ms {
		for _, seg := range m.Segments {
			target, err := p.Place(fmt.Sprintf("%s.%d", m.VersionID, seg.Number), seg.K, len(seg.Shards)-seg.K)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range seg.Shards {
				if !slices.Contains(target, r.Node) {
					total += r.Size
				}
			}
		}
	}
	return total
}

// rebalanceStats is the rebalancer's figures as admin status shows them.
func rebalanceStats(t *testing.T, c *Cluster) meta.RebalanceStats {
	t.Helper()
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Repair == nil {
		return meta.RebalanceStats{}
	}
	return st.Repair.Rebalance
}

// waitRebalanced waits until the rebalancer has moved something since
// rb0 and is idle again, logging its progress as status shows it.
func waitRebalanced(t *testing.T, c *Cluster, rb0 meta.RebalanceStats, timeout time.Duration) meta.RebalanceStats {
	t.Helper()
	var rb meta.RebalanceStats
	last := time.Time{}
	c.WaitFor(t, "the rebalance to finish", timeout, func() (bool, string) {
		rb = rebalanceStats(t, c)
		why := fmt.Sprintf("rebalance %s: %d objects (%d MiB) to move, %.1f MB/s, ETA %.0fs, moved %d MiB",
			rb.State, rb.ObjectsToMove, rb.BytesToMove>>20, rb.RateBytesPerSec/1e6, rb.ETASeconds, (rb.BytesMoved-rb0.BytesMoved)>>20)
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			t.Log(why)
		}
		return rb.State == "idle" && rb.BytesMoved > rb0.BytesMoved, why
	})
	return rb
}

// checkCapacityShares checks that every up node holds its capacity share
// of the bucket's shard bytes (meta's view: the manifests), ±10%.
func checkCapacityShares(ctx context.Context, t *testing.T, c *Cluster, mc *metaremote.Client, bucket string) {
	t.Helper()
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	held := map[cluster.NodeID]int64{}
	var total int64
	for _, m := range allManifests(ctx, t, mc, bucket, "") {
		for _, seg := range m.Segments {
			for _, r := range seg.Shards {
				held[r.Node] += r.Size
				total += r.Size
			}
		}
	}
	var weight float64
	for _, n := range st.Nodes {
		if n.State == cluster.Up {
			weight += n.Weight()
		}
	}
	var lines []string
	for _, n := range st.Nodes {
		if n.State != cluster.Up {
			continue
		}
		share := n.Weight() / weight
		got := float64(held[n.ID]) / float64(total)
		lines = append(lines, fmt.Sprintf("%s %s: %.1f%% of the bytes, share %.1f%% (×%.3f)", n.ID, n.Domain.Zone, 100*got, 100*share, got/share))
		if got < 0.9*share || got > 1.1*share {
			t.Errorf("%s holds %.2f%% of the shard bytes; its capacity share is %.2f%% (±10%%)", n.ID, 100*got, 100*share)
		}
	}
	sort.Strings(lines)
	t.Logf("shard bytes by node after the rebalance:\n  %s", strings.Join(lines, "\n  "))
}

// foreground is a PUT/GET load's outcome.
type foreground struct {
	puts, gets, failed, wrong int64
	firstErr                  error
}

type foregroundLoad struct {
	stopf func() foreground
}

func (l foregroundLoad) stop() foreground { return l.stopf() }

// startForegroundLoad runs 2 clients that each PUT a new object of 16–512
// KiB and GET one written before, checking its bytes, every 50 ms or so,
// until stopped.
func startForegroundLoad(ctx context.Context, t *testing.T, c *Cluster, bucket string) foregroundLoad {
	t.Helper()
	lctx, cancel := context.WithCancel(ctx)
	var (
		mu  sync.Mutex
		res foreground
		wg  sync.WaitGroup
	)
	fail := func(wrong bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if wrong {
			res.wrong++
		} else {
			res.failed++
		}
		if res.firstErr == nil {
			res.firstErr = err
		}
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int
			for i := 0; lctx.Err() == nil; i++ {
				// A steady load, not a flood: about 10 PUTs and 10 GETs
				// a second per client on an idle machine.
				select {
				case <-lctx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				seed := uint64(w)<<32 | uint64(i)
				size := 16<<10 + int(seed*7919%(496<<10))
				body := seededBody(seed, size)
				key := fmt.Sprintf("fg/%d/%06d", w, i)
				_, err := c.S3.PutObject(lctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
				if lctx.Err() != nil {
					return
				}
				if err != nil {
					fail(false, fmt.Errorf("put %s: %w", key, err))
					continue
				}
				mu.Lock()
				res.puts++
				mu.Unlock()
				mine = append(mine, i)
				j := mine[int(seed*31)%len(mine)]
				jseed := uint64(w)<<32 | uint64(j)
				want := seededBody(jseed, 16<<10+int(jseed*7919%(496<<10)))
				jkey := fmt.Sprintf("fg/%d/%06d", w, j)
				out, err := c.S3.GetObject(lctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(jkey)})
				if lctx.Err() != nil {
					return
				}
				if err != nil {
					fail(false, fmt.Errorf("get %s: %w", jkey, err))
					continue
				}
				got, err := io.ReadAll(out.Body)
				out.Body.Close()
				switch {
				case lctx.Err() != nil:
					return
				case err != nil:
					fail(false, fmt.Errorf("get %s: %w", jkey, err))
				case !bytes.Equal(got, want):
					fail(true, fmt.Errorf("get %s: wrong bytes", jkey))
				default:
					mu.Lock()
					res.gets++
					mu.Unlock()
				}
			}
		}()
	}
	return foregroundLoad{stopf: func() foreground {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return res
	}}
}

// healthSample is what a health sampler saw.
type healthSample struct {
	min, samples int
}

type healthSampler struct{ stopf func() healthSample }

func (s healthSampler) stop() healthSample { return s.stopf() }

// startHealthSampler reads admin status about once a second and keeps the
// fewest spare shards (healthy shards beyond k: the same measure for
// coded objects and small objects' copies) any object had.
func startHealthSampler(ctx context.Context, t *testing.T, c *Cluster) healthSampler {
	t.Helper()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	res := healthSample{min: 1 << 30}
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if st, err := c.Status(); err == nil {
				res.samples++
				for sp, n := range st.ObjectsBySpareShards {
					if n > 0 && sp < res.min {
						res.min = sp
					}
				}
			}
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return healthSampler{stopf: func() healthSample {
		cancel()
		<-done
		return res
	}}
}
