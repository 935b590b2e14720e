package replicated_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/replicated"
)

// TestReadLeaseSkipsRounds: back-to-back reads on the leader share one
// leadership confirmation per lease; with the lease off, each runs its own.
func TestReadLeaseSkipsRounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lease time.Duration
	}{{"lease", 0}, {"no lease", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, func(cfg *replicated.Config) { cfg.ReadLease = tc.lease })
			l := c.leader()
			if err := l.CreateBucket(ctx, "b", ""); err != nil {
				t.Fatal(err)
			}
			const reads = 60
			before := l.ReadConfirmations()
			for range reads {
				if _, err := l.HeadBucket(ctx, "b"); err != nil {
					t.Fatal(err)
				}
			}
			got := l.ReadConfirmations() - before
			if tc.lease < 0 && got != reads {
				t.Fatalf("without a lease %d reads ran %d confirmations", reads, got)
			}
			if tc.lease == 0 && got > reads/3 {
				t.Fatalf("under the lease %d reads ran %d confirmations", reads, got)
			}
		})
	}
}

// TestReadLeaseNeverServesStale: a leader cut off from the others keeps
// reading under its lease for at most the lease, which ends before the
// majority can elect a new leader: no read on the old leader misses a write
// the new leader acknowledged.
//
// (raft's own step-down after LeaderLeaseTimeout without a quorum also
// bounds it; the test fails if a read under the lease skips the leadership
// check, as a lease consulted before it would.)
func TestReadLeaseNeverServesStale(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	if err := old.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := old.HeadBucket(ctx, "b"); err != nil { // the lease is fresh
		t.Fatal(err)
	}
	oi := c.index(old)
	var (
		acked   atomic.Bool // the new leader acknowledged bucket "d"
		stale   atomic.Int64
		served  atomic.Int64
		stop    = make(chan struct{})
		readers sync.WaitGroup
	)
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			was := acked.Load()
			tctx, cancel := contextWithTimeout(200 * time.Millisecond)
			_, err := old.HeadBucket(tctx, "d")
			cancel()
			switch {
			case errors.Is(err, meta.ErrNoSuchBucket):
				served.Add(1)
				if was {
					stale.Add(1)
				}
			case err == nil:
				served.Add(1)
			}
		}
	}()
	c.disconnect(oi)
	nl := c.leaderBesides(oi)
	if err := nl.CreateBucket(ctx, "d", ""); err != nil {
		t.Fatal(err)
	}
	acked.Store(true)
	time.Sleep(300 * time.Millisecond) // let the old leader's reader try after the ack
	close(stop)
	readers.Wait()
	if n := stale.Load(); n > 0 {
		t.Fatalf("the cut-off leader served %d reads missing an acknowledged write", n)
	}
	if served.Load() == 0 {
		t.Fatal("the cut-off leader served no read at all under its lease: the test saw nothing")
	}
	c.connect(oi)
}

// TestRestartedReplicaRefusesVotes: for its first heartbeat timeout a
// replica grants no vote (what makes the lease safe across a follower's
// restart); TestGuardQuietPeriod covers what comes after.
func TestRestartedReplicaRefusesVotes(t *testing.T) {
	c := newCluster(t, 3, func(cfg *replicated.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second
	})
	c.leader()
	c.stop(2)
	c.start(2)
	_, cand := newInmem("candidate")
	cand.Connect(c.servers[2].Address, c.trans[2])
	var resp raft.RequestVoteResponse
	req := &raft.RequestVoteRequest{RPCHeader: raft.RPCHeader{ID: []byte("candidate"), Addr: []byte("candidate")},
		Term: 1 << 40, LastLogIndex: 1 << 40, LastLogTerm: 1 << 40}
	err := cand.RequestVote("m2", c.servers[2].Address, req, &resp)
	if err == nil || resp.Granted {
		t.Fatalf("a vote request right after restart: granted %v, err %v; want refused", resp.Granted, err)
	}
}
