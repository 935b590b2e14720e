package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/metatest"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// This file runs raft groups of real `shale meta` processes on loopback,
// without nodes or a gateway: the replicas, their crashes and restarts,
// seen only through the remote client, the replicas' status and hash
// endpoints and their data directories.

// Bounds on the waits of a meta group.
const (
	metaReadyTimeout = 15 * time.Second // one process until "meta listening on"
	metaWaitTimeout  = 30 * time.Second // a leader, a catch-up, a convergence
	metaListenLine   = "meta listening on "
)

// The flags of every replica here. Raft timeouts short, so elections are
// quick, but not so short that a loaded 2-core machine keeps electing.
// Garbage is kept an hour: the leader's collector forgets the garbage of
// nodes the map does not know once it is due, and these tests count the
// garbage queue (there are no nodes).
var metaGroupFlags = []string{"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--leader-lease", "300ms",
	"--garbage-grace", "1h"}

// metaRep is one `shale meta` replica of a metaGroup.
type metaRep struct {
	id, zone  string
	api, raft string // host:port
	data, log string
	args      []string // every start's arguments (a start may add more)
	p         *proc    // the running process; nil or exited when down
}

// metaGroup is a raft group of `shale meta` processes founded together
// (the same --peer list), sharing one secret file. It is stopped when the
// test ends, and its logs are shown if the test failed.
type metaGroup struct {
	t      testing.TB
	secret []byte
	reps   []*metaRep
}

