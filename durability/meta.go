package durability

import (
	"fmt"
	"math"
	"time"
)

// MetaParams describes the metadata's raft group: Replicas voters, each on
// its own node (failing at AFR), in failure domains (zones).
type MetaParams struct {
	// Replicas is the number of voters in the raft group (≥ 1).
	Replicas int `json:"replicas"`
	// PerDomain says how many replicas each failure domain holds, one entry
	// per domain that holds any; the entries sum to Replicas. Empty: every
	// replica in a domain of its own.
	PerDomain []int `json:"per_domain,omitempty"`
	// AFR is the annual failure rate of one replica's node (its disk), a
	// fraction in (0, 1).
	AFR float64 `json:"afr"`
	// Rebuild is the time from a replica being lost to a replacement having
	// caught up from the leader's snapshot: detection, adding the new voter,
	// the snapshot's transfer and restore. > 0.
	Rebuild time.Duration `json:"rebuild"`
	// Parallel: lost replicas are rebuilt at once (each at rate 1/Rebuild)
	// rather than one after another.
	Parallel bool `json:"parallel"`
	// DomainRate is whole-domain failures per domain per year (0: none); a
	// domain failure loses every replica the domain holds at once.
	DomainRate float64 `json:"domain_rate,omitempty"`
}

// Validate checks the parameters and fills defaults.
func (p *MetaParams) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: meta: %s", ErrInvalidParams, fmt.Sprintf(format, a...))
	}
	switch {
	case p.Replicas < 1 || p.Replicas > 99:
		return bad("replicas must be between 1 and 99 (got %d)", p.Replicas)
	case !(p.AFR > 0 && p.AFR < 1):
		return bad("AFR must be a fraction in (0, 1) (got %g)", p.AFR)
	case p.Rebuild <= 0:
		return bad("rebuild time must be positive (got %s)", p.Rebuild)
	case p.Rebuild > 10*Year:
		return bad("rebuild time %s is longer than ten years", p.Rebuild)
	case p.DomainRate < 0 || math.IsNaN(p.DomainRate):
		return bad("domain failure rate must not be negative (got %g)", p.DomainRate)
	}
	if len(p.PerDomain) == 0 {
		p.PerDomain = make([]int, p.Replicas)
		for i := range p.PerDomain {
			p.PerDomain[i] = 1
		}
	}
	sum := 0
	for _, c := range p.PerDomain {
		if c < 1 {
			return bad("a domain holds %d replicas; list only domains that hold some", c)
		}
		sum += c
	}
	if sum != p.Replicas {
		return bad("domains hold %d replicas, not %d", sum, p.Replicas)
	}
	return nil
}

// Quorum is a majority of the group: floor(r/2)+1 voters.
func (p MetaParams) Quorum() int { return p.Replicas/2 + 1 }

// Rebuilds says whether the group can rebuild a lost replica at all: only
// while a majority lives, so not with one or two replicas.
func (p MetaParams) Rebuilds() bool { return p.Replicas-1 >= p.Quorum() }

// MetaResult is the metadata group's answer.
type MetaResult struct {
	// Result counts the loss of a majority (Quorum replicas) before any is
	// rebuilt: the event that can lose acknowledged metadata.
	Result
	Replicas int `json:"replicas"`
	// LostAt is how many replicas lost at once Result counts: the quorum.
	LostAt int `json:"lost_at"`
	// AllLost is the annual probability of losing every replica at once:
	// every object's metadata gone, whatever the shards.
	AllLost      float64 `json:"all_lost_annual_probability"`
	AllLostNines float64 `json:"all_lost_nines"`
}

// metaChain is the group's chain: state i = i replicas lost (0..lossAt-1),
// absorbing at lossAt. Each live replica's node fails at λ; a domain failure
// loses all the replicas it holds at once (counted as live: conservative). A
// lost replica is rebuilt from a snapshot at μ (each, when Parallel) — but
// only while a majority lives: without one there is no leader to add the
// new voter and send it a snapshot.
func metaChain(p MetaParams, lossAt int) *chain {
	lam := -math.Log1p(-p.AFR)
	mu := float64(Year) / float64(p.Rebuild)
	c := newChain(lossAt)
	for i := 0; i < lossAt; i++ {
		c.add(i, i+1, float64(p.Replicas-i)*lam)
		if p.DomainRate > 0 {
			for _, n := range p.PerDomain {
				c.add(i, min(i+n, lossAt), p.DomainRate)
			}
		}
		if i > 0 && p.Replicas-i >= p.Quorum() {
			if p.Parallel {
				c.add(i, i-1, float64(i)*mu)
			} else {
				c.add(i, i-1, mu)
			}
		}
	}
	return c
}

// Meta is the metadata group's annual loss. The event it counts is losing a
// majority (floor(r/2)+1 of r) before a replacement is rebuilt: raft
// acknowledges a write once a majority has it, so only then can an
// acknowledged write vanish (the survivors may all lack the latest entries)
// — and the group also stops, until an operator recovers it from a
// survivor. Losing all r loses every object's metadata; AllLost is that.
func Meta(p MetaParams) (MetaResult, error) {
	if err := p.Validate(); err != nil {
		return MetaResult{}, err
	}
	q := p.Quorum()
	c := metaChain(p, q)
	prob, note := c.lossWithin(1)
	all, _ := metaChain(p, p.Replicas).lossWithin(1)
	r := MetaResult{
		Result: Result{Model: "meta-raft", AnnualLossProbability: prob, Nines: Nines(prob), MTTDLYears: c.mttdl(),
			Note: fmt.Sprintf("%d of %d replicas lost before one is rebuilt", q, p.Replicas)},
		Replicas: p.Replicas, LostAt: q, AllLost: all, AllLostNines: Nines(all),
	}
	switch {
	case p.Replicas == 1:
		r.Note = "its one replica lost: every object"
	case !p.Rebuilds():
		r.Note = fmt.Sprintf("%d of %d replicas lost; one lost leaves no majority to rebuild from", q, p.Replicas)
	}
	if note != "" {
		r.Note += "; " + note
	}
	return r, nil
}

// Combine is the probability that at least one of independent events
// happens, 1 − Π(1 − p), without losing tiny probabilities to rounding.
func Combine(ps ...float64) float64 {
	s := 0.0
	for _, p := range ps {
		if p >= 1 {
			return 1
		}
		s += math.Log1p(-max(p, 0))
	}
	return -math.Expm1(s)
}
