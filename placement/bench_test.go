package placement

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/shale-store/shale/cluster"
)

// gridNodes builds zones x perZone Up nodes, each on its own host, two racks
// per zone; capacity(i) gives node i's capacity (0 = default).
func gridNodes(zones, perZone int, capacity func(i int) int64) []cluster.Node {
	var nodes []cluster.Node
	for z := range zones {
		for j := range perZone {
			i := z*perZone + j
			nodes = append(nodes, cluster.Node{
				ID:       cluster.NodeID(fmt.Sprintf("node-%04d", i)),
				Domain:   cluster.Domain{Zone: fmt.Sprintf("zone-%d", z), Rack: fmt.Sprintf("rack-%d", j%2), Host: fmt.Sprintf("host-%d", j)},
				Capacity: capacity(i),
			})
		}
	}
	return nodes
}

func mustMap(tb testing.TB, nodes []cluster.Node) *cluster.Map {
	tb.Helper()
	m, err := cluster.NewMap(1, nodes)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func benchPlace(b *testing.B, nodes []cluster.Node) {
	p := NewPlanner(mustMap(b, nodes))
	names := make([]string, 4096)
	for i := range names {
		names[i] = "bucket/some/object-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := p.Place(names[i%len(names)], 10, 4); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlace10x4Nodes1000: 1000 equal nodes in 5 zones.
func BenchmarkPlace10x4Nodes1000(b *testing.B) {
	benchPlace(b, gridNodes(5, 200, func(int) int64 { return 0 }))
}

// BenchmarkPlace10x4Nodes1000Weighted: the same with two capacities, so
// every node's key needs a logarithm.
func BenchmarkPlace10x4Nodes1000Weighted(b *testing.B) {
	benchPlace(b, gridNodes(5, 200, func(i int) int64 { return int64(1+i%2) << 40 }))
}

func BenchmarkPlace10x4Nodes100(b *testing.B) {
	benchPlace(b, gridNodes(5, 20, func(int) int64 { return 0 }))
}

func BenchmarkNewPlanner1000(b *testing.B) {
	m := mustMap(b, gridNodes(5, 200, func(int) int64 { return 0 }))
	b.ReportAllocs()
	for b.Loop() {
		NewPlanner(m)
	}
}

func BenchmarkReplace10x4Nodes1000(b *testing.B) {
	p := NewPlanner(mustMap(b, gridNodes(5, 200, func(int) int64 { return 0 })))
	cur, err := p.Place("bucket/obj", 10, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Replace("bucket/obj", cur, []int{3}); err != nil {
			b.Fatal(err)
		}
	}
}
