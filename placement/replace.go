package placement

import (
	"fmt"
	"slices"

	"github.com/shale-store/shale/cluster"
)

// Replace returns a copy of current in which every index listed in lost
// holds a new Up node that is not in current (nor given to another lost
// index). Indexes not in lost keep their node, whatever its state, and keep
// counting towards their domains. Lost indexes are filled in ascending
// order; each gets, among the nodes that keep every level within
// max(Caps(len(current)), the object's spread before the loss), the one
// whose zone, then rack, then host holds the fewest of the object's
// remaining shards, ties going to the best rendezvous rank. So the spread
// never gets worse, and the answer is deterministic and independent of node
// order.
//
// Nodes of current that are not in the map count towards no domain. Errors:
// ErrInvalidArgs for bad indexes, a *TooFewNodesError when fewer Up nodes
// outside current exist than indexes are lost, ErrSpread when no such node
// keeps the spread.
func (p *Planner) Replace(object string, current []cluster.NodeID, lost []int) ([]cluster.NodeID, error) {
	n := len(current)
	if object == "" || n == 0 || n > MaxShards {
		return nil, fmt.Errorf("replace in %s: %w: object %q, %d shards", object, ErrInvalidArgs, object, n)
	}
	order := slices.Clone(lost)
	slices.Sort(order)
	for i, l := range order {
		if l < 0 || l >= n || (i > 0 && order[i-1] == l) {
			return nil, fmt.Errorf("replace in %s: %w: lost index %d of %d shards", object, ErrInvalidArgs, l, n)
		}
	}
	out := slices.Clone(current)
	if len(order) == 0 {
		return out, nil
	}

	inUse := make(map[cluster.NodeID]bool, n)
	for _, id := range current {
		if id != "" {
			inUse[id] = true
		}
	}
	// Domain counts before the loss (for "never worse") and after it.
	cz, cr, ch := make([]int, p.nZones), make([]int, p.nRacks), make([]int, p.nHosts)
	for _, id := range current {
		if i, ok := p.index[id]; ok && id != "" {
			cz[p.zone[i]]++
			cr[p.rack[i]]++
			ch[p.host[i]]++
		}
	}
	caps := p.Caps(n)
	allowed := Caps{Zone: max(caps.Zone, slices.Max(append(cz, 0))),
		Rack: max(caps.Rack, slices.Max(append(cr, 0))),
		Host: max(caps.Host, slices.Max(append(ch, 0)))}
	for _, l := range order {
		if i, ok := p.index[current[l]]; ok && current[l] != "" {
			cz[p.zone[i]]--
			cr[p.rack[i]]--
			ch[p.host[i]]--
		}
	}

	// Rank keys of the candidates for this object.
	oh := objectHash(object)
	type cand struct {
		pos int32 // node position
		key float64
		x   uint64
	}
	var cands []cand
	for j, i := range p.elig {
		if inUse[p.ids[i]] {
			continue
		}
		x := draw(oh, p.hash[i])
		cands = append(cands, cand{pos: i, key: hrwKey(x, p.invW[j]), x: x})
	}
	if len(cands) < len(order) {
		return nil, fmt.Errorf("replace %d shards of %s: %w", len(order), object,
			&TooFewNodesError{Need: len(order), Have: len(cands)})
	}
	better := func(a, b cand) bool {
		za, zb := cz[p.zone[a.pos]], cz[p.zone[b.pos]]
		if za != zb {
			return za < zb
		}
		ra, rb := cr[p.rack[a.pos]], cr[p.rack[b.pos]]
		if ra != rb {
			return ra < rb
		}
		ha, hb := ch[p.host[a.pos]], ch[p.host[b.pos]]
		if ha != hb {
			return ha < hb
		}
		if a.key != b.key {
			return a.key < b.key
		}
		if a.x != b.x {
			return a.x > b.x
		}
		return p.ids[a.pos] < p.ids[b.pos]
	}
	for _, l := range order {
		best := -1
		for c, cd := range cands {
			i := cd.pos
			if inUse[p.ids[i]] || cz[p.zone[i]] >= allowed.Zone ||
				cr[p.rack[i]] >= allowed.Rack || ch[p.host[i]] >= allowed.Host {
				continue
			}
			if best < 0 || better(cd, cands[best]) {
				best = c
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("replace shard %d of %s: %w", l, object, ErrSpread)
		}
		i := cands[best].pos
		out[l] = p.ids[i]
		inUse[p.ids[i]] = true
		cz[p.zone[i]]++
		cr[p.rack[i]]++
		ch[p.host[i]]++
	}
	return out, nil
}

// Replace re-places the lost indexes of current on m (see Planner.Replace).
func Replace(m *cluster.Map, object string, current []cluster.NodeID, lost []int) ([]cluster.NodeID, error) {
	return NewPlanner(m).Replace(object, current, lost)
}
