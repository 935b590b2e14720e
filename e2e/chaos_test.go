package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
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

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// TestDevClusterChaos is the repair issue's end-to-end demonstration: a real
// 8-node, 4-zone, 4+2 dev cluster takes a few hundred objects from
// concurrent uploaders while a node is SIGKILLed, a second one is SIGKILLed
// while the first one's shards are being repaired, and the meta leader is
// SIGKILLed during repair and restarted: another replica leads and finishes
// the repair, the restarted one catches up as a follower, and exactly one
// replica runs the leader-only work. A reader checks acknowledged
// objects all along. Repair must bring every object back to k+m shards that
// obey the spread rules on the live map; then m more nodes are SIGKILLed and
// every acknowledged object must still read back byte for byte.
//
// Random choices (sizes, victims, kill moments) come from a seed the test
// prints; SHALE_SEED=N replays them (process timing still varies).
func TestDevClusterChaos(t *testing.T) {
	const (
		nodes, zones, k, m = 8, 4, 4, 2
		downAfter          = time.Second
		outAfter           = 3 * time.Second
		bucket             = "chaos"
		uploaders          = 3
		smallObjects       = 260 // 0 B – 256 KiB
		largeObjects       = 6   // 1 – 8 MiB
		// Repair is throttled so that the second kill and the meta kill
		// land while repair is still under way; objects at k shards bypass
		// the throttle.
		repairRate = 4 << 20
	)
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x5ca1e))
	tl := newChaosTimeline(t)

	c := startDev(t, opts{nodes: nodes, zones: zones, k: k, m: m, downAfter: downAfter, outAfter: outAfter,
		extra: []string{"--repair-rate", strconv.Itoa(repairRate)}})
	mc := chaosMetaClient(t, c)
	t.Cleanup(func() { chaosDiagnose(t, c, mc, tl) })
	tl.event("cluster up: %d nodes in %d zones, %d+%d, down-after %v, out-after %v", nodes, zones, k, m, downAfter, outAfter)

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}

	// The objects to upload, in a random order.
	var plan []chaosObject
	var planned int64
	for i := range smallObjects + largeObjects {
		var size int64
		switch {
		case i >= smallObjects:
			size = 1<<20 + rng.Int64N(7<<20+1)
		case i%50 == 0:
			size = 0
		case i%10 == 0:
			size = rng.Int64N(1024) // includes 0 B
		default:
			size = rng.Int64N(256<<10 + 1)
		}
		p := payload{seed: seed*1_000_003 + uint64(i), size: size}
		plan = append(plan, chaosObject{key: fmt.Sprintf("obj/%04d-%d", i, size), p: p})
		planned += size
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	tl.event("uploading %d objects (%.1f MiB) with %d uploaders", len(plan), float64(planned)/(1<<20), uploaders)

	acked := &chaosAcked{}
	outages := &chaosOutages{}
	// After the plan, small objects keep trickling in until meta has been
	// killed and restarted, so every failure meets uploads in flight.
	trickle := func(i int) chaosObject {
		p := payload{seed: seed*1_000_003 + uint64(len(plan)+i), size: int64(chaosRand64(seed, i) % (64<<10 + 1))}
		return chaosObject{key: fmt.Sprintf("trickle/%04d-%d", i, p.size), p: p}
	}
	stopTrickle := make(chan struct{})
	up := chaosUpload(ctx, t, c, bucket, plan, trickle, stopTrickle, uploaders, acked)
	rd := chaosStartReader(ctx, c, bucket, acked, outages, seed)

	live := map[string]bool{}
	var order []string
	for _, n := range c.File.Nodes {
		live[n.ID] = true
		order = append(order, n.ID)
	}
	pick := func() string {
		var ids []string
		for _, id := range order {
			if live[id] {
				ids = append(ids, id)
			}
		}
		id := ids[rng.IntN(len(ids))]
		live[id] = false
		return id
	}

	// 1. A node dies at a random moment while uploads run.
	killAt := len(plan)/5 + rng.IntN(len(plan)*2/5)
	c.WaitFor(t, fmt.Sprintf("%d acknowledged uploads", killAt), 2*time.Minute, func() (bool, string) {
		n := acked.len()
		return n >= killAt || up.finished(), fmt.Sprintf("%d acknowledged", n)
	})
	first := pick()
	c.KillNode(t, first)
	tl.event("SIGKILL %s (%s) after %d acknowledged uploads", first, c.node(t, first).Zone, acked.len())

	// 2. It goes out, repair starts; a second node dies mid-repair.
	chaosWaitRepairStarted(ctx, t, c, mc, tl, first)
	second := pick()
	c.KillNode(t, second)
	tl.event("SIGKILL %s (%s) while %s's shards are being repaired", second, c.node(t, second).Zone, first)

	// 3. The second goes out and its repair starts; meta dies and comes back.
	chaosWaitRepairStarted(ctx, t, c, mc, tl, second)
	outages.begin()
	lead := c.MetaLeader(t, 30*time.Second)
	c.KillMetaReplica(t, lead.ID)
	tl.event("SIGKILL the meta leader %s during repair", lead.ID)
	next := c.MetaLeader(t, 30*time.Second)
	if next.ID == lead.ID {
		t.Fatalf("%s still leads after its SIGKILL", lead.ID)
	}
	tl.event("%s leads", next.ID)
	time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
	c.RestartMetaReplica(t, lead.ID)
	tl.event("%s restarted with its cluster.json arguments", lead.ID)
	// The gateway refreshes its cached map and reconnects; give it a moment
	// before failed reads count again.
	outages.end(3 * time.Second)
	restartedAt := acked.len()
	c.WaitFor(t, "uploads acknowledged again after the meta restart", 30*time.Second, func() (bool, string) {
		return acked.len() >= restartedAt+20, fmt.Sprintf("%d acknowledged since", acked.len()-restartedAt)
	})
	close(stopTrickle)

	// 4. Uploads end; repair brings every object back to k+m.
	up.wait(t)
	tl.event("uploads done: %d acknowledged, %d failed (%d during the meta outage)",
		acked.len(), up.failed.Load(), up.failedInOutage(outages))
	if acked.len() < len(plan)/2 {
		t.Fatalf("only %d of %d uploads were acknowledged", acked.len(), len(plan))
	}
	c.WaitFor(t, "every object at k+m healthy shards and an empty repair queue", 90*time.Second, func() (bool, string) {
		st, err := mc.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return chaosAllHealthy(st, m), chaosSummary(st)
	})
	st, err := c.Status() // the operator's view, through `shale admin status --json`
	if err != nil {
		t.Fatal(err)
	}
	if !chaosAllHealthy(st, m) {
		t.Fatalf("admin status disagrees: %s", chaosSummary(st))
	}
	tl.event("repair done: %s", chaosSummary(st))
	// The restarted replica follows and has caught up; the leader-only
	// work (membership, repair) runs on exactly one replica.
	rs := waitCaughtUp(t, c, lead.ID)
	tl.event("%s follows %s, caught up at applied index %d", lead.ID, rs.LeaderID, rs.AppliedIndex)
	tl.event("leader work runs exactly once: %s", waitLeaderWorkOnce(t, c, ""))
	// Time-to-repair is reported once the pass that finished the episode
	// ends; /metrics shows the same figures.
	c.WaitFor(t, "repair to report a time-to-repair", 30*time.Second, func() (bool, string) {
		st, err := mc.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return st.Repair != nil && st.Repair.LastTimeToRepairSeconds > 0, chaosSummary(st)
	})
	metrics := chaosMetrics(t, c)
	if v, ok := metrics["shale_repair_last_time_to_repair_seconds"]; !ok || v <= 0 {
		t.Errorf("/metrics: shale_repair_last_time_to_repair_seconds = %v (present %v), want > 0", v, ok)
	}
	if v := metrics[fmt.Sprintf(`shale_objects_by_spare_shards{spare="%d"}`, m)]; int64(v) != st.Objects {
		t.Errorf("/metrics: %d objects at %d spare shards, status says %d objects", int64(v), m, st.Objects)
	}
	if v := metrics["shale_repair_queue_objects"]; v != 0 {
		t.Errorf("/metrics: repair queue %v, want 0", v)
	}
	tl.event("time to repair %.1fs (from the first node going out, across meta's restart); /metrics agrees with status",
		metrics["shale_repair_last_time_to_repair_seconds"])

	// 5. The spread rules hold on the live map for every acknowledged object.
	objs := acked.all()
	mp, err := mc.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	maxPerZone := (k + m + zones - 1) / zones
	for _, o := range objs {
		man, err := mc.Get(ctx, bucket, o.key)
		if err != nil {
			t.Errorf("manifest of %s: %v", o.key, err)
			continue
		}
		if err := chaosCheckSpread(man, mp, maxPerZone); err != nil {
			t.Errorf("%s: %v", o.key, err)
		}
	}
	tl.event("spread checked on the live map for %d objects: distinct up nodes, at most %d per zone", len(objs), maxPerZone)

	rd.stop()
	tl.event("background reader: %d reads ok, %d failed during the meta outage", rd.ok.Load(), rd.tolerated.Load())
	if rd.ok.Load() == 0 {
		t.Error("the background reader never completed a read")
	}
	if t.Failed() {
		t.FailNow()
	}

	// 6. m more nodes die: every acknowledged object must still read whole.
	third, fourth := pick(), pick()
	c.KillNode(t, third)
	c.KillNode(t, fourth)
	tl.event("SIGKILL %s (%s) and %s (%s): %d nodes left", third, c.node(t, third).Zone, fourth, c.node(t, fourth).Zone, nodes-4)
	lost, wrong := chaosReadAll(ctx, t, c, bucket, objs, 3)
	tl.event("read all %d acknowledged objects: %d lost, %d wrong", len(objs), lost, wrong)
	if lost != 0 || wrong != 0 {
		t.Errorf("after losing %d more nodes: %d of %d objects unreadable, %d with wrong bytes", m, lost, len(objs), wrong)
	}
	if st, err := mc.Status(ctx); err == nil && st.Repair != nil {
		t.Logf("last time to repair: %.1fs; repaired %d shards, %d bytes, %d objects; %d conflicts, %d failures",
			st.Repair.LastTimeToRepairSeconds, st.Repair.ShardsRepaired, st.Repair.BytesRepaired,
			st.Repair.ObjectsRepaired, st.Repair.Conflicts, st.Repair.Failures)
	}
}

