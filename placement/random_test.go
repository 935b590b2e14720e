package placement

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shale-store/shale/cluster"
)

var seedFlag = flag.Uint64("seed", 0, "run TestRandomTopologies with only this seed")

// randomTopology builds 1..5 zones of 1..3 racks of 1..3 hosts of 1..2
// nodes, with mixed capacities and mostly Up states.
func randomTopology(rng *rand.Rand) []cluster.Node {
	var nodes []cluster.Node
	zones := 1 + rng.IntN(5)
	for z := range zones {
		for r := range 1 + rng.IntN(3) {
			for h := range 1 + rng.IntN(3) {
				for i := range 1 + rng.IntN(2) {
					n := cluster.Node{
						ID:     cluster.NodeID(fmt.Sprintf("n-z%d-r%d-h%d-%d", z, r, h, i)),
						Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", z), Rack: fmt.Sprintf("r%d", r), Host: fmt.Sprintf("h%d", h)},
					}
					if rng.IntN(3) == 0 {
						n.Capacity = int64(1+rng.IntN(4)) << 40
					}
					switch rng.IntN(10) {
					case 0:
						n.State = cluster.Down
					case 1:
						n.State = cluster.Full
					case 2:
						n.State = cluster.Draining
					}
					nodes = append(nodes, n)
				}
			}
		}
	}
	return nodes
}

// TestRandomTopologies runs the harness's invariant checks on seeded random
// topologies and codings; a failure names its seed (rerun with -seed N).
func TestRandomTopologies(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 40
	}
	for s := 1; s <= seeds; s++ {
		seed := uint64(s)
		if *seedFlag != 0 {
			if s > 1 {
				break
			}
			seed = *seedFlag
		}
		rng := rand.New(rand.NewPCG(seed, 0x5ea1))
		nodes := randomTopology(rng)
		k := 1 + rng.IntN(8)
		m := rng.IntN(5)
		up := 0
		for _, n := range nodes {
			if n.State == cluster.Up {
				up++
			}
		}
		objs := make([]string, 12)
		for i := range objs {
			objs[i] = fmt.Sprintf("obj/%d/%d", seed, i)
		}
		where := fmt.Sprintf("seed %d (%d nodes, %d up, %d+%d)", seed, len(nodes), up, k, m)
		expect := map[string]string{}
		minimum := 0
		switch {
		case up >= k+m:
		case up >= 1 && rng.IntN(2) == 0:
			minimum = 1 + rng.IntN(up)
		default:
			expect["error"] = "too-few"
		}
		checkCase(t, where, rng, nodes, k, m, minimum, objs, expect)
		if t.Failed() {
			t.Fatalf("failed with seed %d; rerun: go test ./placement -run TestRandomTopologies -seed %d", seed, seed)
		}
	}
}

// TestRandomLargeTopologies covers maps big enough that place ranks only a
// tier of candidates (and sometimes has to widen it): the harness's
// exchange check proves the answer equals a greedy over all nodes.
func TestRandomLargeTopologies(t *testing.T) {
	seeds := 16
	if testing.Short() {
		seeds = 4
	}
	for s := 1; s <= seeds; s++ {
		seed := uint64(1000 + s)
		rng := rand.New(rand.NewPCG(seed, 0x1a46e))
		var nodes []cluster.Node
		uniform := s%3 == 0
		for z := range 2 + rng.IntN(5) {
			heavyZone := rng.IntN(4) == 0
			for r := range 1 + rng.IntN(4) {
				for h := range 1 + rng.IntN(6) {
					for i := range 1 + rng.IntN(4) {
						n := cluster.Node{
							ID:     cluster.NodeID(fmt.Sprintf("n%d.%d.%d.%d", z, r, h, i)),
							Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", z), Rack: fmt.Sprintf("r%d", r), Host: fmt.Sprintf("h%d", h)},
						}
						if !uniform {
							n.Capacity = int64(1+rng.IntN(4)) << 40
							if heavyZone {
								n.Capacity *= 50 // caps must push most shards elsewhere
							}
						}
						if rng.IntN(20) == 0 {
							n.State = cluster.Down
						}
						nodes = append(nodes, n)
					}
				}
			}
		}
		k, m := 2+rng.IntN(9), rng.IntN(5)
		objs := make([]string, 15)
		for i := range objs {
			objs[i] = fmt.Sprintf("large/%d/%d", seed, i)
		}
		where := fmt.Sprintf("seed %d (%d nodes, %d+%d)", seed, len(nodes), k, m)
		expect := map[string]string{}
		if len(nodes) < 2*(k+m) {
			continue
		}
		checkCase(t, where, rng, nodes, k, m, 0, objs, expect)
		if t.Failed() {
			t.Fatalf("failed with seed %d", seed)
		}
	}
}
