package raftnet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/clustertls"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/metatest"
	"github.com/shale-store/shale/meta/raftnet"
	"github.com/shale-store/shale/meta/replicated"
)

var (
	secret = bytes.Repeat([]byte("raft-s3cret-"), 4)
	ctx    = context.Background()
)

func quiet() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
}

// tlsPair is one replica's mutual-TLS configuration.
type tlsPair struct{ server, client *tls.Config }

// issue makes a CA in dir and returns a tlsPair per name, valid for
// 127.0.0.1.
func issue(t testing.TB, dir string, names ...string) []tlsPair {
	t.Helper()
	ca, err := clustertls.LoadOrCreateCA(dir, "test CA "+dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []tlsPair
	for _, n := range names {
		cert, key, err := ca.Issue(dir, n, []string{"127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		f := clustertls.Files{Cert: cert, Key: key, CA: ca.CertFile}
		s, err := clustertls.ServerConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := clustertls.ClientConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tlsPair{s, c})
	}
	return out
}

// tcpCluster is n replicas over raftnet on loopback TCP.
type tcpCluster struct {
	layers []*raftnet.Layer
	nodes  []*replicated.Node
}

func newTCPCluster(t testing.TB, n int, tlsCfg []tlsPair) *tcpCluster {
	t.Helper()
	root := t.TempDir()
	c := &tcpCluster{}
	var servers []raft.Server
	for i := 0; i < n; i++ {
		cfg := raftnet.Config{Secret: secret, ID: fmt.Sprintf("m%d", i)}
		if tlsCfg != nil {
			cfg.ServerTLS, cfg.ClientTLS = tlsCfg[i].server, tlsCfg[i].client
		}
		l, err := raftnet.Listen("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.layers = append(c.layers, l)
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(l.Addr().String())})
	}
	for i := 0; i < n; i++ {
		tr := raft.NewNetworkTransport(c.layers[i], 3, 2*time.Second, io.Discard)
		node, err := replicated.Open(replicated.Config{
			ID:                 string(servers[i].ID),
			Dir:                filepath.Join(root, string(servers[i].ID)),
			Transport:          tr,
			Bootstrap:          servers,
			HeartbeatTimeout:   500 * time.Millisecond,
			ElectionTimeout:    500 * time.Millisecond,
			LeaderLeaseTimeout: 500 * time.Millisecond,
			Logger:             quiet(),
		})
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = n.Close() // shuts the transport, which closes the layer
		}
	})
	return c
}

