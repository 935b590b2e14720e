package replicated_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/metatest"
	"github.com/shale-store/shale/meta/replicated"
)

func TestConformanceOneVoter(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Service {
		return newCluster(t, 1, nil).leader()
	})
}

func TestConformanceThreeVoters(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Service {
		return newCluster(t, 3, nil).leader()
	})
}

func manifest(bucket, key, tag string) meta.Manifest {
	seg := meta.Segment{Number: 1, Size: 200, K: 2, M: 1, BlockSize: 4096}
	for i := 0; i < 3; i++ {
		seg.Shards = append(seg.Shards, meta.ShardRef{Index: i, Node: cluster.NodeID(fmt.Sprintf("n%d", i)), ID: fmt.Sprintf("%s-%d", tag, i), Size: 100})
	}
	return meta.Manifest{Bucket: bucket, Key: key, VersionID: tag, Size: 200, ETag: tag, Segments: []meta.Segment{seg}}
}

// commitMany commits keys k0..k(n-1) from workers goroutines, each with a
// request id, and returns the generation each commit was acknowledged with.
func commitMany(t *testing.T, s meta.Service, prefix string, n, workers int) map[string]uint64 {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]uint64{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				key := fmt.Sprintf("%s%04d", prefix, i)
				rctx := meta.WithRequestID(ctx, "req-"+key)
				m, err := s.Commit(rctx, manifest("b", key, key))
				if err != nil {
					errs <- fmt.Errorf("commit %s: %w", key, err)
					return
				}
				mu.Lock()
				acked[key] = m.Generation
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return acked
}

// checkAcked reads every acknowledged commit back with the generation it
// was acknowledged with: present, and not applied a second time.
func checkAcked(t *testing.T, s meta.Service, acked map[string]uint64) {
	t.Helper()
	for key, gen := range acked {
		m, err := s.Get(ctx, "b", key)
		if err != nil {
			t.Fatalf("acknowledged %s: %v", key, err)
		}
		if m.Generation != gen {
			t.Fatalf("%s: generation %d, acknowledged %d (applied twice?)", key, m.Generation, gen)
		}
	}
}

// Stopping every replica and starting them again loses nothing
// acknowledged and applies nothing twice: the replayed log after the last
// snapshot is skipped up to each store's applied index, and every replica
// ends with the keyspace it had.
func TestRestartAllReplicas(t *testing.T) {
	c := newCluster(t, 3, func(cfg *replicated.Config) {
		cfg.SnapshotThreshold = 50
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.TrailingLogs = 20
	})
	l := c.leader()
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	acked := commitMany(t, l, "k", 300, 8)
	c.waitApplied(l.AppliedIndex())
	before := c.sameKeyspace()
	gen := acked["k0299"]
	for i := range c.nodes {
		c.stop(i)
	}
	for i := range c.nodes {
		c.start(i)
	}
	l = c.leader()
	c.waitApplied(l.AppliedIndex())
	if after := c.sameKeyspace(); after != before {
		t.Fatalf("keyspace changed across a restart of every replica")
	}
	checkAcked(t, l, acked)
	// The generation sequence carries on from where it was.
	m, err := l.Commit(ctx, manifest("b", "after", "after"))
	if err != nil {
		t.Fatal(err)
	}
	max := gen
	for _, g := range acked {
		max = maxU(max, g)
	}
	if m.Generation != max+1 {
		t.Fatalf("generation after restart %d, want %d", m.Generation, max+1)
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// A follower kept away while the leader moves past the log it keeps
// catches up by snapshot and ends with the identical keyspace.
func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	c := newCluster(t, 3, func(cfg *replicated.Config) {
		cfg.SnapshotThreshold = 1 << 30 // only when the test asks
		cfg.TrailingLogs = 10
	})
	l := c.leader()
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	li := c.index(l)
	f := (li + 1) % 3
	c.disconnect(f)
	acked := commitMany(t, l, "k", 200, 4)
	// Both replicas that stayed snapshot and drop the log the follower
	// misses: the follower's return may start an election, and whichever
	// of them leads then must send it a snapshot.
	other := 3 - li - f
	deadline := time.Now().Add(20 * time.Second)
	for c.nodes[other].AppliedIndex() < l.AppliedIndex() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, i := range []int{li, other} {
		if err := c.nodes[i].Raft().Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		if got := c.nodes[i].Raft().Stats()["last_snapshot_index"]; got == "0" {
			t.Fatalf("replica %d took no snapshot", i)
		}
	}
	lagging := c.nodes[f].AppliedIndex()
	c.connect(f)
	c.waitApplied(l.AppliedIndex())
	c.sameKeyspace()
	// raft records the installed snapshot just after the FSM's Restore
	// returns — after the applied index moved, which waitApplied saw — so
	// give it a moment (this read raced it once in ~20 runs).
	snap := "0"
	for deadline := time.Now().Add(5 * time.Second); snap == "0" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		snap = c.nodes[f].Raft().Stats()["last_snapshot_index"]
	}
	if snap == "0" {
		t.Fatalf("follower (was at %d) caught up without installing a snapshot", lagging)
	}
	checkAcked(t, l, acked)
	// The follower, now leader, serves the same answers.
	if err := l.Raft().LeadershipTransferToServer(c.servers[f].ID, c.servers[f].Address).Error(); err != nil {
		t.Fatal(err)
	}
	nl := c.leader()
	if nl != c.nodes[f] {
		t.Skipf("leadership went to %d, not %d", c.index(nl), f)
	}
	checkAcked(t, nl, acked)
}