// TestDevClusterBitrot flips bytes in shard files on disk and shows that
// reads stay correct (the gateway reads around the corruption and reports
// it), that repair rewrites every corrupted shard, and that a corruption no
// read touches is found by the node's scrubber and repaired too. Its nodes
// keep every shard in a file (--inline-max 0): rot inside a node's pebble
// index, where small shards live by default, is pebble's to detect
// (storage's TestInlineBitrot and TestIndexCorruption cover what the node
// does then).
func TestDevClusterBitrot(t *testing.T) {
	const (
		nodes, zones, k, m = 6, 3, 4, 2
		bucket             = "bitrot"
		objects            = 30
	)
	seed := chaosSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0xb17))
	tl := newChaosTimeline(t)

	c := startDev(t, opts{nodes: nodes, zones: zones, k: k, m: m, downAfter: 2 * time.Second,
		extra: []string{"--scrub-rate", strconv.Itoa(64 << 20), "--inline-max", "0"}})
	mc := chaosMetaClient(t, c)
	t.Cleanup(func() { chaosDiagnose(t, c, mc, tl) })
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}

	// objs[objects] is the object no GET touches before repair.
	var objs []chaosObject
	for i := range objects + 1 {
		var size int64
		switch i % 3 {
		case 0:
			size = 1 + rng.Int64N(64<<10)
		case 1:
			size = 64<<10 + rng.Int64N(1<<20)
		default:
			size = 1<<20 + rng.Int64N(2<<20)
		}
		o := chaosObject{key: fmt.Sprintf("rot/%02d-%d", i, size), p: payload{seed: seed*7919 + uint64(i), size: size}}
		putObject(ctx, t, c, bucket, o.key, o.p)
		o.sha, _ = digests(o.p)
		objs = append(objs, o)
	}
	unread := objs[objects]
	objs = objs[:objects]
	tl.event("uploaded %d objects", objects+1)

	// Three nodes get corrupted shards; the other three stay clean.
	var ids []string
	for _, n := range c.File.Nodes {
		ids = append(ids, n.ID)
	}
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	rotNodes, cleanNodes := ids[:3], ids[3:]

	// Corrupt data shards (the ones a GET reads) of two objects in three,
	// one or two shards each, on the rot nodes; the first in a header.
	var rots []chaosRot
	for j, o := range objs {
		if j%3 == 2 {
			continue
		}
		man, err := mc.Get(ctx, bucket, o.key)
		if err != nil {
			t.Fatal(err)
		}
		want := 1 + j%2
		for r := range rotNodes {
			node := rotNodes[(j+r)%len(rotNodes)]
			if want == 0 {
				break
			}
			si, ref, ok := chaosShardOn(man, node, func(idx int) bool { return idx < man.Segments[0].K }) // a small object's k is 1
			if !ok {
				continue
			}
			rot := chaosCorrupt(t, c, rng, o.key, si, ref, len(rots) == 0)
			rots = append(rots, rot)
			want--
		}
	}
	perNode := map[cluster.NodeID]int{}
	for _, r := range rots {
		perNode[r.ref.Node]++
	}
	tl.event("corrupted %d data shards on disk (%v): %s", len(rots), perNode, chaosRotList(rots))
	if len(perNode) != 3 {
		t.Fatalf("corruptions landed on %d nodes, want 3", len(perNode))
	}

	// Every GET returns the right bytes.
	for _, o := range objs {
		if wrong, err := chaosGet(ctx, c, bucket, o); err != nil {
			t.Errorf("get %s with corrupted shards (wrong bytes: %v): %v", o.key, wrong, err)
		}
	}
	tl.event("read all %d objects around the corruption", len(objs))

	// The reads reported the corruption (nothing else can have: the nodes'
	// scrubbers made their one pass at start, on empty stores); repair
	// rewrites every corrupted shard.
	c.WaitFor(t, "repair of the shards the reads found corrupt", 60*time.Second, chaosRepairedCond(ctx, mc, bucket, rots, m))
	tl.event("repair replaced every corrupted shard the reads found")

	// A corruption only the scrubber can find: a parity shard of an object
	// nobody reads. Its node restarts with a short scrub interval (a node
	// scrubs at start, then every interval).
	man, err := mc.Get(ctx, bucket, unread.key)
	if err != nil {
		t.Fatal(err)
	}
	var scrubRot chaosRot
	found := false
	// Prefer a node that already had rot; any node holding a parity shard of
	// it will do (with 2 parity shards over 6 nodes, both miss the three rot
	// nodes one time in five).
	for _, node := range append(slices.Clone(rotNodes), cleanNodes...) {
		if si, ref, ok := chaosShardOn(man, node, func(idx int) bool { return idx >= man.Segments[0].K }); ok {
			scrubRot, found = chaosCorrupt(t, c, rng, unread.key, si, ref, false), true
			break
		}
	}
	if !found {
		t.Fatalf("no parity shard of %s on %v", unread.key, rotNodes)
	}
	sn := string(scrubRot.ref.Node)
	c.KillNode(t, sn)
	c.restart(t, sn, append(slices.Clone(c.node(t, sn).Args), "--scrub-interval", "1s"))
	tl.event("corrupted parity shard %d of unread %s on %s, restarted %s with --scrub-interval 1s", scrubRot.ref.Index, unread.key, sn, sn)
	c.WaitFor(t, "scrubber-found corruption repaired", 60*time.Second, chaosRepairedCond(ctx, mc, bucket, []chaosRot{scrubRot}, m))
	tl.event("repair replaced the shard the scrubber found")
	rots = append(rots, scrubRot)

	gone := 0
	for _, r := range rots {
		if _, err := os.Stat(r.path); errors.Is(err, os.ErrNotExist) {
			gone++
		}
	}
	tl.event("%d of %d corrupted files already deleted by garbage collection (the rest wait out the grace period)", gone, len(rots))

	// Only rot nodes and one clean node are left: every object needs the
	// rewritten shards to be read.
	var victims []string
	for _, n := range cleanNodes {
		if n != sn && len(victims) < 2 {
			victims = append(victims, n)
		}
	}
	c.KillNode(t, victims[0])
	c.KillNode(t, victims[1])
	tl.event("SIGKILL clean nodes %s and %s", victims[0], victims[1])
	lost, wrong := chaosReadAll(ctx, t, c, bucket, append(objs, unread), 2)
	tl.event("read all %d objects from the 4 nodes left: %d lost, %d wrong", len(objs)+1, lost, wrong)
	if lost != 0 || wrong != 0 {
		t.Errorf("%d objects unreadable, %d with wrong bytes after repair and the loss of 2 clean nodes", lost, wrong)
	}
}

