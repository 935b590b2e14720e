package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/shale-store/shale/cluster"
)

// TestMovesAfterGrowth: 6 nodes over 3 zones grow to 9 (one more per
// zone), 4+2. Every object's moves take it to exactly the set Place gives
// on the new map, move only shards whose node left the set, each to a node
// that held none of its shards — here always one of the new nodes, since
// the caps stay the same — and about a third of all shards move (3 of 9
// nodes are new), never more than the minimum.
func TestMovesAfterGrowth(t *testing.T) {
	const k, m, objects = 4, 2, 3000
	one := func(int) int64 { return 1 << 40 }
	before := NewPlanner(mustMap(t, gridNodes(3, 2, one)))
	after := NewPlanner(mustMap(t, gridNodes(3, 3, one)))
	isNew := map[cluster.NodeID]bool{}
	for _, n := range gridNodes(3, 3, one) {
		if _, ok := before.Map().Node(n.ID); !ok {
			isNew[n.ID] = true
		}
	}
	moved := 0
	for i := range objects {
		obj := fmt.Sprintf("obj-%d", i)
		cur, err := before.Place(obj, k, m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := after.Place(obj, k, m)
		if err != nil {
			t.Fatal(err)
		}
		mv, err := after.Moves(obj, k, cur)
		if err != nil {
			t.Fatal(err)
		}
		next := slices.Clone(cur)
		for _, x := range mv {
			if next[x.Shard] != x.From {
				t.Fatalf("%s: move %+v from a node the shard is not on (%s)", obj, x, next[x.Shard])
			}
			if slices.Contains(want, x.From) || slices.Contains(cur, x.To) || !isNew[x.To] {
				t.Fatalf("%s: move %+v is not needed or goes to a node that is not new (current %v, placed %v)", obj, x, cur, want)
			}
			next[x.Shard] = x.To
		}
		a, b := slices.Clone(next), slices.Clone(want)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: after the moves %v, placement wants %v", obj, next, want)
		}
		minimum := 0
		for _, n := range cur {
			if !slices.Contains(want, n) {
				minimum++
			}
		}
		if len(mv) != minimum {
			t.Fatalf("%s: %d moves, minimum %d", obj, len(mv), minimum)
		}
		moved += len(mv)
	}
	frac := float64(moved) / float64(objects*(k+m))
	t.Logf("%d of %d shards move (%.3f)", moved, objects*(k+m), frac)
	if frac < 0.25 || frac > 0.42 {
		t.Errorf("%.3f of the shards move after adding 3 nodes to 6; want about 1/3", frac)
	}
	// The same map: nothing moves.
	cur, _ := after.Place("obj-1", k, m)
	if mv, err := after.Moves("obj-1", k, cur); err != nil || mv != nil {
		t.Errorf("moves on an unchanged map: %v %v", mv, err)
	}
}

// TestMovesLeavesMissingShardsAndMovesDuplicates: a shard with no node is
// repair's, not moved; a second shard on the same node moves.
func TestMovesLeavesMissingShardsAndMovesDuplicates(t *testing.T) {
	p := NewPlanner(mustMap(t, gridNodes(3, 3, func(int) int64 { return 1 << 40 })))
	want, err := p.Place("x", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	cur := slices.Clone(want)
	cur[1] = ""
	cur[4] = cur[0]
	mv, err := p.Moves("x", 4, cur)
	if err != nil {
		t.Fatal(err)
	}
	if len(mv) != 1 || mv[0].Shard != 4 || mv[0].From != want[0] || slices.Contains(cur, mv[0].To) || !slices.Contains(want, mv[0].To) {
		t.Fatalf("moves %+v for current %v, placed %v", mv, cur, want)
	}
	if _, err := p.Moves("x", 4, []cluster.NodeID{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}); err == nil {
		t.Error("10 shards on a map of 9 nodes: no error")
	}
}
