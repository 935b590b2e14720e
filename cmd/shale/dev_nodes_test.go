package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/shale-store/shale/internal/devcluster"
)

// TestDevNodeSpecsKeepsAddedNodes: a dev restarted on a data dir starts its
// --nodes nodes as the flags say and, after them, every node the previous
// cluster file records beyond those (added by `shale admin node add`) with
// its recorded domain, data dir and capacity; every node keeps its address.
func TestDevNodeSpecsKeepsAddedNodes(t *testing.T) {
	prev := devcluster.File{Nodes: []devcluster.Node{
		{ID: "node-1", Zone: "zone-1", Addr: "127.0.0.1:1001"},
		{ID: "node-2", Zone: "zone-2", Addr: "127.0.0.1:1002"},
		{ID: "node-3", Zone: "zone-1", Rack: "zone-1-rack-1", Host: "host-3", Data: "/d/nodes/node-3", Addr: "127.0.0.1:1003", PID: 77, Args: []string{"node"}},
		{ID: "big-1", Zone: "zone-9", Rack: "r9", Host: "h9", Data: "/disk/big-1", Capacity: 1 << 30, Addr: "127.0.0.1:1004"},
	}}
	got := devNodeSpecs("/d", devFlags{nodes: 2, zones: 2}, prev)
	want := []devcluster.Node{
		{ID: "node-1", Zone: "zone-1", Rack: "zone-1-rack-1", Host: "host-1", Data: "/d/nodes/node-1", Addr: "127.0.0.1:1001"},
		{ID: "node-2", Zone: "zone-2", Rack: "zone-2-rack-1", Host: "host-2", Data: "/d/nodes/node-2", Addr: "127.0.0.1:1002"},
		{ID: "node-3", Zone: "zone-1", Rack: "zone-1-rack-1", Host: "host-3", Data: "/d/nodes/node-3", Addr: "127.0.0.1:1003"},
		{ID: "big-1", Zone: "zone-9", Rack: "r9", Host: "h9", Data: "/disk/big-1", Capacity: 1 << 30, Addr: "127.0.0.1:1004"},
	}
	if len(got) != len(want) {
		t.Fatalf("specs %+v", got)
	}
	for i := range want {
		g := got[i]
		if g.ID != want[i].ID || g.Zone != want[i].Zone || g.Rack != want[i].Rack || g.Host != want[i].Host ||
			g.Data != want[i].Data || g.Capacity != want[i].Capacity || g.Addr != want[i].Addr || g.PID != 0 || g.Args != nil {
			t.Errorf("spec %d = %+v\nwant %+v", i, g, want[i])
		}
	}
	// A fresh data dir: just the flags' nodes.
	if got := devNodeSpecs("/d", devFlags{nodes: 6, zones: 3}, devcluster.File{}); len(got) != 6 || got[5].Zone != "zone-3" || got[5].Addr != "" {
		t.Errorf("fresh specs %+v", got)
	}
}

// TestDevNodeArgs: every node of a dev cluster — started with it, restarted
// from the file or added — gets the cluster's flags, and its capacity when
// it has one.
func TestDevNodeArgs(t *testing.T) {
	s := devNodeStarter{exe: "/bin/shale", data: "/d", meta: "127.0.0.1:1,127.0.0.1:2", secretFile: "/d/secret",
		f: devFlags{scrubRate: 5, scrubInterval: 3e9, inlineMax: 100, childProcs: 2}}
	itls := internalTLSFlags{on: true, cert: "/d/internal-tls/node-7.pem", key: "/d/internal-tls/node-7-key.pem", ca: "/d/internal-tls/ca.pem"}
	n := devcluster.Node{ID: "node-7", Zone: "z1", Rack: "r1", Host: "h7", Data: "/d/nodes/node-7", Capacity: 1000}
	args := strings.Join(s.args(n, "127.0.0.1:9", itls), " ")
	for _, want := range []string{"node ", "--data /d/nodes/node-7", "--listen 127.0.0.1:9", "--id node-7", "--zone z1", "--rack r1",
		"--host h7", "--secret-file /d/secret", "--meta 127.0.0.1:1,127.0.0.1:2", "--capacity 1000", "--scrub-rate 5",
		"--scrub-interval 3s", "--inline-max 100", "--procs 2", "--internal-tls --internal-tls-cert /d/internal-tls/node-7.pem"} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q: %s", want, args)
		}
	}
	n.Capacity = 0
	if a := s.args(n, "127.0.0.1:9", internalTLSFlags{}); slices.Contains(a, "--capacity") || slices.Contains(a, "--internal-tls") {
		t.Errorf("no capacity, no TLS: %v", a)
	}
}
