package placement

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/shale-store/shale/cluster"
)

func objName(i int) string { return "bucket/" + strconv.Itoa(i) }

// shardCounts places objects 10+4 and counts shards per node, on two
// goroutines (the planner is safe for concurrent use; both are waited for).
func shardCounts(t *testing.T, p *Planner, objects int) map[cluster.NodeID]int {
	t.Helper()
	const workers = 2
	parts := make([]map[cluster.NodeID]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts := map[cluster.NodeID]int{}
			for i := w; i < objects; i += workers {
				ids, err := p.Place(objName(i), 10, 4)
				if err != nil {
					errs[w] = err
					return
				}
				for _, id := range ids {
					counts[id]++
				}
			}
			parts[w] = counts
		}()
	}
	wg.Wait()
	counts := map[cluster.NodeID]int{}
	for w := range workers {
		if errs[w] != nil {
			t.Fatal(errs[w])
		}
		for id, c := range parts[w] {
			counts[id] += c
		}
	}
	return counts
}

func balanceObjects() int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// TestBalanceEqual: 10+4 on 100 equal nodes in 5 zones spreads shards with
// a coefficient of variation of at most 2%.
func TestBalanceEqual(t *testing.T) {
	nodes := gridNodes(5, 20, func(int) int64 { return 0 })
	objects := balanceObjects()
	counts := shardCounts(t, NewPlanner(mustMap(t, nodes)), objects)
	if len(counts) != len(nodes) {
		t.Fatalf("%d of %d nodes got shards", len(counts), len(nodes))
	}
	mean := float64(objects*14) / float64(len(nodes))
	ss := 0.0
	for _, c := range counts {
		ss += (float64(c) - mean) * (float64(c) - mean)
	}
	cv := math.Sqrt(ss/float64(len(nodes))) / mean
	t.Logf("%d objects, 100 equal nodes: mean %.0f shards/node, CV %.3f%%", objects, mean, 100*cv)
	if cv > 0.02 {
		t.Errorf("coefficient of variation %.3f%% > 2%%", 100*cv)
	}
}

// TestBalanceWeighted: with capacities 1:2 every node's share of shards is
// within ±5% of its share of capacity.
func TestBalanceWeighted(t *testing.T) {
	// Capacity alternates in pairs, so each rack and zone holds both kinds.
	capOf := func(i int) int64 { return int64(1+(i/2)%2) << 40 }
	nodes := gridNodes(5, 20, capOf)
	objects := balanceObjects()
	counts := shardCounts(t, NewPlanner(mustMap(t, nodes)), objects)
	total := 0.0
	for _, n := range nodes {
		total += n.Weight()
	}
	worst := 0.0
	var byKind [2][]float64
	for i, n := range nodes {
		want := float64(objects*14) * n.Weight() / total
		dev := float64(counts[n.ID])/want - 1
		byKind[(i/2)%2] = append(byKind[(i/2)%2], dev)
		if math.Abs(dev) > math.Abs(worst) {
			worst = dev
		}
		if math.Abs(dev) > 0.05 {
			t.Errorf("%s (capacity %d TiB): %d shards, %.2f%% off its proportion %.0f", n.ID, n.Capacity>>40, counts[n.ID], 100*dev, want)
		}
	}
	t.Logf("%d objects, 100 nodes 1:2: worst deviation %.2f%%; mean deviation small %.2f%%, big %.2f%%",
		objects, 100*worst, 100*meanOf(byKind[0]), 100*meanOf(byKind[1]))
}

