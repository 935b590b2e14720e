package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/netnstest"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// Settings of the partition test's meta replicas and of its waits.
const (
	partAPIPort  = 7000 // every replica has its own namespace, so fixed ports
	partRaftPort = 7001
	partRegion   = "us-east-1"
	// Raft timeouts much shorter than shale's defaults, so elections take
	// a fraction of a second (hashicorp/raft draws each from [T, 2T)).
	partHeartbeat = 500 * time.Millisecond
	partElection  = 500 * time.Millisecond
	partLease     = 250 * time.Millisecond
	// partWait bounds every wait of the test (a leader, a step-down,
	// convergence); partCall bounds one client call that must fail.
	partWait = 20 * time.Second
	partCall = 15 * time.Second
)

// partReplica is one `shale meta` process of the partition test, in its own
// network namespace: raft on the cluster network, its API on the control
// link.
type partReplica struct {
	id   string
	node *netnstest.Node
	url  string             // its API, http://control:port
	one  *metaremote.Client // a client with only this replica's address
	proc *netnstest.Process // the running replica
}

// TestMetaPartition cuts the meta leader off from the two other replicas
// with a real network partition (its bridge port taken down, its packets
// dropped) and checks what raft promises: the old leader, alone, can
// neither commit a mutation nor serve a linearizable read; the majority
// elects a leader and commits; after healing, every replica holds the same
// keyspace, with the majority's writes and without the minority's.
func TestMetaPartition(t *testing.T) {
	n := netnstest.New(t, netnstest.Config{Nodes: 3})
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "secret")
	secret, err := peerauth.LoadOrCreateSecret(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	// No proxy from the environment: the replicas are on private links.
	hc := &http.Client{Transport: &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: time.Second}).DialContext,
	}}

	reps := make([]*partReplica, len(n.Nodes))
	var peers []string
	for i, nd := range n.Nodes {
		r := &partReplica{id: fmt.Sprintf("meta-%d", i), node: nd,
			url: fmt.Sprintf("http://%s:%d", nd.Control, partAPIPort)}
		// A short RetryFor: a call on a replica alone must give up quickly.
		r.one = metaremote.New(metaremote.Config{Addrs: []string{r.url}, Secret: secret, HTTP: hc,
			RetryFor: 3 * time.Second, AttemptTimeout: time.Second})
		reps[i] = r
		peers = append(peers, "--peer", fmt.Sprintf("id=%s,addr=%s:%d,raft=%s:%d,zone=z%d",
			r.id, nd.Control, partAPIPort, nd.Cluster, partRaftPort, i))
	}
	for i, r := range reps {
		args := []string{"meta", "--id", r.id, "--zone", fmt.Sprintf("z%d", i),
			"--data", filepath.Join(dir, r.id), "--secret-file", secretPath,
			"--listen", fmt.Sprintf("%s:%d", r.node.Control, partAPIPort),
			"--advertise", fmt.Sprintf("%s:%d", r.node.Control, partAPIPort),
			"--raft-listen", fmt.Sprintf("%s:%d", r.node.Cluster, partRaftPort),
			"--heartbeat-timeout", partHeartbeat.String(), "--election-timeout", partElection.String(),
			"--leader-lease", partLease.String()}
		r.proc = r.node.Start(t, r.id, append([]string{shaleBin}, append(args, peers...)...)...)
	}
	clientOf := func(rs ...*partReplica) *metaremote.Client {
		var urls []string
		for _, r := range rs {
			urls = append(urls, r.url)
		}
		return metaremote.New(metaremote.Config{Addrs: urls, Secret: secret, HTTP: hc,
			RetryFor: 10 * time.Second, AttemptTimeout: time.Second})
	}
	ctx := context.Background()

	// 1. A leader; buckets written through a client that knows all three.
	start := time.Now()
	lead, st := partWaitLeader(t, reps, reps, 0)
	t.Logf("%s leads term %d, %v after start", lead.id, st.Term, time.Since(start).Round(time.Millisecond))
	all := clientOf(reps...)
	before := []string{"before-0", "before-1", "before-2"}
	for _, b := range before {
		if err := all.CreateBucket(ctx, b, partRegion); err != nil {
			t.Fatalf("create %s with all replicas up: %v", b, err)
		}
	}
	hashBefore, _ := partConverge(t, reps, partMinIndex(t, lead))

	// 2. Cut the leader's cluster link. It is alone: a mutation sent to it
	// alone must fail, however long it believes it still leads.
	var rest []*partReplica
	for _, r := range reps {
		if r != lead {
			rest = append(rest, r)
		}
	}
	cutAt := time.Now()
	lead.node.Cut(t)
	minority := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, partCall)
		defer cancel()
		minority <- lead.one.CreateBucket(cctx, "minority-0", partRegion)
	}()

	// 3. The majority elects a leader of a later term and commits.
	newLead, nst := partWaitLeader(t, reps, rest, st.Term)
	tLeader := time.Since(cutAt)
	t.Logf("%s leads term %d, %v after %s was cut off", newLead.id, nst.Term, tLeader.Round(time.Millisecond), lead.id)
	majority := clientOf(rest...)
	after := []string{"majority-0", "majority-1"}
	for _, b := range after {
		if err := majority.CreateBucket(ctx, b, partRegion); err != nil {
			t.Fatalf("create %s on the majority: %v", b, err)
		}
	}
	select {
	case err := <-minority:
		if err == nil {
			t.Fatalf("%s, cut off alone, acknowledged CreateBucket minority-0", lead.id)
		}
		partWantUnavailable(t, "CreateBucket on the cut-off old leader", err)
	case <-time.After(partCall + 5*time.Second):
		t.Fatalf("CreateBucket on the cut-off old leader neither failed nor succeeded within %v", partCall)
	}
	// The old leader has stepped down: it no longer claims to lead.
	var down meta.ReplicaStatus
	partWaitFor(t, lead.id+" steps down", func() (bool, string) {
		s, err := lead.one.ReplicaStatus(ctx)
		if err != nil {
			return false, err.Error()
		}
		down = s
		return s.State != "leader", "state " + s.State
	})
	t.Logf("%s alone: %s, term %d, log up to %d, committed %d, applied %d", lead.id,
		down.State, down.Term, down.LastIndex, down.CommitIndex, down.AppliedIndex)
	// Linearizable reads on it fail: none answers, neither with the
	// state before the partition nor with "no such bucket" for what the
	// majority has since created.
	rctx, cancel := context.WithTimeout(ctx, partCall)
	defer cancel()
	if bs, err := lead.one.ListBuckets(rctx); err == nil {
		t.Errorf("ListBuckets on the cut-off old leader answered %d buckets", len(bs))
	} else {
		partWantUnavailable(t, "ListBuckets on the cut-off old leader", err)
	}
	for _, b := range []string{"before-0", "majority-0"} {
		if _, err := lead.one.HeadBucket(rctx, b); err == nil {
			t.Errorf("HeadBucket %s on the cut-off old leader answered", b)
		} else {
			partWantUnavailable(t, "HeadBucket "+b+" on the cut-off old leader", err)
		}
	}

	// 4. Heal; every replica converges on the majority's keyspace.
	healAt := time.Now()
	lead.node.Heal(t)
	target := partMinIndex(t, newLead)
	hashAfter, idx := partConverge(t, reps, target)
	tConverge := time.Since(healAt)
	if hashAfter == hashBefore {
		t.Errorf("keyspace hash %s unchanged by the majority's buckets", hashAfter)
	}
	if err := all.CreateBucket(ctx, "after-heal", partRegion); err != nil {
		t.Fatalf("create after healing: %v", err)
	}
	if _, err := all.HeadBucket(ctx, "minority-0"); !errors.Is(err, meta.ErrNoSuchBucket) {
		t.Errorf("HeadBucket minority-0 after healing: %v, want %v", err, meta.ErrNoSuchBucket)
	}
	bs, err := all.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	want := slices.Concat(before, after, []string{"after-heal"})
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("buckets after healing: %v, want %v", names, want)
	}
	partConverge(t, reps, partMinIndex(t, newLead))
	for _, r := range reps {
		select {
		case <-r.proc.Done():
			t.Errorf("%s exited during the test: %v", r.id, r.proc.Err())
		default:
		}
	}
	t.Logf("partition: new leader %v after the cut; all 3 replicas identical (applied index %d, hash %s) %v after healing",
		tLeader.Round(time.Millisecond), idx, hashAfter, tConverge.Round(time.Millisecond))
}

