package durability

import (
	"fmt"
	"math"
)

type domainCount struct{ domains, shards int }

// domainCounts says how a stripe's shards sit in failure domains: spread as
// evenly as placement spreads them over min(Domains, n) domains, but never
// more than PerDomain in one when PerDomain is given. A domain failure then
// fails that domain's shards at once (counted as live: conservative).
func domainCounts(p Params) []domainCount {
	n := p.K + p.M
	used := min(p.Domains, n)
	q, r := n/used, n%used
	out := []domainCount{}
	if r > 0 {
		out = append(out, domainCount{r, min(q+1, p.PerDomain)})
	}
	if q > 0 {
		out = append(out, domainCount{used - r, min(q, p.PerDomain)})
	}
	return out
}

// stripeChain is the per-stripe chain: state i = i shards failed (0..m),
// loss at m+1. Each live shard fails at λ; a domain failure kills PerDomain
// shards at once (counted as live: conservative); repair brings one shard
// back at μ (serial) or each failed shard at μ (parallel).
func stripeChain(p Params) *chain {
	n := p.K + p.M
	lam, mu := p.lambda(), p.mu()
	c := newChain(p.M + 1)
	for i := 0; i <= p.M; i++ {
		c.add(i, i+1, float64(n-i)*lam)
		if p.DomainRate > 0 {
			for _, dc := range domainCounts(p) {
				c.add(i, min(i+dc.shards, p.M+1), float64(dc.domains)*p.DomainRate)
			}
		}
		if i > 0 {
			if p.Parallel {
				c.add(i, i-1, float64(i)*mu)
			} else {
				c.add(i, i-1, mu)
			}
		}
	}
	return c
}

// Markov is the exact per-stripe chain's answer for one stripe.
func Markov(p Params) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	c := stripeChain(p)
	prob, note := c.lossWithin(1)
	name := "markov"
	if p.Parallel {
		name = "markov-parallel"
	}
	return Result{Model: name, AnnualLossProbability: prob, Nines: Nines(prob), MTTDLYears: c.mttdl(), Note: note}, nil
}

// Cluster scales the chain to a whole cluster of p.Nodes nodes holding
// p.Stripes stripes spread at random: state j = j nodes down (0..m+extra);
// the (j+1)-th concurrent failure loses data when some stripe on the new
// node also has at least m shards on the j nodes already down.
func Cluster(p Params) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	n := p.K + p.M
	N := p.Nodes
	lam, mu := p.lambda(), p.mu()
	// States 0..top; the failure out of top is counted as loss (pessimistic).
	top := min(N-1, p.M+4)
	c := newChain(top + 1)
	perNode := float64(p.Stripes) * float64(n) / float64(N) // stripes touching one node
	for j := 0; j <= top; j++ {
		f := float64(N-j) * lam
		pl := 1.0
		if j < top {
			// a stripe on the new node has n-1 other shards on N-1 nodes;
			// it is lost if ≥ m of them are among the j down nodes.
			h := hyperTail(N-1, j, n-1, p.M)
			pl = 1 - pow1m(h, perNode)
		}
		c.add(j, top+1, f*pl)
		if j < top {
			c.add(j, j+1, f*(1-pl))
		}
		if p.DomainRate > 0 {
			// a domain failure: assume it downs PerDomain shards of some
			// stripe at once on top of the j already down (pessimistic).
			c.add(j, min(j+p.PerDomain, top+1), float64(p.Domains)*p.DomainRate*domainLoss(p, j))
			c.add(j, min(j+1, top), float64(p.Domains)*p.DomainRate*(1-domainLoss(p, j)))
		}
		if j > 0 {
			if p.Parallel {
				c.add(j, j-1, float64(j)*mu)
			} else {
				c.add(j, j-1, mu)
			}
		}
	}
	prob, note := c.lossWithin(1)
	r := Result{Model: "cluster", AnnualLossProbability: prob, Nines: Nines(prob), MTTDLYears: c.mttdl()}
	r.Note = fmt.Sprintf("%d nodes, %d stripes; approximation, errs high", N, p.Stripes)
	if p.DomainRate > 0 {
		// a domain's failure moves the chain one node down, not the
		// domain's nodes: it can err low, below the per-stripe chain
		r.Note = fmt.Sprintf("%d nodes, %d stripes; approximation: errs high without domain failures, "+
			"but counts a domain's failure as one more node down, so may err low (see markov)", N, p.Stripes)
	}
	if note != "" {
		r.Note += "; " + note
	}
	return r, nil
}

// domainLoss: chance that a domain failure with j nodes already down loses a
// stripe: some stripe has PerDomain shards in the domain and ≥ m+1−PerDomain
// on the j down nodes.
func domainLoss(p Params, j int) float64 {
	need := p.M + 1 - p.PerDomain
	if need <= 0 {
		return 1
	}
	n := p.K + p.M
	h := hyperTail(p.Nodes, j, n-p.PerDomain, need)
	perDomain := float64(p.Stripes) / float64(max(p.Domains, 1))
	return 1 - pow1m(h, perDomain)
}

// hyperTail is P(X ≥ need) for X hypergeometric: draws from a population of
// pop with good successes.
func hyperTail(pop, good, draws, need int) float64 {
	if need <= 0 {
		return 1
	}
	if good < need || draws < need {
		return 0
	}
	s := 0.0
	for x := need; x <= min(good, draws); x++ {
		s += expLogChoose(good, x) * expLogChoose(pop-good, draws-x) / expLogChoose(pop, draws)
	}
	return min(s, 1)
}

func expLogChoose(n, k int) float64 {
	if k < 0 || k > n {
		return 0
	}
	return math.Exp(lgamma(float64(n+1)) - lgamma(float64(k+1)) - lgamma(float64(n-k+1)))
}