func meanOf(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func movementObjects() int {
	if testing.Short() {
		return 20_000
	}
	return 100_000
}

// TestRemoveNodeMovesOnlyItsShards: removing one node of N changes only the
// placements that held it, each by exactly that node; every other placement
// stays identical, index for index.
func TestRemoveNodeMovesOnlyItsShards(t *testing.T) {
	nodes := gridNodes(5, 20, func(i int) int64 { return int64(1+i%3) << 40 })
	gone := nodes[37].ID
	before := NewPlanner(mustMap(t, nodes))
	after := NewPlanner(mustMap(t, slices.DeleteFunc(slices.Clone(nodes), func(n cluster.Node) bool { return n.ID == gone })))
	if before.Caps(14) != after.Caps(14) {
		t.Fatalf("caps changed: %+v → %+v", before.Caps(14), after.Caps(14))
	}
	held, moved, indexMoves := 0, 0, 0
	objects := movementObjects()
	for i := range objects {
		a, _ := before.Place(objName(i), 10, 4)
		b, _ := after.Place(objName(i), 10, 4)
		if !slices.Contains(a, gone) {
			if !slices.Equal(a, b) {
				t.Fatalf("object %d did not use %s but moved: %v → %v", i, gone, a, b)
			}
			continue
		}
		held++
		for _, id := range a {
			if id != gone && !slices.Contains(b, id) {
				t.Fatalf("object %d: shard on %s moved although only %s left: %v → %v", i, id, gone, a, b)
			}
		}
		for j := range a {
			if a[j] != b[j] {
				moved++
				if a[j] != gone {
					indexMoves++
				}
			}
		}
	}
	t.Logf("removed 1 of 100 nodes: %d of %d objects held it; node sets changed only there, by one node each; "+
		"%d shard indexes changed, %d of them re-indexed shards of surviving nodes", held, objects, moved, indexMoves)
	if held == 0 {
		t.Fatal("no object used the removed node; the test proves nothing")
	}
}

// TestAddNodeMovesLittle: adding a node to N moves at most 1.2/N of all
// shards; the only shards that change nodes are those the new node takes.
func TestAddNodeMovesLittle(t *testing.T) {
	nodes := gridNodes(5, 20, func(int) int64 { return 0 })
	extra := cluster.Node{ID: "node-new", Domain: cluster.Domain{Zone: "zone-2", Rack: "rack-1", Host: "host-new"}}
	before := NewPlanner(mustMap(t, nodes))
	after := NewPlanner(mustMap(t, append(slices.Clone(nodes), extra)))
	if before.Caps(14) != after.Caps(14) {
		t.Fatalf("caps changed: %+v → %+v", before.Caps(14), after.Caps(14))
	}
	objects := movementObjects()
	moved, indexMoves := 0, 0
	for i := range objects {
		a, _ := before.Place(objName(i), 10, 4)
		b, _ := after.Place(objName(i), 10, 4)
		for _, id := range a {
			if !slices.Contains(b, id) {
				moved++ // a shard leaves id
			}
		}
		if n := countNotIn(b, a); n > 1 || (n == 1 && !slices.Contains(b, extra.ID)) {
			t.Fatalf("object %d: node set changed by more than the new node: %v → %v", i, a, b)
		}
		for j := range a {
			if a[j] != b[j] {
				indexMoves++
			}
		}
	}
	total := objects * 14
	frac := float64(moved) / float64(total)
	limit := 1.2 / float64(len(nodes))
	t.Logf("added 1 node to 100: %.4f%% of shards move to it (limit %.4f%%, ideal %.4f%%); %.4f%% of shard indexes change node",
		100*frac, 100*limit, 100.0/101, 100*float64(indexMoves)/float64(total))
	if frac > limit {
		t.Errorf("moved %.4f%% of shards, more than 1.2/N = %.4f%%", 100*frac, 100*limit)
	}
	if moved == 0 {
		t.Error("nothing moved to the new node")
	}
}

func countNotIn(xs, ys []cluster.NodeID) int {
	c := 0
	for _, x := range xs {
		if !slices.Contains(ys, x) {
			c++
		}
	}
	return c
}

// TestZoneLoss: 10+4 survives a zone on 4 zones (every placement, and
// Survives says so), and cannot on 3 zones (Survives says it does not).
func TestZoneLoss(t *testing.T) {
	for _, c := range []struct {
		zones int
		want  bool
	}{{4, true}, {3, false}, {5, true}} {
		t.Run(fmt.Sprintf("%d-zones", c.zones), func(t *testing.T) {
			m := mustMap(t, gridNodes(c.zones, 8, func(int) int64 { return 0 }))
			p := NewPlanner(m)
			for i := range 2000 {
				ids, err := p.Place(objName(i), 10, 4)
				if err != nil {
					t.Fatal(err)
				}
				perZone := map[string]int{}
				for _, id := range ids {
					n, _ := m.Node(id)
					perZone[n.Domain.Zone]++
				}
				survives := true // losing any zone leaves ≥ 10 shards
				for _, c := range perZone {
					if 14-c < 10 {
						survives = false
					}
				}
				s := p.Survives(ids, 10, 4)
				if survives != c.want || s.Zone != c.want {
					t.Fatalf("%s on %d zones: per zone %v, survives %v, Survives.Zone %v, want %v", objName(i), c.zones, perZone, survives, s.Zone, c.want)
				}
				if !s.Rack || !s.Host || s.AnyNodes != 4 {
					t.Fatalf("%s: %+v, want rack, host and any 4", objName(i), s)
				}
			}
		})
	}
}