// partWaitFor polls cond every 50ms until it holds, for at most partWait.
// On success it returns how long it took; it fails the test otherwise.
func partWaitFor(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > partWait {
			t.Fatalf("waiting for %s: still not after %v (%s)", what, partWait, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// partWaitLeader waits until one of among says it leads in a term after
// term and every replica of among agrees on it; it returns the leader
// and its status.
func partWaitLeader(t *testing.T, reps, among []*partReplica, term uint64) (*partReplica, meta.ReplicaStatus) {
	t.Helper()
	var lead *partReplica
	var st meta.ReplicaStatus
	partWaitFor(t, fmt.Sprintf("a leader of a term after %d", term), func() (bool, string) {
		var why []string
		lead = nil
		leaders := map[string]bool{}
		for _, r := range among {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := r.one.ReplicaStatus(ctx)
			cancel()
			if err != nil {
				why = append(why, fmt.Sprintf("%s: %v", r.id, err))
				continue
			}
			why = append(why, fmt.Sprintf("%s: %s term %d leader %q", r.id, s.State, s.Term, s.LeaderID))
			leaders[s.LeaderID] = true
			if s.State == "leader" && s.Term > term {
				lead, st = r, s
			}
		}
		ok := lead != nil && len(leaders) == 1 && leaders[lead.id]
		return ok, strings.Join(why, "; ")
	})
	return lead, st
}

// partMinIndex is the index every replica must reach: the leader's commit
// index now (after the writes the test made).
func partMinIndex(t *testing.T, lead *partReplica) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), partCall)
	defer cancel()
	s, err := lead.one.ReplicaStatus(ctx)
	if err != nil {
		t.Fatalf("status of %s: %v", lead.id, err)
	}
	return s.CommitIndex
}

