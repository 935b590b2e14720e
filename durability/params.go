package durability

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidParams wraps every input-validation failure.
var ErrInvalidParams = errors.New("durability: invalid parameters")

// Year is the length of the year every annual figure refers to.
const Year = 365 * 24 * time.Hour

// Params describes a stripe's coding and its cluster.
type Params struct {
	K, M int // data and parity shards per stripe
	// Nodes in the cluster (≥ K+M). Only the cluster-wide models use it.
	Nodes int
	// AFR is the annual failure rate of one node, a fraction in (0, 1).
	AFR float64
	// Repair is the time from a node failing to its shards being whole again
	// elsewhere: detection delay plus rebuild time. > 0.
	Repair time.Duration
	// Parallel: failed shards of a stripe are repaired at once (each at rate
	// 1/Repair) rather than one after another.
	Parallel bool
	// Stripes in the cluster; the cluster model uses it (default 1,000,000).
	Stripes int64

	// Correlated failures: whole failure domains (say racks) failing at once.
	// DomainRate is failures per domain per year (0: none). Domains is how
	// many such domains the cluster has; PerDomain is the most shards of one
	// stripe placement puts in one domain (from placement's caps).
	DomainRate float64
	Domains    int
	PerDomain  int
}

// Validate checks the parameters and fills defaults.
func (p *Params) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidParams, fmt.Sprintf(format, a...))
	}
	switch {
	case p.K < 1:
		return bad("k must be at least 1 (got %d)", p.K)
	case p.M < 0:
		return bad("m must not be negative (got %d)", p.M)
	case p.K+p.M > 256:
		return bad("k+m must be at most 256 (got %d)", p.K+p.M)
	case !(p.AFR > 0 && p.AFR < 1):
		return bad("AFR must be a fraction in (0, 1) (got %g)", p.AFR)
	case p.Repair <= 0:
		return bad("repair time must be positive (got %s)", p.Repair)
	case p.Repair > 10*Year:
		return bad("repair time %s is longer than ten years", p.Repair)
	case p.DomainRate < 0 || math.IsNaN(p.DomainRate):
		return bad("domain failure rate must not be negative (got %g)", p.DomainRate)
	}
	if p.Nodes == 0 {
		p.Nodes = p.K + p.M
	}
	if p.Nodes < p.K+p.M {
		return bad("%d nodes cannot hold %d+%d distinct shards", p.Nodes, p.K, p.M)
	}
	if p.Stripes == 0 {
		p.Stripes = 1_000_000
	}
	if p.Stripes < 0 {
		return bad("stripes must be positive (got %d)", p.Stripes)
	}
	if p.DomainRate > 0 {
		if p.Domains < 1 {
			return bad("domain failures need a number of domains")
		}
		if p.PerDomain < 1 {
			// placement's cap: ceil(n / domains)
			p.PerDomain = int(math.Ceil(float64(p.K+p.M) / float64(min(p.Domains, p.K+p.M))))
		}
	}
	return nil
}

// lambda is one node's failure rate per year: AFR is the probability of
// failing within a year, so λ = −ln(1−AFR).
func (p Params) lambda() float64 { return -math.Log1p(-p.AFR) }

// mu is the repair rate of one failed shard per year.
func (p Params) mu() float64 { return float64(Year) / float64(p.Repair) }

// Result is what a model says.
type Result struct {
	Model string `json:"model"`
	// AnnualLossProbability: probability of losing any data within a year.
	AnnualLossProbability float64 `json:"annual_loss_probability"`
	// Nines: −log10(AnnualLossProbability); +Inf is reported as 99 (beyond
	// what float64 can tell).
	Nines float64 `json:"nines"`
	// MTTDLYears: mean time to data loss, years (0 when the model has none).
	MTTDLYears float64 `json:"mttdl_years,omitempty"`
	// Interval is the Monte Carlo 95% confidence interval of the probability.
	Interval *[2]float64 `json:"interval_95,omitempty"`
	Note     string      `json:"note,omitempty"`
}

// Nines turns a loss probability into nines of durability.
func Nines(p float64) float64 {
	if p <= 0 {
		return 99
	}
	n := -math.Log10(p)
	if n > 99 {
		return 99
	}
	return n
}

// Copies is the coding shale gives a small segment beside p's K+M (object
// size at most object.Config.ReplicateMax): M+1 full copies, coded 1+M, on
// the same cluster, its nodes failing and repaired as p's. stripes is how
// many such segments the cluster holds (0: p.Stripes). With domain
// failures its PerDomain is placement's cap for M+1 shards
// (ceil((M+1)/domains)), never more than p.PerDomain when that is set.
func (p Params) Copies(stripes int64) Params {
	c := p
	c.K = 1
	if stripes > 0 {
		c.Stripes = stripes
	}
	c.PerDomain = 0
	if p.DomainRate > 0 && p.Domains > 0 {
		n := c.K + c.M
		c.PerDomain = int(math.Ceil(float64(n) / float64(min(p.Domains, n))))
		if p.PerDomain > 0 {
			c.PerDomain = min(c.PerDomain, p.PerDomain)
		}
	}
	return c
}

// Overhead is the raw bytes stored per byte of data: (K+M)/K, M+1 for copies.
func (p Params) Overhead() float64 { return float64(p.K+p.M) / float64(p.K) }
