package placement

import (
	"slices"

	"github.com/shale-store/shale/cluster"
)

// Survival says what a placement survives on a map.
type Survival struct {
	// Shards is the number of shards the placement holds: non-empty entries
	// on nodes present in the map.
	Shards int `json:"shards"`
	// AnyNodes is the largest f such that losing any f nodes leaves at least
	// k shards: parity for a full placement, less for "" entries or nodes
	// missing from the map, 0 when fewer than k shards remain.
	AnyNodes int `json:"any_nodes"`
	// Host, Rack, Zone are true exactly when the placement holds at least k
	// shards and losing any single domain of that level leaves at least k,
	// i.e. no domain holds more than Shards-k (= parity when full).
	Host bool `json:"host"`
	Rack bool `json:"rack"`
	Zone bool `json:"zone"`
	// MaxPer* is the most shards any one domain holds.
	MaxPerZone int `json:"max_per_zone"`
	MaxPerRack int `json:"max_per_rack"`
	MaxPerHost int `json:"max_per_host"`
	// Zones, Racks, Hosts count the distinct domains holding shards.
	Zones int `json:"zones"`
	Racks int `json:"racks"`
	Hosts int `json:"hosts"`
}

// Survives says what losses the placement nodes (element i = node of shard
// i, "" for none) survives with k data shards. Shards on nodes missing from
// the map count as lost; node states do not matter (this is about the
// shape of the placement, not about which nodes are up now). parity is the
// coding's parity count; the answer is computed from the shards actually
// present, so it equals parity only for a full placement.
func Survives(m *cluster.Map, nodes []cluster.NodeID, k, parity int) Survival {
	_ = parity // redundancy is measured from the entries actually present
	perNode := map[cluster.NodeID]int{}
	perLevel := [3]map[string]int{{}, {}, {}}
	var s Survival
	for _, id := range nodes {
		if id == "" || m == nil {
			continue
		}
		node, ok := m.Node(id)
		if !ok {
			continue
		}
		s.Shards++
		perNode[id]++
		for l, lv := range cluster.Levels {
			perLevel[l][node.Domain.Key(lv)]++
		}
	}
	spare := s.Shards - k
	maxOf := func(c map[string]int) int {
		mx := 0
		for _, v := range c {
			mx = max(mx, v)
		}
		return mx
	}
	s.MaxPerZone, s.MaxPerRack, s.MaxPerHost = maxOf(perLevel[0]), maxOf(perLevel[1]), maxOf(perLevel[2])
	s.Zones, s.Racks, s.Hosts = len(perLevel[0]), len(perLevel[1]), len(perLevel[2])
	if spare < 0 || k < 1 {
		return s
	}
	s.Zone = s.MaxPerZone <= spare
	s.Rack = s.MaxPerRack <= spare
	s.Host = s.MaxPerHost <= spare
	// The worst f node losses take the f nodes holding the most shards.
	counts := make([]int, 0, len(perNode))
	for _, c := range perNode {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	lost := 0
	for i := len(counts) - 1; i >= 0; i-- {
		if lost+counts[i] > spare {
			break
		}
		lost += counts[i]
		s.AnyNodes++
	}
	return s
}

// Survives is Survives on the planner's map.
func (p *Planner) Survives(nodes []cluster.NodeID, k, parity int) Survival {
	return Survives(p.m, nodes, k, parity)
}
