package placement

import (
	"fmt"

	"github.com/shale-store/shale/cluster"
)

// Move is one shard of a segment to be copied from one node to another.
type Move struct {
	Shard    int            // the shard's index
	From, To cluster.NodeID // its node now, and where placement wants it
}

// Moves is what it takes to bring a segment whose shard i is on current[i]
// to where Place puts object now: the fewest moves, since any node of the
// placed set serves any index — a shard already on a node of the set stays
// put, and each other one moves to a node of the set that holds none. The
// number of moves is the number of current nodes outside the set (the
// minimum: every one of them must lose its shard). Shards with no node
// ("") are repair's business and are not moved; the nodes of the set
// left over for them are not used. Moves returns nil when nothing moves,
// and the errors of Place (a *TooFewNodesError when the map has fewer than
// len(current) Up nodes).
func (p *Planner) Moves(object string, k int, current []cluster.NodeID) ([]Move, error) {
	parity := len(current) - k
	target, err := p.Place(object, k, parity)
	if err != nil {
		return nil, err
	}
	in := make(map[cluster.NodeID]bool, len(target))
	for _, n := range target {
		in[n] = true
	}
	held := make(map[cluster.NodeID]bool, len(current))
	var leave []int // indexes whose node is outside the set (or holds another shard of the set already)
	for i, n := range current {
		switch {
		case n == "":
		case in[n] && !held[n]:
			held[n] = true
		default:
			leave = append(leave, i)
		}
	}
	if len(leave) == 0 {
		return nil, nil
	}
	var free []cluster.NodeID
	for _, n := range target {
		if !held[n] {
			free = append(free, n)
		}
	}
	if len(free) < len(leave) {
		// Cannot happen: target has len(current) distinct nodes and held
		// counts at most len(current)-len(leave) of them.
		return nil, fmt.Errorf("moves of %s: %d shards to move, %d free nodes", object, len(leave), len(free))
	}
	out := make([]Move, len(leave))
	for j, i := range leave {
		out[j] = Move{Shard: i, From: current[i], To: free[j]}
	}
	return out, nil
}