// newMetaGroup starts n founding replicas meta-1…meta-n, each in its own
// zone, with extra flags added to each, and returns once every one serves
// (not once a leader exists: see leader).
func newMetaGroup(t testing.TB, n int, extra ...string) *metaGroup {
	t.Helper()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	secret, err := peerauth.CreateSecret(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	g := &metaGroup{t: t, secret: secret}
	t.Cleanup(g.cleanup)
	// Ports are picked free and then bound by the replicas: another test's
	// process may take one in between. A start that fails that way is
	// retried on new ports, in new data directories (a replica that did
	// start has already bootstrapped the old addresses).
	for attempt := range 3 {
		addrs, err := freePorts(2 * n)
		if err != nil {
			t.Fatal(err)
		}
		g.reps = nil
		var peers []string
		for i := range n {
			api, raftAddr := addrs[2*i], addrs[2*i+1]
			id := fmt.Sprintf("meta-%d", i+1)
			r := &metaRep{id: id, zone: fmt.Sprintf("z%d", i+1), api: api, raft: raftAddr,
				data: filepath.Join(dir, fmt.Sprintf("try%d", attempt), id), log: filepath.Join(dir, fmt.Sprintf("%s.try%d.log", id, attempt))}
			g.reps = append(g.reps, r)
			peers = append(peers, "--peer", fmt.Sprintf("id=%s,addr=%s,raft=%s,zone=%s", r.id, r.api, r.raft, r.zone))
		}
		for _, r := range g.reps {
			r.args = []string{"meta", "--id", r.id, "--data", r.data, "--listen", r.api, "--raft-listen", r.raft,
				"--zone", r.zone, "--secret-file", secretFile, "--metrics-listen", ""}
			r.args = append(r.args, metaGroupFlags...)
			r.args = append(r.args, peers...)
			r.args = append(r.args, extra...)
		}
		if !g.startAllRetryingBind() {
			return g
		}
		t.Logf("attempt %d: a port was taken between picking and binding; starting again on new ports", attempt+1)
	}
	t.Fatal("three attempts to start a meta group lost their ports to other processes")
	return nil
}

// startAllRetryingBind starts every replica and waits until each serves,
// like startAll, except that when one exits because its address was taken
// it stops them all and reports true (the caller picks new ports).
func (g *metaGroup) startAllRetryingBind() (retry bool) {
	g.t.Helper()
	ready := make([]chan struct{}, len(g.reps))
	for i := range g.reps {
		ready[i] = g.launch(i)
	}
	for i, r := range g.reps {
		select {
		case <-ready[i]:
			continue
		case <-r.p.done:
		case <-time.After(metaReadyTimeout):
			g.t.Fatalf("%s not serving within %v\n%s", r.id, metaReadyTimeout, tail(r.log, 20))
		}
		if !strings.Contains(tail(r.log, 20), "address already in use") {
			g.t.Fatalf("%s exited before it served: %v\n%s", r.id, r.p.err, tail(r.log, 20))
		}
		for _, o := range g.reps {
			o.p.stop(stopGrace)
		}
		return true
	}
	return false
}

// startAll starts every replica that is down and waits until each serves.
func (g *metaGroup) startAll() {
	g.t.Helper()
	var ready []chan struct{}
	var idx []int
	for i, r := range g.reps {
		if r.p != nil && !r.p.exited() {
			continue
		}
		ready = append(ready, g.launch(i))
		idx = append(idx, i)
	}
	for j, i := range idx {
		g.awaitListening(i, ready[j])
	}
}

// start starts replica i (down) with its arguments plus extra, and waits
// until it serves.
func (g *metaGroup) start(i int, extra ...string) {
	g.t.Helper()
	g.awaitListening(i, g.launch(i, extra...))
}

func (g *metaGroup) launch(i int, extra ...string) chan struct{} {
	g.t.Helper()
	r := g.reps[i]
	if r.p != nil && !r.p.exited() {
		g.t.Fatalf("%s is already running", r.id)
	}
	ready := make(chan struct{})
	var once sync.Once
	args := append(slices.Clone(r.args), extra...)
	p, err := startProc(r.id, args, r.log, func(line string) {
		if strings.HasPrefix(line, metaListenLine) {
			once.Do(func() { close(ready) })
		}
	})
	if err != nil {
		g.t.Fatalf("shale %s: %v", strings.Join(args, " "), err)
	}
	r.p = p
	return ready
}

func (g *metaGroup) awaitListening(i int, ready chan struct{}) {
	g.t.Helper()
	r := g.reps[i]
	select {
	case <-ready:
	case <-r.p.done:
		g.t.Fatalf("%s exited before it served: %v\n%s", r.id, r.p.err, tail(r.log, 20))
	case <-time.After(metaReadyTimeout):
		g.t.Fatalf("%s not serving within %v\n%s", r.id, metaReadyTimeout, tail(r.log, 20))
	}
}

// kill SIGKILLs replica i (a crash) and returns once it is gone.
func (g *metaGroup) kill(i int) {
	g.t.Helper()
	r := g.reps[i]
	if r.p == nil || r.p.exited() {
		return
	}
	_ = syscall.Kill(-r.p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.p.done:
	case <-time.After(stopGrace):
		g.t.Fatalf("%s (pid %d) survived SIGKILL for %v", r.id, r.p.cmd.Process.Pid, stopGrace)
	}
}

// cleanup stops every replica (SIGTERM, then SIGKILL after a bounded
// grace) and, when the test failed, shows the tail of every replica's log.
func (g *metaGroup) cleanup() {
	var wg sync.WaitGroup
	for _, r := range g.reps {
		if r.p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); r.p.stop(stopGrace) }()
		}
	}
	wg.Wait()
	if g.t.Failed() {
		for _, r := range g.reps {
			g.t.Logf("---- tail of %s ----\n%s", r.log, tail(r.log, 40))
		}
	}
}

func (g *metaGroup) urls() []string {
	var out []string
	for _, r := range g.reps {
		out = append(out, "http://"+r.api)
	}
	return out
}

// client is the remote client over every replica's address, as gateways
// and nodes use it: it follows the leader and waits out elections.
func (g *metaGroup) client() *metaremote.Client {
	return metaremote.New(metaremote.Config{Addrs: g.urls(), Secret: g.secret, RetryFor: metaWaitTimeout})
}

