package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shale-store/shale/cluster"
)

// referenceSet is the placement set by definition: rank every Up node by
// (HRW key, draw desc, id) and take greedily within the caps.
func referenceSet(m *cluster.Map, caps Caps, object string, n int) []cluster.NodeID {
	up := m.InState(cluster.Up)
	maxW := 0.0
	for _, u := range up {
		maxW = max(maxW, u.Weight())
	}
	oh := objectHash(object)
	type r struct {
		n   cluster.Node
		key float64
		x   uint64
	}
	var rs []r
	for _, u := range up {
		x := draw(oh, nodeHash(string(u.ID)))
		rs = append(rs, r{u, hrwKey(x, maxW/u.Weight()), x})
	}
	slices.SortFunc(rs, func(a, b r) int {
		switch {
		case a.key != b.key:
			if a.key < b.key {
				return -1
			}
			return 1
		case a.x != b.x:
			if a.x > b.x {
				return -1
			}
			return 1
		}
		return 0
	})
	cnt := [3]map[string]int{{}, {}, {}}
	lim := [3]int{caps.Zone, caps.Rack, caps.Host}
	var out []cluster.NodeID
	for _, c := range rs {
		ok := true
		for l, lv := range cluster.Levels {
			if cnt[l][c.n.Domain.Key(lv)] >= lim[l] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		for l, lv := range cluster.Levels {
			cnt[l][c.n.Domain.Key(lv)]++
		}
		out = append(out, c.n.ID)
		if len(out) == n {
			break
		}
	}
	slices.Sort(out)
	return out
}

// TestTiersMatchFullRanking: on big maps place ranks only a tier of nodes;
// its sets must equal the by-definition greedy over every node, including
// maps where the caps force it to widen the tier (one very heavy zone).
func TestTiersMatchFullRanking(t *testing.T) {
	objects := 600
	if testing.Short() {
		objects = 150
	}
	maps := map[string][]cluster.Node{
		"equal-1000":   gridNodes(5, 200, func(int) int64 { return 0 }),
		"1:2-1000":     gridNodes(5, 200, func(i int) int64 { return int64(1+i%2) << 40 }),
		"heavy-zone-0": gridNodes(4, 60, func(i int) int64 { return int64(1+99*btoi(i < 60)) << 40 }),
	}
	rng := rand.New(rand.NewPCG(5, 5))
	var mixed []cluster.Node
	for i := range 400 {
		mixed = append(mixed, cluster.Node{ID: cluster.NodeID(fmt.Sprintf("m%d", i)),
			Domain:   cluster.Domain{Zone: fmt.Sprint(i % 7), Rack: fmt.Sprint(i % 3), Host: fmt.Sprint(i % 11)},
			Capacity: rng.Int64N(1 << 42)})
	}
	maps["mixed-400"] = mixed
	for name, nodes := range maps {
		m := mustMap(t, nodes)
		p := NewPlanner(m)
		for _, km := range [][2]int{{10, 4}, {4, 2}, {17, 3}} {
			n := km[0] + km[1]
			caps := p.Caps(n)
			for i := range objects / 3 {
				obj := fmt.Sprintf("%s/%d", name, i)
				got, err := p.Place(obj, km[0], km[1])
				if err != nil {
					t.Fatal(err)
				}
				got = slices.Clone(got)
				slices.Sort(got)
				if want := referenceSet(m, caps, obj, n); !slices.Equal(got, want) {
					t.Fatalf("%s %d+%d %s: set %v, full ranking gives %v", name, km[0], km[1], obj, got, want)
				}
			}
		}
	}
}

func btoi(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
