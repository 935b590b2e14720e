package drill

import (
	"fmt"
	"slices"
)

// Plan is what a drill is asked to do to a cluster.
type Plan struct {
	K, M int
	// Nodes are the cluster's storage nodes (Alive or not).
	Nodes []Candidate
	// KillNodes is how many nodes each round kills; KillZone kills every
	// live node of one zone instead. KillMetaLeader also kills the meta
	// replica that leads when the round starts.
	KillNodes      int
	KillZone       bool
	KillMetaLeader bool
	Rounds         int
	// Metas are the meta replicas (Alive or not), for KillMetaLeader.
	Metas []Candidate
	// Force runs a plan that Check would refuse.
	Force bool
}

// Check refuses, unless Force, a plan that would lose data by design: a
// round that kills more than m nodes, or a zone when a zone may hold more
// than m shards of an object (placement spreads k+m shards over the zones
// left, at most ceil((k+m)/zones) in each). It always refuses a plan that
// kills nothing or asks for more nodes than the cluster has alive.
func (p Plan) Check() error {
	if p.KillNodes < 0 || p.Rounds < 1 {
		return fmt.Errorf("%w: --kill-nodes %d, --rounds %d", ErrEmptyPlan, p.KillNodes, p.Rounds)
	}
	if p.KillNodes == 0 && !p.KillZone && !p.KillMetaLeader {
		return fmt.Errorf("%w: give --kill-nodes N, --kill-zone or --kill-meta-leader", ErrEmptyPlan)
	}
	if p.KillNodes > 0 && p.KillZone {
		return fmt.Errorf("--kill-nodes and --kill-zone: choose one")
	}
	alive := live(p.Nodes)
	if p.KillNodes > 0 {
		if need := p.KillNodes * p.Rounds; need > len(alive) {
			return fmt.Errorf("%w: %d rounds of %d need %d nodes, %d are alive", ErrTooFewVictims, p.Rounds, p.KillNodes, need, len(alive))
		}
		if p.Force {
			return nil
		}
		if p.KillNodes > p.M {
			return fmt.Errorf("%w: --kill-nodes %d is more than m=%d: objects with a shard on each victim are lost (--force runs it anyway)", ErrWouldLoseData, p.KillNodes, p.M)
		}
		if left := len(alive) - p.KillNodes*p.Rounds; left < p.K+p.M {
			return fmt.Errorf("%w: %d round(s) of %d leave %d nodes, fewer than k+m=%d: repair cannot bring objects back to full redundancy (--force runs it anyway)",
				ErrWouldLoseData, p.Rounds, p.KillNodes, left, p.K+p.M)
		}
	}
	if p.KillMetaLeader && !p.Force {
		// Killed leaders stay dead: every round takes one more replica, and
		// the group must keep a majority of all its replicas to elect.
		quorum := len(p.Metas)/2 + 1
		if left := len(live(p.Metas)) - p.Rounds; left < quorum {
			return fmt.Errorf("%w: %d round(s) of --kill-meta-leader leave %d of %d meta replicas, fewer than a majority (%d): metadata would stop answering (--force runs it anyway)",
				ErrWouldLoseData, p.Rounds, left, len(p.Metas), quorum)
		}
	}
	if p.KillZone {
		var zones []string
		for _, c := range alive {
			if !slices.Contains(zones, c.Zone) {
				zones = append(zones, c.Zone)
			}
		}
		if len(zones) < p.Rounds {
			return fmt.Errorf("%w: %d rounds of --kill-zone need %d zones, %d have live nodes", ErrTooFewVictims, p.Rounds, p.Rounds, len(zones))
		}
		if p.Force {
			return nil
		}
		for r := range p.Rounds {
			z := len(zones) - r // zones left when round r+1 kills one
			if per := (p.K + p.M + z - 1) / z; per > p.M {
				return fmt.Errorf("%w: round %d kills a zone of %d while a zone may hold %d shards of an object, more than m=%d (--force runs it anyway)",
					ErrWouldLoseData, r+1, z, per, p.M)
			}
		}
	}
	return nil
}