// replica is a client of replica i alone that fails fast, for its status
// and hash.
func (g *metaGroup) replica(i int) *metaremote.Client {
	return metaremote.New(metaremote.Config{Addrs: []string{"http://" + g.reps[i].api}, Secret: g.secret,
		HTTP: &http.Client{Timeout: 2 * time.Second}, RetryFor: time.Millisecond})
}

func (g *metaGroup) status(i int) (meta.ReplicaStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return g.replica(i).ReplicaStatus(ctx)
}

func (g *metaGroup) hash(i int) (meta.ReplicaHash, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return g.replica(i).ReplicaHash(ctx)
}

// up reports whether replica i's process runs.
func (g *metaGroup) up(i int) bool { return g.reps[i].p != nil && !g.reps[i].p.exited() }

// leader waits (bounded) until a running replica says it leads and
// returns its index.
func (g *metaGroup) leader() int {
	g.t.Helper()
	lead := -1
	waitFor(g.t, "a meta leader", metaWaitTimeout, func() (bool, string) {
		var states []string
		for i, r := range g.reps {
			if !g.up(i) {
				states = append(states, r.id+": down")
				continue
			}
			st, err := g.status(i)
			if err != nil {
				states = append(states, r.id+": "+err.Error())
				continue
			}
			states = append(states, fmt.Sprintf("%s: %s term %d", r.id, st.State, st.Term))
			if st.State == "leader" {
				lead = i
				return true, ""
			}
		}
		return false, strings.Join(states, "; ")
	})
	return lead
}

// converge waits (bounded) until every running replica reports the same
// applied index, at least min, and the same keyspace hash there; it
// returns that hash. (The leader's membership tick commits an entry every
// second, so the replicas are read until one round finds them level.)
func (g *metaGroup) converge(min uint64) meta.ReplicaHash {
	g.t.Helper()
	var out meta.ReplicaHash
	waitFor(g.t, "the replicas to converge", metaWaitTimeout, func() (bool, string) {
		var hs []meta.ReplicaHash
		var why []string
		for i, r := range g.reps {
			if !g.up(i) {
				continue
			}
			h, err := g.hash(i)
			if err != nil {
				return false, r.id + ": " + err.Error()
			}
			hs = append(hs, h)
			why = append(why, fmt.Sprintf("%s at %d: %.12s", r.id, h.AppliedIndex, h.Hash))
		}
		for _, h := range hs {
			if h.AppliedIndex < min || h != hs[0] {
				return false, strings.Join(why, "; ")
			}
		}
		out = hs[0]
		return true, ""
	})
	return out
}

// TestMetaProcessesConformance: the conformance suite through the remote
// client (all three addresses) against three real `shale meta` processes.
// The suite wants an empty service per case (it counts buckets, nodes and
// garbage), so each case gets a fresh group of its own; the cases run in
// parallel (up to -parallel at once, GOMAXPROCS by default).
func TestMetaProcessesConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Service {
		t.Parallel() // the case resumes when the suite has started every case
		g := newMetaGroup(t, 3)
		g.leader()
		return g.client()
	})
}

// testSegment builds the k+m shard references of one segment, "<tag>-<i>" on
// node "n<i>", as metatest does.
func testSegment(number int, tag string, k, m int) meta.Segment {
	seg := meta.Segment{Number: number, Size: int64(100 * k), ETag: "e-" + tag, K: k, M: m, BlockSize: 4096}
	for i := range k + m {
		seg.Shards = append(seg.Shards, meta.ShardRef{Index: i, Node: cluster.NodeID(fmt.Sprintf("n%d", i)),
			ID: fmt.Sprintf("%s-%d", tag, i), Size: 100, Checksum: uint64(i + 1)})
	}
	return seg
}