// leader waits for a leader that has passed a barrier.
func (c *tcpCluster) leader(t testing.TB) *replicated.Node {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n.IsLeader() && n.Barrier(ctx) == nil {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader within 15s")
	return nil
}

// waitSame waits until every replica has applied index and then compares
// their keyspaces.
func (c *tcpCluster) waitSame(t *testing.T, index uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		behind := false
		for _, n := range c.nodes {
			if n.AppliedIndex() < index {
				behind = true
			}
		}
		if !behind {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas did not reach index %d", index)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var first []byte
	for i, n := range c.nodes {
		h, err := n.Store().KeyspaceHash(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = h[:]
		} else if !bytes.Equal(first, h[:]) {
			t.Fatalf("replica %d's keyspace differs from replica 0's", i)
		}
	}
}

func manifest(key string) meta.Manifest {
	seg := meta.Segment{Number: 1, Size: 10, K: 1, M: 1, BlockSize: 4096, Shards: []meta.ShardRef{
		{Index: 0, Node: cluster.NodeID("n0"), ID: key + "-0", Size: 10},
		{Index: 1, Node: cluster.NodeID("n1"), ID: key + "-1", Size: 10},
	}}
	return meta.Manifest{Bucket: "b", Key: key, VersionID: key, Size: 10, ETag: key, Segments: []meta.Segment{seg}}
}

// TestThreeReplicasOverTCP: three replicas elect a leader over the
// authenticated transport, commit, and hold identical keyspaces.
func TestThreeReplicasOverTCP(t *testing.T) {
	c := newTCPCluster(t, 3, nil)
	l := c.leader(t)
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := l.Commit(ctx, manifest(fmt.Sprintf("k%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.waitSame(t, l.AppliedIndex())
	for i, ly := range c.layers {
		if ly.Refused() != 0 {
			t.Errorf("replica %d refused %d connections of its own group", i, ly.Refused())
		}
	}
}

// TestThreeReplicasOverMutualTLS: the same with internal TLS on.
func TestThreeReplicasOverMutualTLS(t *testing.T) {
	c := newTCPCluster(t, 3, issue(t, t.TempDir(), "m0", "m1", "m2"))
	l := c.leader(t)
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Commit(ctx, manifest("k")); err != nil {
		t.Fatal(err)
	}
	c.waitSame(t, l.AppliedIndex())
}

// TestConformanceThreeVotersTCP: the conformance suite on the leader of
// three replicas over loopback TCP.
func TestConformanceThreeVotersTCP(t *testing.T) {
	if testing.Short() {
		t.Skip("three TCP replicas per case")
	}
	metatest.Run(t, func(t *testing.T) meta.Service { return newTCPCluster(t, 3, nil).leader(t) })
}

// plainLayer is the stock, unauthenticated stream layer: what an attacker
// who reaches the port speaks.
type plainLayer struct{ net.Listener }

func (p plainLayer) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(a), timeout)
}

// attack sends target an AppendEntries from a would-be leader of a higher
// term carrying one entry, over stream; it returns the RPC's error.
func attack(t *testing.T, stream raft.StreamLayer, target *replicated.Node, addr raft.ServerAddress) error {
	t.Helper()
	tr := raft.NewNetworkTransport(stream, 1, 2*time.Second, io.Discard)
	defer tr.Close()
	r := target.Raft()
	last := r.LastIndex()
	term := r.CurrentTerm()
	req := raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("mallory"), Addr: []byte(tr.LocalAddr())},
		Term:              term + 5,
		PrevLogEntry:      last,
		PrevLogTerm:       term,
		Entries:           []*raft.Log{{Index: last + 1, Term: term + 5, Type: raft.LogNoop}},
		LeaderCommitIndex: last + 1,
	}
	var resp raft.AppendEntriesResponse
	return tr.AppendEntries("m0", addr, &req, &resp)
}

func attackerListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestUnauthenticatedPeersCannotAppend: a peer speaking raft without the
// handshake, or with the wrong secret, is refused and the replica's term
// and log do not move. The control case runs the same attack against a
// replica on the stock transport, where it succeeds — so the test can
// tell.
func TestUnauthenticatedPeersCannotAppend(t *testing.T) {
	c := newTCPCluster(t, 1, nil)
	n := c.leader(t)
	addr := raft.ServerAddress(c.layers[0].Addr().String())
	term, last := n.Raft().CurrentTerm(), n.Raft().LastIndex()

	if err := attack(t, plainLayer{attackerListener(t)}, n, addr); err == nil {
		t.Error("raft without a handshake: AppendEntries succeeded")
	}
	wrong, err := raftnet.Listen("127.0.0.1:0", raftnet.Config{Secret: bytes.Repeat([]byte("w"), 40), ID: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Dial(addr, time.Second); err == nil {
		t.Error("wrong secret: Dial succeeded")
	}
	if err := attack(t, wrong, n, addr); err == nil {
		t.Error("wrong secret: AppendEntries succeeded")
	}
	if got := c.layers[0].Refused(); got < 2 {
		t.Errorf("layer refused %d connections, want at least 2", got)
	}
	if n.Raft().CurrentTerm() != term || n.Raft().LastIndex() != last || !n.IsLeader() {
		t.Fatalf("after the attacks: term %d→%d, last index %d→%d, leader %v", term, n.Raft().CurrentTerm(), last, n.Raft().LastIndex(), n.IsLeader())
	}

	t.Run("control: the stock transport lets it through", func(t *testing.T) {
		ln := attackerListener(t)
		tr := raft.NewNetworkTransport(plainLayer{ln}, 3, 2*time.Second, io.Discard)
		id := raft.ServerID("s0")
		node, err := replicated.Open(replicated.Config{
			ID: string(id), Dir: t.TempDir(), Transport: tr,
			Bootstrap:        []raft.Server{{Suffrage: raft.Voter, ID: id, Address: tr.LocalAddr()}},
			HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond, LeaderLeaseTimeout: 500 * time.Millisecond,
			Logger: quiet(),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer node.Close()
		for !node.IsLeader() || node.Barrier(ctx) != nil {
			time.Sleep(20 * time.Millisecond)
		}
		term := node.Raft().CurrentTerm()
		if err := attack(t, plainLayer{attackerListener(t)}, node, tr.LocalAddr()); err != nil {
			t.Fatalf("attack on the stock transport failed: %v", err)
		}
		if node.Raft().CurrentTerm() <= term {
			t.Fatalf("stock transport: term %d did not move", term)
		}
	})
}

// TestOtherCARefused: with internal TLS, a peer whose certificate another
// CA issued fails before the handshake, even holding the secret; one with
// a good certificate but the wrong secret fails the handshake.
func TestOtherCARefused(t *testing.T) {
	dir := t.TempDir()
	pairs := issue(t, dir, "m0", "good")
	c := newTCPCluster(t, 1, pairs[:1])
	n := c.leader(t)
	addr := raft.ServerAddress(c.layers[0].Addr().String())
	term, last := n.Raft().CurrentTerm(), n.Raft().LastIndex()

	other := issue(t, t.TempDir(), "evil")[0]
	evil, err := raftnet.Listen("127.0.0.1:0", raftnet.Config{Secret: secret, ID: "evil", ServerTLS: other.server, ClientTLS: other.client})
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	if _, err := evil.Dial(addr, time.Second); err == nil {
		t.Error("certificate of another CA: Dial succeeded")
	}
	if err := attack(t, evil, n, addr); err == nil {
		t.Error("certificate of another CA: AppendEntries succeeded")
	}
	good := pairs[1]
	wrongSecret, err := raftnet.Listen("127.0.0.1:0", raftnet.Config{Secret: bytes.Repeat([]byte("w"), 40), ID: "good", ServerTLS: good.server, ClientTLS: good.client})
	if err != nil {
		t.Fatal(err)
	}
	defer wrongSecret.Close()
	if _, err := wrongSecret.Dial(addr, time.Second); err == nil {
		t.Error("cluster certificate, wrong secret: Dial succeeded")
	}
	// The same certificate with the right secret gets in.
	right, err := raftnet.Listen("127.0.0.1:0", raftnet.Config{Secret: secret, ID: "good", ServerTLS: good.server, ClientTLS: good.client})
	if err != nil {
		t.Fatal(err)
	}
	defer right.Close()
	conn, err := right.Dial(addr, time.Second)
	if err != nil {
		t.Fatalf("cluster certificate and secret: %v", err)
	}
	conn.Close()
	if n.Raft().CurrentTerm() != term || n.Raft().LastIndex() != last {
		t.Fatalf("after the attacks: term %d→%d, last index %d→%d", term, n.Raft().CurrentTerm(), last, n.Raft().LastIndex())
	}
}
