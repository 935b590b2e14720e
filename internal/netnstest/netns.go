package netnstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// prefix starts the name of every namespace a Net makes, and of every
	// link it makes in the root namespace.
	prefix = "shnt"
	// ClusterIface and ControlIface are the names of a node's two
	// interfaces inside its namespace.
	ClusterIface = "cluster"
	ControlIface = "control"

	bridge     = "br0"
	cmdTimeout = 10 * time.Second // one `ip` command
	maxNodes   = 60               // /30s in the control /24, leaving room
)

// clusterNet is the subnet of the bridge. It exists only inside the
// namespaces of one Net, so every Net can use the same one.
var clusterNet = netip.MustParsePrefix("10.99.0.0/24")

// Config says what New builds.
type Config struct {
	// Nodes is the number of node namespaces; 0 means 3, at most 60.
	Nodes int
}

// Net is one private topology: a hub namespace with a bridge and the node
// namespaces whose cluster interface is a port of it. See the package
// comment.
type Net struct {
	// Hub is the namespace that holds the bridge.
	Hub string
	// Nodes are the node namespaces, Nodes[i].Index == i.
	Nodes []*Node
	// Control is the /24 of the control links, on the root namespace's side.
	Control netip.Prefix

	tag  string   // "<pid>-<rnd>", in every namespace's name
	rnd  string   // 6 hex digits, in every root-namespace link's name
	made []string // namespaces created, removed by Cleanup
}

// Node is one namespace of a Net.
type Node struct {
	Index int
	// NS is the namespace's name, as `ip netns` knows it.
	NS string
	// Cluster is the node's address on the bridge (interface "cluster").
	Cluster netip.Addr
	// Control is the node's address on its control link (interface
	// "control"); the root namespace reaches it at all times.
	Control netip.Addr
	// HostControl is the root namespace's end of the control link.
	HostControl netip.Addr
	// HostLink is the name of that end in the root namespace.
	HostLink string

	port string // the node's bridge port, inside Hub
	hub  string
}

