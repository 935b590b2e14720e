package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/metatest"
	"github.com/shale-store/shale/meta/raftnet"
	"github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/meta/replicated"
)

var _ remote.Backend = (*replicated.Node)(nil)

// group is n meta replicas over raftnet on loopback TCP, each behind its
// own httptest server running the remote handler.
type group struct {
	t     *testing.T
	nodes []*replicated.Node
	srvs  []*httptest.Server
	urls  []string
	hits  []atomic.Int64 // requests each server received
	down  []bool
}

func newGroup(t *testing.T, n int) *group {
	t.Helper()
	g := &group{t: t, hits: make([]atomic.Int64, n), down: make([]bool, n)}
	root := t.TempDir()
	var layers []*raftnet.Layer
	var servers []raft.Server
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("m%d", i)
		l, err := raftnet.Listen("127.0.0.1:0", raftnet.Config{Secret: secret, ID: id})
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(l.Addr().String())})
	}
	urlOf := map[string]string{}
	var mu sync.Mutex
	leaderURL := func(id, _ string) string {
		mu.Lock()
		defer mu.Unlock()
		return urlOf[id]
	}
	for i := 0; i < n; i++ {
		node, err := replicated.Open(replicated.Config{
			ID:                 string(servers[i].ID),
			Dir:                filepath.Join(root, string(servers[i].ID)),
			Transport:          raft.NewNetworkTransport(layers[i], 3, 2*time.Second, io.Discard),
			Bootstrap:          servers,
			HeartbeatTimeout:   500 * time.Millisecond,
			ElectionTimeout:    500 * time.Millisecond,
			LeaderLeaseTimeout: 500 * time.Millisecond,
			Logger:             hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		})
		if err != nil {
			t.Fatal(err)
		}
		g.nodes = append(g.nodes, node)
		h := remote.NewHandler(node, secret, remote.HandlerConfig{LeaderURL: leaderURL})
		hits := &g.hits[i]
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			h.ServeHTTP(w, r)
		}))
		g.srvs = append(g.srvs, srv)
		g.urls = append(g.urls, srv.URL)
		mu.Lock()
		urlOf[string(servers[i].ID)] = srv.URL
		mu.Unlock()
	}
	t.Cleanup(func() {
		for i := range g.nodes {
			g.kill(i)
		}
	})
	return g
}

// kill stops replica i: its HTTP server and its raft.
func (g *group) kill(i int) {
	if g.down[i] {
		return
	}
	g.down[i] = true
	g.srvs[i].CloseClientConnections()
	g.srvs[i].Close()
	_ = g.nodes[i].Close()
}

