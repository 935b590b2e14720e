package placement

import (
	"errors"
	"slices"
	"testing"

	"github.com/shale-store/shale/cluster"
)

func node(id, zone, rack, host string) cluster.Node {
	return cluster.Node{ID: cluster.NodeID(id), Domain: cluster.Domain{Zone: zone, Rack: rack, Host: host}}
}

// Ties of key and draw (never seen in practice) fall to the node id, never
// to a node's position.
func TestTieBreakByID(t *testing.T) {
	a, b := node("alpha", "z", "r", "h1"), node("beta", "z", "r", "h2")
	for _, order := range [][]cluster.Node{{a, b}, {b, a}} {
		p := newPlanner(nil, order)
		s := p.getScratch()
		for j := range p.elig {
			s.key[j], s.x[j] = 42, 7
		}
		ia := int32(slices.IndexFunc(order, func(n cluster.Node) bool { return n.ID == "alpha" }))
		if !p.before(s, ia, 1-ia) || p.before(s, 1-ia, ia) {
			t.Errorf("order %v: alpha should rank ahead of beta on a full tie", order)
		}
	}
}

func TestArgs(t *testing.T) {
	m := mustMap(t, gridNodes(3, 4, func(int) int64 { return 0 }))
	for _, c := range []struct {
		obj      string
		k, m, mn int
	}{{"", 2, 1, 0}, {"x", 0, 1, 0}, {"x", 2, -1, 0}, {"x", 200, 57, 0}, {"x", 2, 1, 4}, {"x", 2, 1, -1}} {
		var err error
		if c.mn != 0 {
			_, err = PlaceDegraded(m, c.obj, c.k, c.m, c.mn)
		} else {
			_, err = Place(m, c.obj, c.k, c.m)
		}
		if !errors.Is(err, ErrInvalidArgs) {
			t.Errorf("%+v: %v, want ErrInvalidArgs", c, err)
		}
	}
	_, err := Place(m, "x", 10, 4)
	var tf *TooFewNodesError
	if !errors.As(err, &tf) || tf.Need != 14 || tf.Have != 12 || !errors.Is(err, ErrTooFewNodes) {
		t.Errorf("14 shards on 12 nodes: %v", err)
	}
	if _, err := Place(nil, "x", 1, 0); !errors.Is(err, ErrTooFewNodes) {
		t.Errorf("nil map: %v", err)
	}
	if got, err := PlaceDegraded(m, "x", 4, 2, 6); err != nil || countFilled(got) != 6 {
		t.Errorf("degraded with enough nodes: %v %v", got, err)
	} else if full, _ := Place(m, "x", 4, 2); !slices.Equal(full, got) {
		t.Errorf("PlaceDegraded %v differs from Place %v with enough nodes", got, full)
	}
}

func TestReplace(t *testing.T) {
	// Zones a, b, c with two nodes each, d with one; 3 shards per object.
	nodes := []cluster.Node{
		node("a1", "a", "r1", "h1"), node("a2", "a", "r2", "h2"),
		node("b1", "b", "r1", "h1"), node("b2", "b", "r2", "h2"),
		node("c1", "c", "r1", "h1"), node("c2", "c", "r2", "h2"),
		node("d1", "d", "r1", "h1"),
	}
	nodes[1].State = cluster.Down // a2
	m := mustMap(t, nodes)
	cur := []cluster.NodeID{"a2", "b1", "c1"}

	// a2 (down) is lost: the new node must come from zone a or d, which hold
	// none of the object's other shards — never b or c.
	got, err := Replace(m, "obj", cur, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != "b1" || got[2] != "c1" || !slices.Contains([]cluster.NodeID{"a1", "d1"}, got[0]) {
		t.Errorf("Replace = %v", got)
	}
	if !slices.Equal(cur, []cluster.NodeID{"a2", "b1", "c1"}) {
		t.Error("Replace modified its input")
	}
	// Kept nodes stay whatever their state; nothing lost → a copy.
	if got, err := Replace(m, "obj", cur, nil); err != nil || !slices.Equal(got, cur) {
		t.Errorf("no loss: %v %v", got, err)
	}
	// Holes fill like lost shards.
	if got, err := Replace(m, "obj", []cluster.NodeID{"", "b1", ""}, []int{0, 2}); err != nil || countFilled(got) != 3 || got[1] != "b1" {
		t.Errorf("holes: %v %v", got, err)
	}
	for _, lost := range [][]int{{3}, {-1}, {1, 1}} {
		if _, err := Replace(m, "obj", cur, lost); !errors.Is(err, ErrInvalidArgs) {
			t.Errorf("lost %v: %v", lost, err)
		}
	}
	// Six shards on the six Up nodes: nothing is left to replace with.
	all := []cluster.NodeID{"a1", "b1", "b2", "c1", "c2", "d1"}
	if _, err := Replace(m, "obj", all, []int{0}); !errors.Is(err, ErrTooFewNodes) {
		t.Errorf("no spare node: %v", err)
	}
}

// A loss that can only be filled by making a domain exceed both its cap and
// the object's previous spread is ErrSpread.
func TestReplaceSpread(t *testing.T) {
	nodes := []cluster.Node{
		node("a1", "a", "r", "h1"), node("b1", "b", "r", "h1"), node("c1", "c", "r", "h1"),
		node("a2", "a", "r", "h2"), node("a3", "a", "r", "h3"),
	}
	nodes[2].State = cluster.Out
	m := mustMap(t, nodes)
	// Caps for 3 shards over the eligible zones a, b: ceil(3/2) = 2.
	// Holding a1, b1, c1 and losing c1, the only candidates are a2 and a3;
	// either puts 2 shards in zone a, which the cap allows.
	got, err := Replace(m, "o", []cluster.NodeID{"a1", "b1", "c1"}, []int{2})
	if err != nil || got[2] == "" {
		t.Fatalf("within cap: %v %v", got, err)
	}
	// Losing b1 and c1 needs two more nodes in zone a: three there exceeds
	// the cap 2 and the previous spread 1.
	if _, err := Replace(m, "o", []cluster.NodeID{"a1", "b1", "c1"}, []int{1, 2}); !errors.Is(err, ErrSpread) {
		t.Errorf("over cap: %v", err)
	}
}