// New builds a Net of cfg.Nodes nodes for t and registers its removal with
// t.Cleanup. It skips t if a namespace cannot be made here; any later
// failure is fatal.
func New(t testing.TB, cfg Config) *Net {
	t.Helper()
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Nodes < 1 || cfg.Nodes > maxNodes {
		t.Fatalf("netnstest: %d nodes; want 1 to %d", cfg.Nodes, maxNodes)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	removeStale(t)

	n := &Net{rnd: fmt.Sprintf("%06x", rand.Uint32()&0xffffff)}
	n.tag = fmt.Sprintf("%d-%s", os.Getpid(), n.rnd)
	n.Hub = n.nsName("hub")
	if _, err := ip("netns", "add", n.Hub); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	n.made = append(n.made, n.Hub)
	t.Cleanup(func() { n.remove(t) })

	control, err := freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	n.Control = control
	must(t, "-n", n.Hub, "link", "set", "lo", "up")
	must(t, "-n", n.Hub, "link", "add", bridge, "type", "bridge")
	must(t, "-n", n.Hub, "link", "set", bridge, "up")
	// A fresh namespace has no firewall rules, so bridged frames pass even
	// where br_netfilter hands them to iptables; say so explicitly where
	// the kernel lets this namespace choose (per-namespace since 5.3).
	hub := &Node{NS: n.Hub}
	_ = hub.Do(func() error {
		return os.WriteFile("/proc/sys/net/bridge/bridge-nf-call-iptables", []byte("0\n"), 0)
	})

	for i := range cfg.Nodes {
		n.Nodes = append(n.Nodes, n.addNode(t, i))
	}
	return n
}

func (n *Net) nsName(suffix string) string { return prefix + "-" + n.tag + "-" + suffix }

func (n *Net) addNode(t testing.TB, i int) *Node {
	t.Helper()
	base := n.Control.Addr().As4()
	host, peer := base, base
	host[3] = byte(4*i + 1)
	peer[3] = byte(4*i + 2)
	cl := clusterNet.Addr().As4()
	cl[3] = byte(i + 1)
	nd := &Node{
		Index:       i,
		NS:          n.nsName(strconv.Itoa(i)),
		Cluster:     netip.AddrFrom4(cl),
		Control:     netip.AddrFrom4(peer),
		HostControl: netip.AddrFrom4(host),
		// At most 15 bytes: "shnt" + 6 hex + "c" + 2 digits.
		HostLink: fmt.Sprintf("%s%sc%d", prefix, n.rnd, i),
		port:     fmt.Sprintf("p%d", i),
		hub:      n.Hub,
	}
	must(t, "netns", "add", nd.NS)
	n.made = append(n.made, nd.NS)
	must(t, "-n", nd.NS, "link", "set", "lo", "up")

	// Cluster: a veth from the node to a port of the hub's bridge.
	must(t, "-n", nd.NS, "link", "add", ClusterIface, "type", "veth", "peer", "name", nd.port, "netns", n.Hub)
	must(t, "-n", n.Hub, "link", "set", nd.port, "master", bridge)
	must(t, "-n", n.Hub, "link", "set", nd.port, "up")
	must(t, "-n", nd.NS, "addr", "add", prefixString(nd.Cluster, clusterNet.Bits()), "dev", ClusterIface)
	must(t, "-n", nd.NS, "link", "set", ClusterIface, "up")

	// Control: a point-to-point /30 between the root namespace and the node.
	must(t, "link", "add", nd.HostLink, "type", "veth", "peer", "name", ControlIface, "netns", nd.NS)
	must(t, "addr", "add", prefixString(nd.HostControl, 30), "dev", nd.HostLink)
	must(t, "link", "set", nd.HostLink, "up")
	must(t, "-n", nd.NS, "addr", "add", prefixString(nd.Control, 30), "dev", ControlIface)
	must(t, "-n", nd.NS, "link", "set", ControlIface, "up")
	return nd
}

func prefixString(a netip.Addr, bits int) string { return netip.PrefixFrom(a, bits).String() }

// Cut takes the node's port on the bridge down: from now on no packet
// passes between this node and any other over the cluster network, in
// either direction. Its control link is untouched.
func (nd *Node) Cut(t testing.TB) {
	t.Helper()
	must(t, "-n", nd.hub, "link", "set", nd.port, "down")
}

// Heal brings the node's bridge port back up. Connectivity returns once the
// kernel has the link up again, which callers should wait for, not assume.
func (nd *Node) Heal(t testing.TB) {
	t.Helper()
	must(t, "-n", nd.hub, "link", "set", nd.port, "up")
}

// remove kills whatever still runs in the Net's namespaces and deletes
// them, which deletes their links (both ends of each veth) and the bridge.
// A namespace it cannot delete fails the test: the leak must be seen.
func (n *Net) remove(t testing.TB) {
	for i := len(n.made) - 1; i >= 0; i-- {
		if err := deleteNS(n.made[i]); err != nil {
			t.Errorf("netnstest: %v", err)
		}
	}
	for _, nd := range n.Nodes {
		// Deleting the namespace destroys the pair, the root end a moment
		// later: a link gone between the two calls is no leak.
		if _, err := ip("link", "show", nd.HostLink); err == nil {
			if _, err := ip("link", "delete", nd.HostLink); err != nil {
				if _, still := ip("link", "show", nd.HostLink); still == nil {
					t.Errorf("netnstest: %v", err)
				}
			}
		}
	}
}

// deleteNS SIGKILLs every process inside ns (only processes the test
// started, or the leftovers of an aborted run, live there; never this one,
// should one of its threads be there) and deletes it.
func deleteNS(ns string) error {
	if out, err := ip("netns", "pids", ns); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, err := ip("netns", "delete", ns)
	return err
}

// removeStale deletes the namespaces of earlier Nets whose process no
// longer exists (an aborted or killed run); those of live processes, this
// one's included, are left alone.
func removeStale(t testing.TB) {
	out, err := ip("netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], prefix+"-") {
			continue
		}
		name := fields[0]
		parts := strings.SplitN(name, "-", 3)
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid == os.Getpid() || processExists(pid) {
			continue
		}
		if err := deleteNS(name); err != nil {
			t.Logf("netnstest: stale namespace %s: %v", name, err)
		} else {
			t.Logf("netnstest: removed stale namespace %s", name)
		}
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freeSubnet picks a /24 for the control links that overlaps no route of
// the root namespace (in any table), so the host's own networks and other
// Nets alive at the same moment are left alone.
func freeSubnet() (netip.Prefix, error) {
	out, err := ip("-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return netip.Prefix{}, err
	}
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return netip.Prefix{}, fmt.Errorf("parse `ip -j route`: %w", err)
	}
	var used []netip.Prefix
	for _, r := range routes {
		if p, err := netip.ParsePrefix(r.Dst); err == nil {
			used = append(used, p)
		} else if a, err := netip.ParseAddr(r.Dst); err == nil {
			used = append(used, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for range 200 {
		var c [4]byte
		switch rand.IntN(3) {
		case 0: // 10.100.0.0 – 10.253.255.0, clear of clusterNet
			c = [4]byte{10, byte(100 + rand.IntN(154)), byte(rand.IntN(256)), 0}
		case 1:
			c = [4]byte{172, byte(16 + rand.IntN(16)), byte(rand.IntN(256)), 0}
		default:
			c = [4]byte{192, 168, byte(rand.IntN(256)), 0}
		}
		cand := netip.PrefixFrom(netip.AddrFrom4(c), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, errors.New("netnstest: no free private /24 for the control links")
}

// ip runs `ip args…`, bounded by cmdTimeout, and returns its output.
func ip(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

func must(t testing.TB, args ...string) {
	t.Helper()
	if _, err := ip(args...); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
}