// leader waits for a live replica that leads and has passed a barrier.
func (g *group) leader() int {
	g.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range g.nodes {
			if !g.down[i] && n.IsLeader() && n.Barrier(context.Background()) == nil {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatal("no leader within 15s")
	return -1
}

func (g *group) client(tweak func(*remote.Config)) *remote.Client {
	cfg := remote.Config{Addrs: g.urls, Secret: secret, RetryFor: 15 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	return remote.New(cfg)
}

func man(bucket, key string) meta.Manifest {
	seg := meta.Segment{Number: 1, Size: 10, K: 1, M: 1, BlockSize: 4096, Shards: []meta.ShardRef{
		{Index: 0, Node: cluster.NodeID("n0"), ID: key + "-0", Size: 10},
		{Index: 1, Node: cluster.NodeID("n1"), ID: key + "-1", Size: 10},
	}}
	return meta.Manifest{Bucket: bucket, Key: key, VersionID: key, Size: 10, ETag: key, Segments: []meta.Segment{seg}}
}

// TestConformanceThreeReplicas: the conformance suite through the client
// against three replicas, each behind its own server; the client starts
// with the first address, whichever replica leads.
func TestConformanceThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("three replicas per case")
	}
	metatest.Run(t, func(t *testing.T) meta.Service {
		g := newGroup(t, 3)
		g.leader()
		return g.client(nil)
	})
}

// TestFollowerPointsToLeader: a follower answers a read and a mutation
// with the leader's address, and the client goes there and stays. (On a
// loaded machine an election may move the leader mid-test and change the
// counts; such a run is retried on a fresh group.)
func TestFollowerPointsToLeader(t *testing.T) {
	for try := 1; ; try++ {
		if followerPointsToLeader(t) || try == 3 {
			return
		}
		t.Logf("try %d: the leader changed during the test; again", try)
	}
}

// followerPointsToLeader runs the test once; false: leadership moved, the
// counts say nothing.
func followerPointsToLeader(t *testing.T) bool {
	g := newGroup(t, 3)
	l := g.leader()
	term := g.nodes[l].Raft().CurrentTerm()
	f, f2 := (l+1)%3, (l+2)%3
	// The leader last: rotating through the list would try f2 first.
	c := remote.New(remote.Config{Addrs: []string{g.urls[f], g.urls[f2], g.urls[l]}, Secret: secret})
	ctx := context.Background()
	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListBuckets(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, man("b", "k")); err != nil {
		t.Fatal(err)
	}
	// The raw answer: 421 with the leader's URL.
	resp := signedPost(t, g.urls[f]+"/v1/ListBuckets", []byte(`{}`))
	if !g.nodes[l].IsLeader() || g.nodes[l].Raft().CurrentTerm() != term {
		return false
	}
	if got := g.hits[f].Load(); got != 2 {
		t.Errorf("the follower got %d requests, want 1 from the client (which then follows the hint) and the raw one", got)
	}
	if got := g.hits[f2].Load(); got != 0 {
		t.Errorf("the other follower got %d requests, want 0", got)
	}
	if got := g.hits[l].Load(); got != 3 {
		t.Errorf("the leader got %d requests, want 3", got)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest || resp.Header.Get(remote.LeaderHeader) != g.urls[l] {
		t.Fatalf("follower answered %d with leader %q, want 421 and %q", resp.StatusCode, resp.Header.Get(remote.LeaderHeader), g.urls[l])
	}
	return true
}

// TestClientSurvivesLeaderKill: eight clients commit while the leader is
// killed under them (some calls in flight on it); every commit is
// acknowledged (the client follows to the new leader), every acknowledged
// commit reads back with the generation it was acknowledged with, and no
// two share a generation.
func TestClientSurvivesLeaderKill(t *testing.T) {
	g := newGroup(t, 3)
	l := g.leader()
	c := g.client(nil)
	ctx := context.Background()
	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 8, 15
	var (
		mu      sync.Mutex
		acked   = map[string]uint64{}
		longest time.Duration
		count   atomic.Int64
		killed  = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				key := fmt.Sprintf("w%d-k%02d", w, i)
				start := time.Now()
				m, err := c.Commit(ctx, man("b", key))
				if err != nil {
					t.Errorf("commit %s: %v", key, err)
					return
				}
				mu.Lock()
				acked[key] = m.Generation
				longest = max(longest, time.Since(start))
				mu.Unlock()
				if count.Add(1) == 30 {
					close(killed)
				}
			}
		}()
	}
	<-killed
	g.kill(l)
	wg.Wait()
	if t.Failed() {
		return
	}
	nl := g.leader()
	if nl == l {
		t.Fatal("the killed replica still leads")
	}
	seen := map[uint64]string{}
	for key, gen := range acked {
		m, err := c.Get(ctx, "b", key)
		if err != nil || m.Generation != gen {
			t.Fatalf("get %s: generation %d, %v; acknowledged %d", key, m.Generation, err, gen)
		}
		if other, dup := seen[gen]; dup {
			t.Fatalf("%s and %s acknowledged with the same generation %d", key, other, gen)
		}
		seen[gen] = key
	}
	if len(acked) != workers*perWorker {
		t.Fatalf("%d commits acknowledged, want %d", len(acked), workers*perWorker)
	}
	t.Logf("longest commit across the failover: %v", longest.Round(time.Millisecond))
}

// dropFirstReply is a RoundTripper that delivers the first request to
// method but drops the reply, as a connection lost after the commit.
type dropFirstReply struct {
	method  string
	dropped atomic.Bool
	mu      sync.Mutex
	rids    []string // request ids of the method's requests
}

