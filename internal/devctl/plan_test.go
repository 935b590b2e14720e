package devctl

import (
	"errors"
	"testing"

	"github.com/shale-store/shale/internal/devcluster"
)

// TestPlan: the node a request starts — defaults as dev names its own
// nodes, the next free id, and every refusal with the sentinel the CLI
// reports it by.
func TestPlan(t *testing.T) {
	const data = "/srv/dev"
	file := devcluster.File{
		Metas: []devcluster.MetaReplica{{ID: "meta-1", Data: "/srv/dev/metas/meta-1"}, {ID: "meta-2", Data: "/disk9/meta-2"}},
		Nodes: []devcluster.Node{
			{ID: "node-1", Data: "/srv/dev/nodes/node-1"},
			{ID: "node-2", Data: "/srv/dev/nodes/node-2"},
			{ID: "node-4", Data: "/disk2/node-4"},
		},
	}
	for _, tc := range []struct {
		name  string
		known []string // ids in meta's map
		req   AddNode
		want  devcluster.Node // when err is nil
		err   error
	}{
		{name: "defaults: the lowest free id", req: AddNode{Zone: "zone-1"},
			want: devcluster.Node{ID: "node-3", Zone: "zone-1", Rack: "zone-1-rack-1", Host: "host-3", Data: "/srv/dev/nodes/node-3"}},
		{name: "a node meta knows is taken too", known: []string{"node-3", "node-5"}, req: AddNode{Zone: "zone-2"},
			want: devcluster.Node{ID: "node-6", Zone: "zone-2", Rack: "zone-2-rack-1", Host: "host-6", Data: "/srv/dev/nodes/node-6"}},
		{name: "everything given", req: AddNode{ID: "big-1", Zone: "z", Rack: "r", Host: "h", Data: "/disk3/big/", Capacity: 1 << 40},
			want: devcluster.Node{ID: "big-1", Zone: "z", Rack: "r", Host: "h", Data: "/disk3/big", Capacity: 1 << 40}},
		{name: "another id's default host", req: AddNode{ID: "extra", Zone: "z"},
			want: devcluster.Node{ID: "extra", Zone: "z", Rack: "z-rack-1", Host: "host-extra", Data: "/srv/dev/nodes/extra"}},

		{name: "no zone", req: AddNode{}, err: ErrInvalid},
		{name: "zone with a slash", req: AddNode{Zone: "a/b"}, err: ErrInvalid},
		{name: "rack with a space", req: AddNode{Zone: "z", Rack: "r 1"}, err: ErrInvalid},
		{name: "host starting with a dot", req: AddNode{Zone: "z", Host: ".h"}, err: ErrInvalid},
		{name: "unsafe id ../x", req: AddNode{ID: "../x", Zone: "z"}, err: ErrInvalid},
		{name: "unsafe id a/b", req: AddNode{ID: "a/b", Zone: "z"}, err: ErrInvalid},
		{name: "id ..", req: AddNode{ID: "..", Zone: "z"}, err: ErrInvalid},
		{name: "negative capacity", req: AddNode{Zone: "z", Capacity: -1}, err: ErrInvalid},
		{name: "relative data dir", req: AddNode{Zone: "z", Data: "nodes/x"}, err: ErrInvalid},
		{name: "data dir among dev's files", req: AddNode{Zone: "z", Data: "/srv/dev/logs/x"}, err: ErrInvalid},
		{name: "data dir DATA/nodes itself", req: AddNode{Zone: "z", Data: "/srv/dev/nodes"}, err: ErrInvalid},
		{name: "data dir above the cluster", req: AddNode{Zone: "z", Data: "/srv"}, err: ErrInvalid},

		{name: "duplicate id in the file", req: AddNode{ID: "node-2", Zone: "z"}, err: ErrTaken},
		{name: "duplicate id in meta's map", known: []string{"node-7"}, req: AddNode{ID: "node-7", Zone: "z"}, err: ErrTaken},
		{name: "a meta replica's id", req: AddNode{ID: "meta-1", Zone: "z"}, err: ErrTaken},
		{name: "a future meta replica's id", req: AddNode{ID: "meta-9", Zone: "z"}, err: ErrTaken},
		{name: "the gateway's name", req: AddNode{ID: "gateway", Zone: "z"}, err: ErrTaken},
		{name: "another node's data dir", req: AddNode{Zone: "z", Data: "/disk2/node-4"}, err: ErrTaken},
		{name: "inside another node's data dir", req: AddNode{Zone: "z", Data: "/disk2/node-4/sub"}, err: ErrTaken},
		{name: "around another node's data dir", req: AddNode{Zone: "z", Data: "/disk2"}, err: ErrTaken},
		{name: "a meta replica's data dir", req: AddNode{Zone: "z", Data: "/disk9/meta-2"}, err: ErrTaken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(data, file, tc.known, tc.req)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Plan = %+v, %v; want an error wrapping %v", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.want.ID || got.Zone != tc.want.Zone || got.Rack != tc.want.Rack || got.Host != tc.want.Host ||
				got.Data != tc.want.Data || got.Capacity != tc.want.Capacity || got.Addr != "" || got.PID != 0 || got.Args != nil {
				t.Errorf("Plan = %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestPlanNeverRepeatsAnID: ids allocated one after another, each added to
// the file, are all distinct and each is refused when asked for again.
func TestPlanNeverRepeatsAnID(t *testing.T) {
	var f devcluster.File
	seen := map[string]bool{}
	for range 20 {
		n, err := Plan("/d", f, []string{"node-2"}, AddNode{Zone: "z"})
		if err != nil {
			t.Fatal(err)
		}
		if seen[n.ID] || n.ID == "node-2" {
			t.Fatalf("id %s handed out twice (or taken in meta)", n.ID)
		}
		seen[n.ID] = true
		f.Nodes = append(f.Nodes, n)
		if _, err := Plan("/d", f, nil, AddNode{ID: n.ID, Zone: "z"}); !errors.Is(err, ErrTaken) {
			t.Fatalf("asking for %s again: %v", n.ID, err)
		}
	}
}