// A command retried with the same request id — on the same leader or on
// the next one — returns the first result and is applied once.
func TestRetriedRequestAppliesOnce(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	rctx := meta.WithRequestID(ctx, "client-7/req-1")
	first, err := l.Commit(rctx, manifest("b", "k", "one"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.Commit(rctx, manifest("b", "k", "one"))
	if err != nil || again.Generation != first.Generation {
		t.Fatalf("retry on the leader: %v, generation %d, first %d", err, again.Generation, first.Generation)
	}
	// The reply was "lost" and the leader changed: the retry goes to the
	// new one.
	if err := l.Raft().LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	nl := c.leader()
	if nl == l {
		t.Fatal("leadership did not move")
	}
	third, err := nl.Commit(rctx, manifest("b", "k", "one"))
	if err != nil || third.Generation != first.Generation {
		t.Fatalf("retry on the new leader: %v, generation %d, first %d", err, third.Generation, first.Generation)
	}
	if gs, _ := nl.ListGarbage(ctx, 100); len(gs) != 0 {
		t.Fatalf("a retry replaced the object: garbage %v", gs)
	}
	// A different request id is a new commit.
	other, err := nl.Commit(meta.WithRequestID(ctx, "client-7/req-2"), manifest("b", "k", "one"))
	if err != nil || other.Generation <= first.Generation {
		t.Fatalf("new request: %v, generation %d", err, other.Generation)
	}
	c.waitApplied(nl.AppliedIndex())
	c.sameKeyspace()
}

// A follower refuses mutations and linearizable reads with ErrNotLeader,
// naming the leader.
func TestFollowerRefuses(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	li := c.index(l)
	f := c.nodes[(li+1)%3]
	// A follower learns the leader from its first heartbeat.
	for deadline := time.Now().Add(10 * time.Second); f.Raft().Leader() == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the follower heard no leader within 10s")
		}
	}
	err := f.CreateBucket(ctx, "b", "")
	if !errors.Is(err, meta.ErrNotLeader) {
		t.Fatalf("follower CreateBucket: %v, want ErrNotLeader", err)
	}
	var nle *meta.NotLeaderError
	if !errors.As(err, &nle) || nle.LeaderAddr != string(c.servers[li].Address) || nle.LeaderID != string(c.servers[li].ID) {
		t.Fatalf("follower names leader %+v, want %s", nle, c.servers[li].Address)
	}
	if _, err := f.ListBuckets(ctx); !errors.Is(err, meta.ErrNotLeader) {
		t.Fatalf("follower read: %v, want ErrNotLeader", err)
	}
	if _, err := f.Store().ListBuckets(ctx); err != nil {
		t.Fatal(err)
	}
}

// A leader cut off from the majority can neither commit nor serve a
// linearizable read; the majority elects a leader that does.
func TestMinorityLeaderCannotServe(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	if err := old.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	oi := c.index(old)
	c.disconnect(oi)
	tctx, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	if err := old.CreateBucket(tctx, "c", ""); err == nil {
		t.Fatal("a leader cut off from the majority committed")
	}
	if _, err := old.ListBuckets(tctx); err == nil {
		t.Fatal("a leader cut off from the majority served a linearizable read")
	}
	nl := c.leaderBesides(oi)
	if err := nl.CreateBucket(ctx, "d", ""); err != nil {
		t.Fatal(err)
	}
	c.connect(oi)
	c.leader()
	c.waitApplied(nl.AppliedIndex())
	c.sameKeyspace()
	if _, err := nl.HeadBucket(ctx, "c"); !errors.Is(err, meta.ErrNoSuchBucket) {
		// The minority's proposal may not commit unless the new leader
		// had it; with the link cut it cannot have.
		t.Fatalf("bucket proposed in the minority: %v", err)
	}
}

// A replica whose state machine directory is lost (its raft log and
// snapshots kept) rebuilds it on start from its newest snapshot and the log
// after it, and ends with the keyspace of the others.
func TestReplicaRebuildsLostStateMachine(t *testing.T) {
	c := newCluster(t, 3, func(cfg *replicated.Config) {
		cfg.SnapshotThreshold = 1 << 30
		cfg.TrailingLogs = 10
	})
	l := c.leader()
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	commitMany(t, l, "a", 60, 4)
	f := (c.index(l) + 1) % 3
	c.waitApplied(l.AppliedIndex())
	if err := c.nodes[f].Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	acked := commitMany(t, l, "b", 40, 4)
	c.waitApplied(l.AppliedIndex())
	c.stop(f)
	if err := os.RemoveAll(filepath.Join(c.cfgs[f].Dir, "meta")); err != nil {
		t.Fatal(err)
	}
	c.start(f)
	c.waitApplied(l.AppliedIndex())
	c.sameKeyspace()
	checkAcked(t, l, acked)
}