func testManifest(bucket, key, tag string) meta.Manifest {
	return meta.Manifest{Bucket: bucket, Key: key, VersionID: "v-" + tag, Size: 200, ETag: "etag-" + tag,
		ContentType: "text/plain", UserMeta: map[string]string{"tag": tag},
		Created:  time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Segments: []meta.Segment{testSegment(1, tag, 2, 1)}}
}

// acked is what the group acknowledged: the state a reader must find.
type acked struct {
	buckets  []string
	objects  map[string]meta.Manifest // "bucket/key" → the committed manifest (its generation)
	uploads  map[string][]int         // "bucket/key/uploadID" of uploads in progress → their part numbers
	garbage  map[string]bool          // "node/shard" that became garbage
	commits  int                      // acknowledged commits (objects and completed uploads)
	complete int                      // completed uploads
	gens     []uint64                 // the generation of every acknowledged commit
}

// record notes an acknowledged commit; the manifest it replaced, if any,
// became garbage. The caller holds the lock guarding a.
func (a *acked) record(m meta.Manifest) {
	id := m.Bucket + "/" + m.Key
	if old, ok := a.objects[id]; ok {
		for _, s := range old.Segments {
			a.addGarbage(s)
		}
	}
	a.objects[id] = m
	a.commits++
	a.gens = append(a.gens, m.Generation)
}

func (a *acked) addGarbage(seg meta.Segment) {
	for _, s := range seg.Shards {
		a.garbage[string(s.Node)+"/"+s.ID] = true
	}
}

// checkGenerations: the store numbers commits 1, 2, 3, … in a fresh group,
// so the acknowledged generations are exactly 1…commits — a commit applied
// twice would leave a gap — and the next commit gets commits+1.
func (a *acked) checkGenerations(t *testing.T, next uint64) {
	t.Helper()
	gens := slices.Sorted(slices.Values(a.gens))
	for i, g := range gens {
		if g != uint64(i+1) {
			t.Errorf("acknowledged generations %v…: #%d is %d, want %d (a commit applied twice, or one lost)", gens[:i+1], i+1, g, i+1)
			return
		}
	}
	if want := uint64(len(gens) + 1); next != want {
		t.Errorf("the commit after %d acknowledged ones got generation %d, want %d: the store applied more commits than it acknowledged", len(gens), next, want)
	}
}