// chaosRand64 is a stateless pseudo-random number for (seed, i) (splitmix64), for
// choices made off the test's goroutine.
func chaosRand64(seed uint64, i int) uint64 {
	z := seed + uint64(i+1)*0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// chaosSeed is the seed of a test's random choices: SHALE_SEED, or the clock.
func chaosSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SHALE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SHALE_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with SHALE_SEED=%d)", seed, seed)
	return seed
}

// chaosTimeline records what a test did, relative to its start.
type chaosTimeline struct {
	t     testing.TB
	start time.Time

	mu     sync.Mutex
	events []string
}

func newChaosTimeline(t testing.TB) *chaosTimeline {
	return &chaosTimeline{t: t, start: time.Now()}
}

func (tl *chaosTimeline) event(format string, args ...any) {
	line := fmt.Sprintf("t+%5.1fs: %s", time.Since(tl.start).Seconds(), fmt.Sprintf(format, args...))
	tl.mu.Lock()
	tl.events = append(tl.events, line)
	tl.mu.Unlock()
	tl.t.Log(line)
}

func (tl *chaosTimeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.events, "\n")
}

// chaosObject is one object a test wrote: its key, content and SHA-256.
type chaosObject struct {
	key string
	p   payload
	sha string // hex SHA-256, set once acknowledged
}