// partConverge waits until every replica has applied the same index, at
// least min, and checks that at that moment their keyspace hashes are
// equal: the same index with different keyspaces is a divergence, not
// something to wait out. It returns the hash and the index.
func partConverge(t *testing.T, reps []*partReplica, min uint64) (string, uint64) {
	t.Helper()
	var hash string
	var idx uint64
	partWaitFor(t, fmt.Sprintf("every replica at one applied index ≥ %d", min), func() (bool, string) {
		hs := make([]meta.ReplicaHash, len(reps))
		var why []string
		for i, r := range reps {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			h, err := r.one.ReplicaHash(ctx)
			cancel()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", r.id, err)
			}
			hs[i] = h
			why = append(why, fmt.Sprintf("%s at %d", r.id, h.AppliedIndex))
		}
		for _, h := range hs {
			if h.AppliedIndex < min || h.AppliedIndex != hs[0].AppliedIndex {
				return false, strings.Join(why, ", ")
			}
		}
		for i, h := range hs {
			if h.Hash != hs[0].Hash {
				t.Fatalf("at applied index %d %s hashes %s but %s hashes %s", h.AppliedIndex,
					reps[0].id, hs[0].Hash, reps[i].id, h.Hash)
			}
		}
		hash, idx = hs[0].Hash, hs[0].AppliedIndex
		return true, ""
	})
	return hash, idx
}

// partWantUnavailable checks that err says the service is unavailable (no
// leader reachable) or that the replica does not lead — never some other
// answer, such as "no such bucket" from a stale read.
func partWantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, meta.ErrUnavailable) && !errors.Is(err, meta.ErrNotLeader) {
		t.Errorf("%s: %v, want %v or %v", what, err, meta.ErrUnavailable, meta.ErrNotLeader)
		return
	}
	t.Logf("%s: %v (as it should)", what, err)
}
