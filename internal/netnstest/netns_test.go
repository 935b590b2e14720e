package netnstest_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/netnstest"
)

const (
	port        = 7000
	dialTimeout = time.Second
	healWait    = 10 * time.Second // bound on connectivity coming back
)

// listen starts a TCP server on every address of nd's namespace that
// greets each connection with the namespace's name.
func listen(t *testing.T, nd *netnstest.Node) {
	t.Helper()
	var ln net.Listener
	err := nd.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", nd.NS, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", nd.NS)
			c.Close()
		}
	}()
}

// reach connects to nd's server at addr, from the namespace of from (nil:
// the root namespace, where the test runs), and checks the greeting.
func reach(from, nd *netnstest.Node, addr netip.Addr) error {
	dial := func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, port).String(), dialTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(dialTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if want := "hello from " + nd.NS + "\n"; line != want {
			return fmt.Errorf("%s answered %q, want %q", addr, line, want)
		}
		return nil
	}
	if from == nil {
		return dial()
	}
	return from.Do(dial)
}

func name(nd *netnstest.Node) string {
	if nd == nil {
		return "root"
	}
	return nd.NS
}

// mustReach waits (bounded) until from reaches nd at addr.
func mustReach(t *testing.T, from, nd *netnstest.Node, addr netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(healWait)
	for {
		err := reach(from, nd, addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot reach %s at %s within %v: %v", name(from), nd.NS, addr, healWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mustNotReach checks that a connection from from to nd at addr fails. It
// cannot flake: only a connection that succeeds makes it fail.
func mustNotReach(t *testing.T, from, nd *netnstest.Node, addr netip.Addr) {
	t.Helper()
	err := reach(from, nd, addr)
	if err == nil {
		t.Fatalf("%s reached %s at %s across the cut", name(from), nd.NS, addr)
	}
	var ne net.Error
	if !errors.As(err, &ne) {
		t.Fatalf("%s to %s at %s: %v, want a network error", name(from), nd.NS, addr, err)
	}
	t.Logf("%s to %s at %s: %v (as it should)", name(from), nd.NS, addr, err)
}

// TestPartition proves the topology: nodes talk over the cluster network;
// cutting one node's link isolates it from the others, who still talk to
// each other, while the root namespace reaches every node over its control
// link; healing restores the cluster network.
func TestPartition(t *testing.T) {
	n := netnstest.New(t, netnstest.Config{Nodes: 3})
	a, b, c := n.Nodes[0], n.Nodes[1], n.Nodes[2]
	for _, nd := range n.Nodes {
		listen(t, nd)
	}
	for _, from := range n.Nodes {
		for _, to := range n.Nodes {
			mustReach(t, from, to, to.Cluster)
		}
		mustReach(t, nil, from, from.Control)
	}

	a.Cut(t)
	mustNotReach(t, b, a, a.Cluster)
	mustNotReach(t, c, a, a.Cluster)
	mustNotReach(t, a, b, b.Cluster)
	mustReach(t, b, c, c.Cluster) // the majority still talks
	mustReach(t, c, b, b.Cluster)
	for _, nd := range n.Nodes {
		mustReach(t, nil, nd, nd.Control) // control survives the cut
	}

	a.Heal(t)
	for _, from := range n.Nodes {
		for _, to := range n.Nodes {
			mustReach(t, from, to, to.Cluster)
		}
	}
}

// TestStartAndCleanup runs a command inside a node's namespace, and checks
// that once a test ends its namespaces, links and processes are gone.
func TestStartAndCleanup(t *testing.T) {
	var (
		n    *netnstest.Net
		proc *netnstest.Process
		slow *netnstest.Process
	)
	t.Run("net", func(t *testing.T) {
		n = netnstest.New(t, netnstest.Config{Nodes: 1})
		nd := n.Nodes[0]
		proc = nd.Start(t, "addr", "ip", "-o", "-4", "addr", "show")
		select {
		case <-proc.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("ip addr show did not end")
		}
		if err := proc.Err(); err != nil {
			t.Fatalf("ip addr show: %v\n%s", err, proc.Tail(20))
		}
		out := proc.Tail(20)
		for _, want := range []string{netnstest.ClusterIface + " ", nd.Cluster.String() + "/24",
			netnstest.ControlIface + " ", nd.Control.String() + "/30"} {
			if !strings.Contains(out, want) {
				t.Errorf("inside %s, `ip addr show` lacks %q:\n%s", nd.NS, want, out)
			}
		}
		if strings.Contains(out, "eth0") {
			t.Errorf("inside %s, `ip addr show` shows the host's eth0:\n%s", nd.NS, out)
		}
		slow = nd.Start(t, "sleep", "sleep", "600")
	})
	if n == nil || slow == nil {
		t.Fatal("subtest did not build the net")
	}
	select {
	case <-slow.Done():
	default:
		t.Error("the process started in the subtest outlived it")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	for _, ns := range []string{n.Hub, n.Nodes[0].NS} {
		if strings.Contains(string(out), ns) {
			t.Errorf("namespace %s outlived its test:\n%s", ns, out)
		}
	}
	if out, err := exec.Command("ip", "link", "show", n.Nodes[0].HostLink).CombinedOutput(); err == nil {
		t.Errorf("link %s outlived its test:\n%s", n.Nodes[0].HostLink, out)
	}
}