// chaosAcked is the set of acknowledged objects, shared by uploaders and
// readers.
type chaosAcked struct {
	mu   sync.Mutex
	objs []chaosObject
}

func (a *chaosAcked) add(o chaosObject) {
	a.mu.Lock()
	a.objs = append(a.objs, o)
	a.mu.Unlock()
}

func (a *chaosAcked) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.objs)
}

func (a *chaosAcked) pick(r *rand.Rand) (chaosObject, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.objs) == 0 {
		return chaosObject{}, false
	}
	return a.objs[r.IntN(len(a.objs))], true
}

func (a *chaosAcked) all() []chaosObject {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.objs)
}

// chaosOutages are the windows in which meta was deliberately down, so a
// request that failed then is excused.
type chaosOutages struct {
	mu      sync.Mutex
	windows [][2]time.Time // [start, end); end zero while open
}

func (o *chaosOutages) begin() {
	o.mu.Lock()
	o.windows = append(o.windows, [2]time.Time{time.Now()})
	o.mu.Unlock()
}

// end closes the open window grace from now.
func (o *chaosOutages) end(grace time.Duration) {
	o.mu.Lock()
	o.windows[len(o.windows)-1][1] = time.Now().Add(grace)
	o.mu.Unlock()
}

// overlaps reports whether [from, to] meets an outage window.
func (o *chaosOutages) overlaps(from, to time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.windows {
		if !to.Before(w[0]) && (w[1].IsZero() || from.Before(w[1])) {
			return true
		}
	}
	return false
}