func (d *dropFirstReply) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/v1/"+d.method {
		return http.DefaultTransport.RoundTrip(r)
	}
	d.mu.Lock()
	d.rids = append(d.rids, r.URL.Query().Get("rid"))
	d.mu.Unlock()
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && d.dropped.CompareAndSwap(false, true) {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("injected: connection reset after the server answered")
	}
	return resp, err
}

// TestLostReplyAppliesOnce: the reply to a successful commit is lost; the
// client retries with the same request id and gets the first result, and
// the commit was applied once: it holds the generation right after the
// commit before it (a second apply would have taken another), and so does
// the key.
func TestLostReplyAppliesOnce(t *testing.T) {
	g := newGroup(t, 3)
	g.leader()
	rt := &dropFirstReply{method: "Commit"}
	c := g.client(func(cfg *remote.Config) { cfg.HTTP = &http.Client{Transport: rt} })
	ctx := context.Background()
	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	rt.dropped.Store(true) // deliver the first commit's reply
	before, err := c.Commit(ctx, man("b", "k0"))
	if err != nil {
		t.Fatal(err)
	}
	rt.dropped.Store(false)
	rt.rids = nil
	m, err := c.Commit(ctx, man("b", "k"))
	if err != nil {
		t.Fatalf("commit with a lost reply: %v", err)
	}
	if !rt.dropped.Load() {
		t.Fatal("no reply was dropped")
	}
	if len(rt.rids) < 2 || rt.rids[0] == "" || rt.rids[0] != rt.rids[len(rt.rids)-1] {
		t.Fatalf("request ids of the attempts: %q, want one id, repeated", rt.rids)
	}
	if m.Generation != before.Generation+1 {
		t.Fatalf("the retried commit returned generation %d after %d: applied %d times", m.Generation, before.Generation, m.Generation-before.Generation)
	}
	got, err := c.Get(ctx, "b", "k")
	if err != nil || got.Generation != m.Generation {
		t.Fatalf("get: generation %d, %v; commit returned %d", got.Generation, err, m.Generation)
	}
	next, err := c.Commit(ctx, man("b", "k2"))
	if err != nil || next.Generation != m.Generation+1 {
		t.Fatalf("next commit: generation %d, %v; want %d", next.Generation, err, m.Generation+1)
	}
}

// TestNoLeaderIsUnavailable: with a majority down no leader can exist; the
// client gives up after RetryFor with meta.ErrUnavailable, for mutations
// and reads alike, and within the call's context when that is shorter.
func TestNoLeaderIsUnavailable(t *testing.T) {
	g := newGroup(t, 3)
	l := g.leader()
	g.kill(l)
	g.kill((l + 1) % 3)
	c := g.client(func(cfg *remote.Config) { cfg.RetryFor = time.Second })
	ctx := context.Background()
	if err := c.CreateBucket(ctx, "b", ""); !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("create bucket without a leader: %v", err)
	}
	if _, err := c.Get(ctx, "b", "k"); !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("get without a leader: %v", err)
	}
	c = g.client(func(cfg *remote.Config) { cfg.RetryFor = time.Hour })
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c.ListBuckets(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("list buckets without a leader, bounded by ctx: %v", err)
	}
}

// signedPost posts body to u, signed for meta, and returns the answer
// (body read and closed).
func signedPost(t *testing.T, u string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	peerauth.NewSigner(secret, remote.Identity).Sign(req, peerauth.BodySHA256(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestSilentReplicaCostsOneAttempt: a replica that takes requests but
// never answers (cut off) costs one AttemptTimeout, after which the client
// goes on to the next address and stays there.
func TestSilentReplicaCostsOneAttempt(t *testing.T) {
	release := make(chan struct{})
	var silentHits atomic.Int64
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		silentHits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(release) })
	live := httptest.NewServer(remote.NewHandler(openStore(t), secret, remote.HandlerConfig{}))
	t.Cleanup(live.Close)
	c := remote.New(remote.Config{Addrs: []string{silent.URL, live.URL}, Secret: secret, AttemptTimeout: 200 * time.Millisecond, RetryFor: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatalf("create bucket past a silent replica: %v", err)
	}
	if _, err := c.HeadBucket(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if n := silentHits.Load(); n != 1 {
		t.Errorf("the silent replica got %d requests, want 1", n)
	}
}