// writeKnownSet writes buckets, objects (some overwritten, some deleted)
// and multipart uploads (some completed, one aborted, some in progress)
// from several clients at once, and returns everything acknowledged.
func writeKnownSet(ctx context.Context, t *testing.T, c meta.Service) *acked {
	t.Helper()
	a := &acked{objects: map[string]meta.Manifest{}, uploads: map[string][]int{}, garbage: map[string]bool{}}
	for i := range 3 {
		b := fmt.Sprintf("bucket-%d", i)
		if err := c.CreateBucket(ctx, b, ""); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
		a.buckets = append(a.buckets, b)
	}
	var mu sync.Mutex
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writeWorker(ctx, c, w, a, &mu)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// writeWorker is one client's share of writeKnownSet: 10 objects in
// bucket-(w%3), of which keys 0–2 are written twice and key 3 deleted, and
// 3 multipart uploads: one completed from two of its three parts (part 1
// written twice), one aborted, one left in progress with two parts.
func writeWorker(ctx context.Context, c meta.Service, w int, a *acked, mu *sync.Mutex) error {
	b := fmt.Sprintf("bucket-%d", w%3)
	record := func(m meta.Manifest) {
		mu.Lock()
		defer mu.Unlock()
		a.record(m)
	}
	garbage := a.addGarbage // called under mu
	for i := range 10 {
		key := fmt.Sprintf("w%d/obj-%02d", w, i)
		for round := range 1 + btoi(i < 3) {
			m, err := c.Commit(ctx, testManifest(b, key, fmt.Sprintf("w%d-%d-r%d", w, i, round)))
			if err != nil {
				return fmt.Errorf("commit %s/%s: %w", b, key, err)
			}
			record(m)
		}
	}
	key := fmt.Sprintf("w%d/obj-03", w)
	if ok, err := c.Delete(ctx, b, key); err != nil || !ok {
		return fmt.Errorf("delete %s/%s: %v, %v", b, key, ok, err)
	}
	mu.Lock()
	for _, s := range a.objects[b+"/"+key].Segments {
		garbage(s)
	}
	delete(a.objects, b+"/"+key)
	mu.Unlock()

	for u := range 3 {
		key := fmt.Sprintf("w%d/mp-%d", w, u)
		up, err := c.CreateUpload(ctx, meta.Upload{Bucket: b, Key: key, ContentType: "a/b"})
		if err != nil {
			return fmt.Errorf("create upload %s/%s: %w", b, key, err)
		}
		tag := func(n, v int) string { return fmt.Sprintf("w%d-mp%d-p%d-v%d", w, u, n, v) }
		var parts []meta.Segment
		for _, p := range []struct{ n, v int }{{1, 0}, {2, 0}, {1, 1}, {3, 0}} {
			if u == 2 && p.n == 3 {
				continue // the upload left in progress has parts 1 and 2
			}
			seg := testSegment(p.n, tag(p.n, p.v), 2, 1)
			if err := c.PutPart(ctx, b, key, meta.Part{UploadID: up.ID, Segment: seg}); err != nil {
				return fmt.Errorf("put part %d of %s/%s: %w", p.n, b, key, err)
			}
			if p.v == 1 {
				mu.Lock()
				garbage(testSegment(p.n, tag(p.n, 0), 2, 1))
				mu.Unlock()
			}
			parts = append(parts, seg)
		}
		switch u {
		case 0: // complete with parts 1 (its second version) and 2; part 3 becomes garbage
			m := testManifest(b, key, fmt.Sprintf("w%d-mp%d", w, u))
			m.Segments = []meta.Segment{parts[2], parts[1]}
			out, err := c.CompleteUpload(ctx, up.ID, m)
			if err != nil {
				return fmt.Errorf("complete %s/%s: %w", b, key, err)
			}
			mu.Lock()
			garbage(parts[3])
			a.complete++
			mu.Unlock()
			record(out)
		case 1: // abort: every current part becomes garbage
			if err := c.AbortUpload(ctx, b, key, up.ID); err != nil {
				return fmt.Errorf("abort %s/%s: %w", b, key, err)
			}
			mu.Lock()
			garbage(parts[1])
			garbage(parts[2])
			garbage(parts[3])
			mu.Unlock()
		default:
			mu.Lock()
			a.uploads[b+"/"+key+"/"+up.ID] = []int{1, 2}
			mu.Unlock()
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkKnownSet reads everything back through c and fails unless it is
// exactly what was acknowledged: the same buckets, the same keys with the
// same generations and manifests, the same uploads and parts, the same
// garbage — a write lost or applied twice shows as a difference.
func checkKnownSet(ctx context.Context, t *testing.T, c meta.Service, a *acked) {
	t.Helper()
	bs, err := c.ListBuckets(ctx)
	if err != nil {
		t.Fatalf("list buckets: %v", err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	if !slices.Equal(names, a.buckets) {
		t.Errorf("buckets %v, want %v", names, a.buckets)
	}
	var want, got []string
	for id, m := range a.objects {
		want = append(want, id)
		g, err := c.Get(ctx, m.Bucket, m.Key)
		if err != nil {
			t.Errorf("get %s: %v", id, err)
			continue
		}
		if g.Generation != m.Generation || g.ETag != m.ETag || g.VersionID != m.VersionID ||
			fmt.Sprint(g.Segments) != fmt.Sprint(m.Segments) {
			t.Errorf("%s: generation %d etag %s, want generation %d etag %s", id, g.Generation, g.ETag, m.Generation, m.ETag)
		}
	}
	for _, b := range a.buckets {
		r, err := c.List(ctx, b, meta.ListOptions{Limit: meta.MaxListLimit})
		if err != nil {
			t.Fatalf("list %s: %v", b, err)
		}
		if r.Truncated {
			t.Errorf("list %s truncated at 1000", b)
		}
		for _, o := range r.Objects {
			got = append(got, b+"/"+o.Key)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%d objects listed, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}

	var ups []string
	for _, b := range a.buckets {
		r, err := c.ListUploads(ctx, b, meta.UploadListOptions{})
		if err != nil {
			t.Fatalf("list uploads of %s: %v", b, err)
		}
		if r.Truncated {
			t.Errorf("list uploads of %s truncated", b)
		}
		for _, u := range r.Uploads {
			id := b + "/" + u.Key + "/" + u.ID
			ups = append(ups, id)
			parts, err := c.ListParts(ctx, b, u.Key, u.ID)
			if err != nil {
				t.Fatalf("list parts of %s: %v", id, err)
			}
			var nums []int
			for _, p := range parts {
				nums = append(nums, p.Segment.Number)
			}
			if !slices.Equal(nums, a.uploads[id]) {
				t.Errorf("upload %s has parts %v, want %v", id, nums, a.uploads[id])
			}
		}
	}
	var wantUps []string
	for id := range a.uploads {
		wantUps = append(wantUps, id)
	}
	slices.Sort(ups)
	slices.Sort(wantUps)
	if !slices.Equal(ups, wantUps) {
		t.Errorf("uploads in progress %v, want %v", ups, wantUps)
	}

	gs, err := c.ListGarbage(ctx, 100000)
	if err != nil {
		t.Fatalf("list garbage: %v", err)
	}
	gotG := map[string]bool{}
	for _, g := range gs {
		id := string(g.Node) + "/" + g.ShardID
		if gotG[id] {
			t.Errorf("garbage %s listed twice", id)
		}
		gotG[id] = true
	}
	for id := range a.garbage {
		if !gotG[id] {
			t.Errorf("garbage %s missing", id)
		}
	}
	for id := range gotG {
		if !a.garbage[id] {
			t.Errorf("garbage %s not expected", id)
		}
	}
	t.Logf("read back %d buckets, %d objects (%d commits, %d completed uploads acknowledged), %d uploads in progress, %d garbage entries",
		len(names), len(got), a.commits, a.complete, len(ups), len(gs))
}

// TestMetaRestartAllAfterKill: three replicas acknowledge a known set of
// writes; then, while clients keep committing, all three are SIGKILLed at
// once and restarted on their data. The clients' calls in flight retry
// (same request id) until the group is back. Every acknowledged write is
// there exactly once — same generations, no generation skipped or spent
// twice, the same garbage, uploads and parts — and the replicas converge
// on one keyspace hash.
func TestMetaRestartAllAfterKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	g := newMetaGroup(t, 3)
	g.leader()
	c := g.client()
	a := writeKnownSet(ctx, t, c)
	checkKnownSet(ctx, t, c, a)
	if t.Failed() {
		t.FailNow()
	}

	// Writers that run across the crash, each to keys of its own.
	const inflight = "inflight"
	if err := c.CreateBucket(ctx, inflight, ""); err != nil {
		t.Fatal(err)
	}
	a.buckets = append(a.buckets, inflight)
	var mu sync.Mutex
	var acks int
	var failed []error // the writers' errors, so a wait need not run out
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var writers sync.WaitGroup
	wctx, wcancel := context.WithCancel(ctx)
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				key := fmt.Sprintf("w%d/%04d", w, i)
				m, err := c.Commit(wctx, testManifest(inflight, key, fmt.Sprintf("inflight-%d-%d", w, i)))
				if err != nil {
					err = fmt.Errorf("commit %s/%s across the crash: %w", inflight, key, err)
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
					errs <- err
					return
				}
				mu.Lock()
				a.record(m)
				acks++
				mu.Unlock()
			}
		}()
	}
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		writers.Wait()
	}
	defer func() { wcancel(); stopWriters() }() // a failed test does not wait out the writers' retries
	ackCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		if len(failed) > 0 {
			t.Fatal(failed[0])
		}
		return acks
	}
	waitFor(t, "commits before the crash", metaWaitTimeout, func() (bool, string) {
		return ackCount() >= 40, fmt.Sprintf("%d acknowledged", ackCount())
	})

	before := map[string]uint64{}
	for i, r := range g.reps {
		if st, err := g.status(i); err == nil {
			before[r.id] = st.AppliedIndex
		}
	}
	// All at once, mid-write: no replica stops cleanly or hears of the
	// others' end; a follower may hold committed entries it has not
	// applied yet, the leader entries not yet committed.
	var wg sync.WaitGroup
	for i := range g.reps {
		wg.Add(1)
		go func() { defer wg.Done(); _ = syscall.Kill(-g.reps[i].p.cmd.Process.Pid, syscall.SIGKILL) }()
	}
	wg.Wait()
	for i := range g.reps {
		g.kill(i) // waits until it is gone
	}
	atKill := ackCount()
	t.Logf("killed all three at applied indexes %v, %d commits acknowledged across the crash so far", before, atKill)

	g.startAll()
	lead := g.leader()
	t.Logf("%s leads after the restart", g.reps[lead].id)
	waitFor(t, "commits after the restart", metaWaitTimeout, func() (bool, string) {
		return ackCount() >= atKill+40, fmt.Sprintf("%d acknowledged", ackCount())
	})
	stopWriters()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d commits acknowledged across the crash", ackCount())

	c = g.client()
	checkKnownSet(ctx, t, c, a)
	probe, err := c.Commit(ctx, testManifest(inflight, "probe", "probe"))
	if err != nil {
		t.Fatal(err)
	}
	a.checkGenerations(t, probe.Generation)
	var max uint64
	for _, v := range before {
		max = maxU(max, v)
	}
	h := g.converge(max)
	t.Logf("all three at applied index %d (at most %d at the kill), hash %.16s", h.AppliedIndex, max, h.Hash)
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// snapIndexes returns the log indexes of the complete snapshots in a
// replica's data directory (raft names each term-index-millis).
func snapIndexes(t testing.TB, data string) []uint64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(data, "snapshots"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range ents {
		parts := strings.Split(e.Name(), "-")
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") || len(parts) != 3 {
			continue
		}
		if _, err := os.Stat(filepath.Join(data, "snapshots", e.Name(), "meta.json")); err != nil {
			continue
		}
		idx, err := strconv.ParseUint(parts[1], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, idx)
	}
	slices.Sort(out)
	return out
}

// TestMetaFollowerCatchesUpBySnapshot: with a short log (64 trailing
// entries, a snapshot every 128), a follower kept down while the others
// commit far past it comes back and catches up by snapshot — its snapshot
// directory gains the leader's snapshot, though it is restarted unable to
// take snapshots of its own — and ends at the leader's applied index with
// the same keyspace hash; SIGKILLed again, it restarts from the restored
// store.
func TestMetaFollowerCatchesUpBySnapshot(t *testing.T) {
	const trailing, threshold = 64, 128
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	g := newMetaGroup(t, 3, "--trailing-logs", strconv.Itoa(trailing),
		"--snapshot-threshold", strconv.Itoa(threshold), "--snapshot-interval", "20ms")
	lead := g.leader()
	c := g.client()
	for _, b := range []string{"early", "late"} {
		if err := c.CreateBucket(ctx, b, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		if _, err := c.Commit(ctx, testManifest("early", fmt.Sprintf("k%03d", i), fmt.Sprintf("early-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	g.converge(0)
	f := (lead + 1) % 3
	fr := g.reps[f]
	g.kill(f)
	// The follower got every entry it holds from the leader, so its log
	// ends at or before where the live replicas' logs end now.
	var fst uint64
	for i := range g.reps {
		if i == f {
			continue
		}
		st, err := g.status(i)
		if err != nil {
			t.Fatal(err)
		}
		fst = maxU(fst, st.LastIndex)
	}
	snapsBefore := snapIndexes(t, fr.data)
	t.Logf("%s killed; the group's log ends at %d; its snapshots: %v", fr.id, fst, snapsBefore)

	// Commit far past it, from several clients.
	const writes = 600
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < writes; i += 8 {
				if _, err := c.Commit(ctx, testManifest("late", fmt.Sprintf("k%04d", i), fmt.Sprintf("late-%d", i))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("commit while %s is down: %v", fr.id, err)
	}
	// Both live replicas snapshot and compact: wait until each holds a
	// snapshot more than `trailing` entries past the follower's last, so
	// neither still has the entry after it in its log.
	need := fst + trailing + 1
	waitFor(t, "the live replicas to snapshot past the follower", metaWaitTimeout, func() (bool, string) {
		var why []string
		ok := true
		for i, r := range g.reps {
			if i == f {
				continue
			}
			s := snapIndexes(t, r.data)
			why = append(why, fmt.Sprintf("%s snapshots %v", r.id, s))
			if len(s) == 0 || s[len(s)-1] <= need {
				ok = false
			}
		}
		return ok, fmt.Sprintf("need one past %d: %s", need, strings.Join(why, "; "))
	})

	// Back, unable to snapshot on its own (a threshold it never reaches):
	// a snapshot that appears in its directory was sent by the leader.
	g.start(f, "--snapshot-threshold", "1000000000")
	var leadNow meta.ReplicaStatus
	waitFor(t, fr.id+" to catch up", metaWaitTimeout, func() (bool, string) {
		l := g.leader()
		var err error
		if leadNow, err = g.status(l); err != nil {
			return false, err.Error()
		}
		st, err := g.status(f)
		if err != nil {
			return false, err.Error()
		}
		return st.AppliedIndex >= leadNow.AppliedIndex && st.AppliedIndex > need,
			fmt.Sprintf("%s at %d, leader %s at %d", fr.id, st.AppliedIndex, g.reps[l].id, leadNow.AppliedIndex)
	})
	h := g.converge(need)
	snapsAfter := snapIndexes(t, fr.data)
	var installed []uint64
	for _, s := range snapsAfter {
		if !slices.Contains(snapsBefore, s) && s > fst {
			installed = append(installed, s)
		}
	}
	if len(installed) == 0 {
		t.Fatalf("%s caught up without a snapshot from the leader: its snapshots %v, before %v", fr.id, snapsAfter, snapsBefore)
	}
	t.Logf("%s installed snapshot(s) at %v (its log ended at most at %d); all three at %d, hash %.16s",
		fr.id, installed, fst, h.AppliedIndex, h.Hash)

	// And the data is all there, read through the group.
	for _, b := range []struct {
		name string
		n    int
	}{{"early", 20}, {"late", writes}} {
		r, err := c.List(ctx, b.name, meta.ListOptions{Limit: meta.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Objects) != b.n {
			t.Errorf("bucket %s lists %d objects, want %d", b.name, len(r.Objects), b.n)
		}
	}

	// The restored store is the follower's own: SIGKILLed and restarted,
	// it answers from it at once (before it hears from the leader), at
	// least at the snapshot it installed, and rejoins the group's hash.
	g.kill(f)
	g.start(f)
	own, err := g.hash(f)
	if err != nil {
		t.Fatal(err)
	}
	if own.AppliedIndex < slices.Max(installed) {
		t.Errorf("%s restarted at applied index %d, behind the snapshot it installed at %d", fr.id, own.AppliedIndex, slices.Max(installed))
	}
	h2 := g.converge(h.AppliedIndex)
	t.Logf("%s restarted at %d; all three at %d, hash %.16s", fr.id, own.AppliedIndex, h2.AppliedIndex, h2.Hash)
}
