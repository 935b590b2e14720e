package repair

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

func testMap(t *testing.T, states map[string]cluster.State) *cluster.Map {
	t.Helper()
	var nodes []cluster.Node
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("n%d", i)
		st, ok := states[id]
		if !ok {
			st = cluster.Up
		}
		nodes = append(nodes, cluster.Node{ID: cluster.NodeID(id), State: st, Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i%4)}})
	}
	m, err := cluster.NewMap(1, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func manifest(key string, nodes ...string) meta.Manifest {
	seg := meta.Segment{Number: 1, Size: 4 << 20, K: 4, M: 2}
	for i, n := range nodes {
		seg.Shards = append(seg.Shards, meta.ShardRef{Index: i, Node: cluster.NodeID(n), ID: fmt.Sprintf("%s.%d", key, i), Size: 1 << 20})
	}
	return meta.Manifest{Bucket: "b", Key: key, Generation: 1, Segments: []meta.Segment{seg}}
}

func TestAssess(t *testing.T) {
	mp := testMap(t, map[string]cluster.State{"n1": cluster.Out, "n2": cluster.Down, "n3": cluster.Draining, "n4": cluster.Full})
	for _, tc := range []struct {
		name          string
		m             meta.Manifest
		bad           map[int]bool
		ok            bool
		healthy, lost int
	}{
		{"all healthy", manifest("a", "n4", "n5", "n6", "n7", "n8", "n4"), nil, false, 6, 0},
		{"one on an out node", manifest("b", "n1", "n5", "n6", "n7", "n8", "n4"), nil, true, 5, 1},
		{"down is unavailable, not lost", manifest("c", "n2", "n5", "n6", "n7", "n8", "n4"), nil, false, 5, 0},
		{"draining is moved away", manifest("d", "n3", "n5", "n6", "n7", "n8", "n4"), nil, true, 5, 1},
		{"never written", manifest("e", "", "n5", "n6", "n7", "n8", "n4"), nil, true, 5, 1},
		{"reported bad", manifest("f", "n4", "n5", "n6", "n7", "n8", "n4"), map[int]bool{2: true}, true, 5, 1},
		{"unknown node", manifest("g", "gone", "n5", "n6", "n7", "n8", "n4"), nil, true, 5, 1},
		{"at k", manifest("h", "n1", "n2", "n6", "n7", "n8", "n4"), nil, true, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := Assess(tc.m, mp, func(seg, i int) bool { return tc.bad[i] }, time.Time{})
			if ok != tc.ok || c.Healthy != tc.healthy || c.Lost != tc.lost {
				t.Fatalf("got ok=%v healthy=%d lost=%d, want ok=%v healthy=%d lost=%d", ok, c.Healthy, c.Lost, tc.ok, tc.healthy, tc.lost)
			}
		})
	}
}

// The plan is a permutation of its input, ordered by margin then age then
// name, whatever order the candidates arrive in.
func TestPlanInvariants(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Unix(1_700_000_000, 0)
	for round := 0; round < 200; round++ {
		var cs []Candidate
		for i := 0; i < 1+rng.IntN(40); i++ {
			k := 2 + rng.IntN(8)
			cs = append(cs, Candidate{
				Bucket: "b", Key: fmt.Sprintf("k%03d", i), K: k, Total: k + 4,
				Healthy: k - 1 + rng.IntN(5), Since: base.Add(time.Duration(rng.IntN(5)) * time.Second),
			})
		}
		p := Plan(cs)
		if len(p) != len(cs) {
			t.Fatalf("seed %d: plan has %d of %d candidates", seed, len(p), len(cs))
		}
		shuffled := append([]Candidate(nil), cs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		q := Plan(shuffled)
		for i := range p {
			if p[i].Key != q[i].Key {
				t.Fatalf("seed %d: plan depends on input order at %d: %s vs %s", seed, i, p[i].Key, q[i].Key)
			}
			if i == 0 {
				continue
			}
			a, b := p[i-1], p[i]
			if a.Margin() > b.Margin() || (a.Margin() == b.Margin() && a.Since.After(b.Since)) {
				t.Fatalf("seed %d: %+v before %+v", seed, a, b)
			}
		}
	}
}

func TestPlanPutsObjectsAtKFirst(t *testing.T) {
	old := time.Unix(100, 0)
	cs := []Candidate{
		{Key: "k+1 old", K: 4, Healthy: 5, Since: old},
		{Key: "at k new", K: 4, Healthy: 4, Since: old.Add(time.Hour)},
		{Key: "k+1 new", K: 4, Healthy: 5, Since: old.Add(time.Hour)},
		{Key: "below k", K: 4, Healthy: 3, Since: old.Add(2 * time.Hour)},
	}
	want := []string{"below k", "at k new", "k+1 old", "k+1 new"}
	for i, c := range Plan(cs) {
		if c.Key != want[i] {
			t.Fatalf("position %d: %s, want %s", i, c.Key, want[i])
		}
	}
	if !cs[1].Urgent() || cs[0].Urgent() {
		t.Fatal("urgency wrong")
	}
}
