package replicated_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/replicated"
)

var ctx = context.Background()

// testCluster is n replicas in one process over raft's in-memory
// transport, with short timeouts.
type testCluster struct {
	t       testing.TB
	cfgs    []replicated.Config
	trans   []*raft.InmemTransport
	nodes   []*replicated.Node // nil while stopped
	servers []raft.Server
}

func quickConfig(c *replicated.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 500 * time.Millisecond
	c.ApplyTimeout = 10 * time.Second
	c.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: io.Discard})
}

func newCluster(t testing.TB, n int, tweak func(*replicated.Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, trans: make([]*raft.InmemTransport, n), nodes: make([]*replicated.Node, n)}
	root := t.TempDir()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("m%d", i)
		c.servers = append(c.servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	for i := 0; i < n; i++ {
		cfg := replicated.Config{ID: string(c.servers[i].ID), Dir: filepath.Join(root, string(c.servers[i].ID)), Bootstrap: c.servers}
		quickConfig(&cfg)
		if tweak != nil {
			tweak(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	for i := 0; i < n; i++ {
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			if c.nodes[i] != nil {
				c.stop(i)
			}
		}
	})
	return c
}

// start (re)opens replica i with a fresh transport connected to the others.
func (c *testCluster) start(i int) {
	c.t.Helper()
	_, tr := raft.NewInmemTransport(c.servers[i].Address)
	c.trans[i] = tr
	c.connect(i)
	cfg := c.cfgs[i]
	cfg.Transport = tr
	n, err := replicated.Open(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = n
}

func (c *testCluster) stop(i int) {
	c.t.Helper()
	if err := c.nodes[i].Close(); err != nil {
		c.t.Logf("close %d: %v", i, err)
	}
	c.nodes[i] = nil
	c.disconnect(i)
}

// connect links replica i both ways with every running replica.
func (c *testCluster) connect(i int) {
	for j, tr := range c.trans {
		if j == i || tr == nil {
			continue
		}
		c.trans[i].Connect(c.servers[j].Address, tr)
		tr.Connect(c.servers[i].Address, c.trans[i])
	}
}

// disconnect cuts replica i off from every other.
func (c *testCluster) disconnect(i int) {
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i && tr != nil {
			tr.Disconnect(c.servers[i].Address)
		}
	}
}

// leader waits for one running replica to lead and for it to have applied
// everything before its term (a barrier).
func (c *testCluster) leader() *replicated.Node {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n != nil && n.IsLeader() {
				if err := n.Barrier(ctx); err == nil {
					return n
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader within 15s")
	return nil
}

// leaderBesides waits for a running replica other than oi to lead, with
// everything before its term applied (oi cut off: the majority's leader).
func (c *testCluster) leaderBesides(oi int) *replicated.Node {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if i != oi && n != nil && n.IsLeader() && n.Barrier(ctx) == nil {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("the majority elected no leader")
	return nil
}

func (c *testCluster) index(n *replicated.Node) int {
	for i, x := range c.nodes {
		if x == n {
			return i
		}
	}
	return -1
}

// waitApplied waits until every running replica has applied index.
func (c *testCluster) waitApplied(index uint64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		behind := false
		for _, n := range c.nodes {
			if n != nil && n.AppliedIndex() < index {
				behind = true
			}
		}
		if !behind {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, n := range c.nodes {
		if n != nil {
			c.t.Logf("replica %d applied %d", i, n.AppliedIndex())
		}
	}
	c.t.Fatalf("replicas did not reach index %d", index)
}

// hashes returns each running replica's keyspace hash.
func (c *testCluster) hashes() map[int]string {
	c.t.Helper()
	out := map[int]string{}
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		h, err := n.Store().KeyspaceHash(ctx)
		if err != nil {
			c.t.Fatal(err)
		}
		out[i] = fmt.Sprintf("%x", h)
	}
	return out
}

func (c *testCluster) sameKeyspace() string {
	c.t.Helper()
	hs := c.hashes()
	var first string
	for i, h := range hs {
		if first == "" {
			first = h
		}
		if h != first {
			c.t.Fatalf("replica keyspaces differ: %v (at %d)", hs, i)
		}
	}
	return first
}

var _ meta.Service = (*replicated.Node)(nil)