// chaosUploads is a running set of uploaders.
type chaosUploads struct {
	wg     sync.WaitGroup
	done   chan struct{}
	failed atomic.Int64

	mu       sync.Mutex
	failures []chaosFailure
}

type chaosFailure struct {
	key      string
	from, to time.Time
	err      error
}

func (u *chaosUploads) finished() bool {
	select {
	case <-u.done:
		return true
	default:
		return false
	}
}

// wait waits (bounded) for the uploaders and logs the first failures.
func (u *chaosUploads) wait(t testing.TB) {
	t.Helper()
	select {
	case <-u.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("uploads did not finish within 3m")
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, f := range u.failures {
		if i == 5 {
			t.Logf("… and %d more failed uploads", len(u.failures)-5)
			break
		}
		t.Logf("upload of %s failed (not acknowledged): %v", f.key, f.err)
	}
}

func (u *chaosUploads) failedInOutage(o *chaosOutages) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, f := range u.failures {
		if o.overlaps(f.from, f.to) {
			n++
		}
	}
	return n
}

// chaosUpload starts n uploaders that PUT the plan in order with the SDK,
// then a trickle of objects made by more (one every trickleEvery) until
// stop is closed. An object enters acked (with its SHA-256) only once its
// PUT returned success with the right ETag.
func chaosUpload(ctx context.Context, t testing.TB, c *Cluster, bucket string, plan []chaosObject, more func(i int) chaosObject,
	stop <-chan struct{}, n int, acked *chaosAcked) *chaosUploads {
	const trickleEvery, trickleMax = 40 * time.Millisecond, 2000
	u := &chaosUploads{done: make(chan struct{})}
	next := make(chan chaosObject)
	u.wg.Add(n + 1)
	go func() {
		defer u.wg.Done()
		defer close(next)
		for _, o := range plan {
			select {
			case next <- o:
			case <-ctx.Done():
				return
			}
		}
		tick := time.NewTicker(trickleEvery)
		defer tick.Stop()
		for i := range trickleMax {
			select {
			case <-tick.C:
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
			select {
			case next <- more(i):
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	for range n {
		go func() {
			defer u.wg.Done()
			for o := range next {
				from := time.Now()
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				out, err := c.S3.PutObject(pctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(o.key),
					Body: o.p.Reader(), ContentLength: aws.Int64(o.p.size),
				})
				cancel()
				if err == nil && aws.ToString(out.ETag) != md5ETag(o.p) {
					err = fmt.Errorf("ETag %s, want %s", aws.ToString(out.ETag), md5ETag(o.p))
				}
				if err != nil {
					u.failed.Add(1)
					u.mu.Lock()
					u.failures = append(u.failures, chaosFailure{o.key, from, time.Now(), err})
					u.mu.Unlock()
					continue
				}
				o.sha, _ = digests(o.p)
				acked.add(o)
			}
		}()
	}
	go func() { u.wg.Wait(); close(u.done) }()
	t.Cleanup(func() { <-u.done }) // the test's ctx ends them
	return u
}

// chaosReader GETs random acknowledged objects until stopped.
type chaosReader struct {
	cancel    context.CancelFunc
	done      chan struct{}
	ok        atomic.Int64
	tolerated atomic.Int64
	t         testing.TB
}

func (r *chaosReader) stop() {
	r.cancel()
	<-r.done
}

// chaosStartReader reads acknowledged objects continuously: wrong bytes are
// always an error; a failed read is one unless it overlapped a meta outage.
func chaosStartReader(ctx context.Context, c *Cluster, bucket string, acked *chaosAcked, outages *chaosOutages, seed uint64) *chaosReader {
	t := c.t
	rctx, cancel := context.WithCancel(ctx)
	r := &chaosReader{cancel: cancel, done: make(chan struct{}), t: t}
	rng := rand.New(rand.NewPCG(seed, 0x4ead))
	go func() {
		defer close(r.done)
		for rctx.Err() == nil {
			o, ok := acked.pick(rng)
			if !ok {
				select {
				case <-rctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			from := time.Now()
			wrong, err := chaosGet(rctx, c, bucket, o)
			switch {
			case err == nil:
				r.ok.Add(1)
			case rctx.Err() != nil:
			case wrong:
				t.Errorf("t=%s: background read of %s returned wrong bytes: %v", from.Format("15:04:05.000"), o.key, err)
			case outages.overlaps(from, time.Now()):
				r.tolerated.Add(1)
				select { // don't spin against a dead meta
				case <-rctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			default:
				t.Errorf("t=%s: background read of acknowledged %s failed: %v", from.Format("15:04:05.000"), o.key, err)
			}
		}
	}()
	t.Cleanup(r.stop) // after the test's ctx is done
	return r
}

// chaosGet GETs o and checks its length and SHA-256. wrong is true when the
// gateway answered with content that is not o's (as opposed to failing).
func chaosGet(ctx context.Context, c *Cluster, bucket string, o chaosObject) (wrong bool, err error) {
	gctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := c.S3.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
	if err != nil {
		return false, err
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return false, fmt.Errorf("body after %d bytes: %w", n, err)
	}
	if n != o.p.size {
		return true, fmt.Errorf("body is %d bytes, want %d", n, o.p.size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != o.sha {
		// Say where: compareBody streams the object again against the payload.
		detail := ""
		if out2, err := c.S3.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)}); err == nil {
			detail = fmt.Sprint("; a second read: ", compareBody(out2.Body, o.p))
			out2.Body.Close()
		}
		return true, fmt.Errorf("body sha256 %s, want %s%s", got, o.sha, detail)
	}
	return false, nil
}

// chaosReadAll reads every object with n readers and counts the failures.
func chaosReadAll(ctx context.Context, t testing.TB, c *Cluster, bucket string, objs []chaosObject, n int) (lost, wrong int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan chaosObject)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				w, err := chaosGet(ctx, c, bucket, o)
				if err == nil {
					continue
				}
				mu.Lock()
				if w {
					wrong++
				} else {
					lost++
				}
				if lost+wrong <= 10 {
					t.Errorf("read %s (%d bytes): %v", o.key, o.p.size, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	return lost, wrong
}

// chaosMetaClient talks to the cluster's meta directly, as gateways do.
func chaosMetaClient(t testing.TB, c *Cluster) *metaremote.Client {
	t.Helper()
	secret, err := peerauth.LoadSecret(c.File.SecretFile)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, m := range c.File.Metas {
		addrs = append(addrs, "http://"+m.Addr)
	}
	return metaremote.NewClient(strings.Join(addrs, ","), secret, &http.Client{Timeout: 20 * time.Second})
}

// chaosWaitRepairStarted waits until node is out and repair is seen at
// work since: shards re-created, or fewer objects below full shards than at
// the worst moment since the node went out. It notes whether repair was
// still under way then (objects below k+m left).
func chaosWaitRepairStarted(ctx context.Context, t testing.TB, c *Cluster, mc *metaremote.Client, tl *chaosTimeline, node string) {
	t.Helper()
	full := c.File.M // spare shards of a whole object, coded or copies
	var st meta.Status
	baseline, worst := int64(-1), int64(0)
	c.WaitFor(t, node+" out and its repair started", 60*time.Second, func() (bool, string) {
		var err error
		st, err = mc.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		if chaosNodeState(st, node) != cluster.Out {
			return false, chaosSummary(st)
		}
		done := int64(0)
		if st.Repair != nil {
			done = st.Repair.ShardsRepaired
		}
		below := chaosBelow(st, full)
		if baseline < 0 {
			baseline, worst = done, below
			tl.event("%s is out: %s", node, chaosSummary(st))
			return false, chaosSummary(st)
		}
		worst = max(worst, below)
		return done > baseline || below < worst, chaosSummary(st)
	})
	tl.event("repair under way: %s", chaosSummary(st))
	if chaosBelow(st, full) == 0 {
		t.Logf("note: repair of %s had already finished when it was seen", node)
	}
}

// chaosBelow counts the objects with fewer than full spare shards (healthy
// beyond k).
func chaosBelow(st meta.Status, full int) int64 {
	var n int64
	for h, cnt := range st.ObjectsBySpareShards {
		if h < full {
			n += cnt
		}
	}
	return n
}

func chaosNodeState(st meta.Status, id string) cluster.State {
	for _, n := range st.Nodes {
		if string(n.ID) == id {
			return n.State
		}
	}
	return cluster.State(255)
}

// chaosAllHealthy: every object has full (m) spare shards — k+m healthy
// shards, or all m+1 copies of a small one — and nothing is queued.
func chaosAllHealthy(st meta.Status, full int) bool {
	for h, n := range st.ObjectsBySpareShards {
		if h != full && n > 0 {
			return false
		}
	}
	return st.RepairQueue == 0
}

func chaosSummary(st meta.Status) string {
	var hs []int
	for h := range st.ObjectsBySpareShards {
		hs = append(hs, h)
	}
	sort.Ints(hs)
	var b strings.Builder
	fmt.Fprintf(&b, "nodes [%s] objects %d by spare shards {", nodeStates(st.Nodes), st.Objects)
	for i, h := range hs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%d", h, st.ObjectsBySpareShards[h])
	}
	fmt.Fprintf(&b, "} queue %d garbage %d", st.RepairQueue, st.Garbage)
	if r := st.Repair; r != nil {
		fmt.Fprintf(&b, " repaired %d shards/%d objects, %d conflicts, %d failures, queue %d B, last ttr %.1fs",
			r.ShardsRepaired, r.ObjectsRepaired, r.Conflicts, r.Failures, r.QueueBytes, r.LastTimeToRepairSeconds)
	}
	return b.String()
}

// chaosCheckSpread checks one manifest against the live map: every shard
// placed, on distinct nodes that are up, no zone holding more than maxZone.
func chaosCheckSpread(man meta.Manifest, mp *cluster.Map, maxZone int) error {
	var errs []error
	for si, seg := range man.Segments {
		seen := map[cluster.NodeID]int{}
		zones := map[string]int{}
		for _, ref := range seg.Shards {
			if ref.Node == "" {
				errs = append(errs, fmt.Errorf("segment %d shard %d unplaced", si, ref.Index))
				continue
			}
			if j, dup := seen[ref.Node]; dup {
				errs = append(errs, fmt.Errorf("segment %d shards %d and %d both on %s", si, j, ref.Index, ref.Node))
			}
			seen[ref.Node] = ref.Index
			n, ok := mp.Node(ref.Node)
			if !ok {
				errs = append(errs, fmt.Errorf("segment %d shard %d on %s, unknown to the map", si, ref.Index, ref.Node))
				continue
			}
			if n.State != cluster.Up {
				errs = append(errs, fmt.Errorf("segment %d shard %d on %s, which is %s", si, ref.Index, ref.Node, n.State))
			}
			zones[n.Domain.Zone]++
		}
		for z, cnt := range zones {
			if cnt > maxZone {
				errs = append(errs, fmt.Errorf("segment %d has %d shards in %s (max %d): %s", si, cnt, z, maxZone, chaosShardNodes(seg)))
			}
		}
	}
	return errors.Join(errs...)
}

func chaosShardNodes(seg meta.Segment) string {
	var s []string
	for _, r := range seg.Shards {
		s = append(s, fmt.Sprintf("%d@%s", r.Index, r.Node))
	}
	return strings.Join(s, " ")
}

// chaosRot is one shard a test corrupted on disk.
type chaosRot struct {
	key    string
	seg    int
	ref    meta.ShardRef
	path   string
	off    int64
	header bool
}

// chaosShardOn finds a shard of man on node whose index passes want.
func chaosShardOn(man meta.Manifest, node string, want func(int) bool) (int, meta.ShardRef, bool) {
	for si, seg := range man.Segments {
		for _, ref := range seg.Shards {
			if string(ref.Node) == node && ref.Size > 0 && want(ref.Index) {
				return si, ref, true
			}
		}
	}
	return 0, meta.ShardRef{}, false
}

// chaosCorrupt flips one byte of the shard's file in place (as bitrot
// would): in a record header when header is set, else in a block.
func chaosCorrupt(t testing.TB, c *Cluster, rng *rand.Rand, key string, si int, ref meta.ShardRef, header bool) chaosRot {
	t.Helper()
	n := c.node(t, string(ref.Node))
	paths, _ := filepath.Glob(filepath.Join(n.Data, "shards", "*", ref.ID))
	if len(paths) != 1 {
		t.Fatalf("shard %s of %s on %s: found %v under %s", ref.ID, key, ref.Node, paths, n.Data)
	}
	path := paths[0]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	var hdr [erasure.RecordHeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatalf("read record header of %s: %v", path, err)
	}
	// Header: u64 checksum | u16 version | u16 index | u32 block length | u64 stripe.
	stride := int64(erasure.RecordHeaderSize) + int64(binary.LittleEndian.Uint32(hdr[12:16]))
	records := (size + stride - 1) / stride
	rec := rng.Int64N(records)
	start := rec * stride
	recLen := min(stride, size-start)
	off := start + rng.Int64N(erasure.RecordHeaderSize)
	if !header {
		off = start + erasure.RecordHeaderSize + rng.Int64N(recLen-erasure.RecordHeaderSize)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= byte(1 + rng.IntN(255))
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return chaosRot{key: key, seg: si, ref: ref, path: path, off: off, header: header}
}

func chaosRotList(rots []chaosRot) string {
	var s []string
	for _, r := range rots {
		where := "block"
		if r.header {
			where = "header"
		}
		s = append(s, fmt.Sprintf("%s shard %d@%s %s byte %d", r.key, r.ref.Index, r.ref.Node, where, r.off))
	}
	return strings.Join(s, "; ")
}

// chaosRepairedCond holds once no manifest references a corrupted shard any
// more, every object is at full shards and the repair queue is empty.
func chaosRepairedCond(ctx context.Context, mc *metaremote.Client, bucket string, rots []chaosRot, full int) func() (bool, string) {
	return func() (bool, string) {
		left := 0
		for _, r := range rots {
			man, err := mc.Get(ctx, bucket, r.key)
			if err != nil {
				return false, err.Error()
			}
			if r.seg < len(man.Segments) && slices.ContainsFunc(man.Segments[r.seg].Shards, func(s meta.ShardRef) bool {
				return s.ID == r.ref.ID && s.Node == r.ref.Node
			}) {
				left++
			}
		}
		st, err := mc.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		return left == 0 && chaosAllHealthy(st, full), fmt.Sprintf("%d of %d corrupted shards still referenced; %s", left, len(rots), chaosSummary(st))
	}
}

// chaosDiagnose logs, when the test failed, the timeline, admin status and
// the repair metrics; the harness then logs the tails of every log.
// With SHALE_E2E_LOGS=DIR set, the cluster's logs are also copied to
// DIR/<test name>/ whatever the outcome.
func chaosDiagnose(t *testing.T, c *Cluster, mc *metaremote.Client, tl *chaosTimeline) {
	t.Logf("timeline:\n%s", tl)
	if dir := os.Getenv("SHALE_E2E_LOGS"); dir != "" {
		chaosKeepLogs(t, c, filepath.Join(dir, t.Name()))
	}
	if !t.Failed() {
		return
	}
	if out, err := c.Admin("status", "--json"); err != nil {
		t.Logf("admin status: %v", err)
	} else {
		var v any
		if json.Unmarshal(out, &v) == nil {
			if b, err := json.MarshalIndent(v, "", " "); err == nil {
				out = b
			}
		}
		t.Logf("admin status --json:\n%s", out)
	}
	if reps, err := mc.BadReports(context.Background(), 20); err == nil && len(reps) > 0 {
		t.Logf("bad reports: %+v", reps)
	}
	if deg, err := mc.Degraded(context.Background(), 20); err == nil && len(deg) > 0 {
		t.Logf("repair queue (first %d): %+v", len(deg), deg)
	}
	cl := &http.Client{Timeout: 5 * time.Second}
	if resp, err := cl.Get("http://" + c.leaderMetrics() + "/metrics"); err == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "shale_") {
				lines = append(lines, l)
			}
		}
		t.Logf("meta /metrics:\n%s", strings.Join(lines, "\n"))
	}
}

// chaosKeepLogs copies the cluster's logs into dir.
func chaosKeepLogs(t *testing.T, c *Cluster, dir string) {
	logs, _ := filepath.Glob(filepath.Join(c.Data, "logs", "*.log"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keep logs: %v", err)
		return
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644)
		}
		if err != nil {
			t.Logf("keep logs: %v", err)
		}
	}
	t.Logf("cluster logs copied to %s", dir)
}

// chaosMetrics scrapes meta's /metrics and returns the shale_* samples by
// their name and labels as written (`name{label="v"}`).
func chaosMetrics(t testing.TB, c *Cluster) map[string]float64 {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + c.MetaLeader(t, 30*time.Second).Metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape meta /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape meta /metrics: %s %v", resp.Status, err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "shale_") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// leaderMetrics is the metrics address of the meta leader, or of the
// first replica when none answers as leader (for diagnostics).
func (c *Cluster) leaderMetrics() string {
	for _, m := range c.File.Metas {
		if st, err := c.ReplicaStatus(m.ID); err == nil && st.State == "leader" {
			return m.Metrics
		}
	}
	if len(c.File.Metas) == 0 {
		return ""
	}
	return c.File.Metas[0].Metrics
}
