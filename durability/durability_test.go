package durability

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func within(t *testing.T, name string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*math.Abs(want) {
		t.Errorf("%s = %.6g, want %.6g (±%.2g%%)", name, got, want, rel*100)
	}
}

// 3-way replication with serial repair: MTTDL ≈ μ²/(6λ³) when μ ≫ λ.
func TestReplicationMTTDL(t *testing.T) {
	for _, tc := range []struct {
		afr    float64
		repair time.Duration
	}{{0.01, 24 * time.Hour}, {0.04, time.Hour}, {0.02, 7 * 24 * time.Hour}} {
		p := Params{K: 1, M: 2, AFR: tc.afr, Repair: tc.repair}
		r, err := Markov(p)
		if err != nil {
			t.Fatal(err)
		}
		lam, mu := p.lambda(), p.mu()
		within(t, "MTTDL", r.MTTDLYears, mu*mu/(6*lam*lam*lam), 0.01)
	}
}

// k+m with serial repair: MTTDL ≈ μ^m / (λ^(m+1) · n(n−1)…(n−m)).
func TestErasureClosedForm(t *testing.T) {
	for _, km := range [][2]int{{4, 2}, {8, 3}, {10, 4}, {17, 3}} {
		p := Params{K: km[0], M: km[1], AFR: 0.02, Repair: 6 * time.Hour}
		r, err := Markov(p)
		if err != nil {
			t.Fatal(err)
		}
		lam, mu := p.lambda(), p.mu()
		n := km[0] + km[1]
		den := math.Pow(lam, float64(km[1]+1))
		for i := 0; i <= km[1]; i++ {
			den *= float64(n - i)
		}
		within(t, "MTTDL", r.MTTDLYears, math.Pow(mu, float64(km[1]))/den, 0.02)
		// With MTTDL ≫ 1 year the one-year loss is 1/MTTDL.
		within(t, "annual loss", r.AnnualLossProbability, 1/r.MTTDLYears, 0.02)
	}
}

// Backblaze's published figure: 4+2 (their 17+3's little cousin) at AFR 10%
// and a 1-day repair window has six nines.
func TestBinomialBackblaze(t *testing.T) {
	r, err := Binomial(Params{K: 4, M: 2, AFR: 0.10, Repair: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.Nines < 6 || r.Nines >= 7 {
		t.Fatalf("4+2 AFR 10%% 1 day: %.2f nines, want 6.x", r.Nines)
	}
}

func TestParallelRepairHelps(t *testing.T) {
	s, _ := Markov(Params{K: 4, M: 2, AFR: 0.05, Repair: 24 * time.Hour})
	p, _ := Markov(Params{K: 4, M: 2, AFR: 0.05, Repair: 24 * time.Hour, Parallel: true})
	if !(p.AnnualLossProbability < s.AnnualLossProbability) {
		t.Fatalf("parallel %g not below serial %g", p.AnnualLossProbability, s.AnnualLossProbability)
	}
	// parallel repair from state 2 doubles μ there: MTTDL ×2 for m=2.
	within(t, "parallel/serial MTTDL", p.MTTDLYears/s.MTTDLYears, 2, 0.01)
}

func TestCorrelatedFailuresHurt(t *testing.T) {
	base := Params{K: 8, M: 3, AFR: 0.02, Repair: 24 * time.Hour, Nodes: 40}
	ind, _ := Markov(base)
	c := base
	c.DomainRate, c.Domains = 0.01, 8
	cor, err := Markov(c)
	if err != nil {
		t.Fatal(err)
	}
	if !(cor.AnnualLossProbability > ind.AnnualLossProbability*10) {
		t.Fatalf("rack failures %g vs independent %g: expected far worse", cor.AnnualLossProbability, ind.AnnualLossProbability)
	}
}

func TestTinyProbabilitiesKeepPrecision(t *testing.T) {
	r, err := Markov(Params{K: 17, M: 3, AFR: 0.01, Repair: time.Hour, Parallel: true})
	if err != nil {
		t.Fatal(err)
	}
	if !(r.AnnualLossProbability > 0 && r.AnnualLossProbability < 1e-12) {
		t.Fatalf("17+3 AFR 1%% 1 h: %g", r.AnnualLossProbability)
	}
	within(t, "annual loss vs MTTDL", r.AnnualLossProbability, 1/r.MTTDLYears, 0.02)
}

func TestValidate(t *testing.T) {
	good := Params{K: 4, M: 2, AFR: 0.02, Repair: time.Hour}
	for name, mut := range map[string]func(*Params){
		"afr zero":      func(p *Params) { p.AFR = 0 },
		"afr one":       func(p *Params) { p.AFR = 1 },
		"afr nan":       func(p *Params) { p.AFR = math.NaN() },
		"k zero":        func(p *Params) { p.K = 0 },
		"m negative":    func(p *Params) { p.M = -1 },
		"repair zero":   func(p *Params) { p.Repair = 0 },
		"too few nodes": func(p *Params) { p.Nodes = 5 },
		"domains":       func(p *Params) { p.DomainRate = 1 },
	} {
		p := good
		mut(&p)
		if _, err := Markov(p); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: err = %v, want ErrInvalidParams", name, err)
		}
	}
	if _, err := Markov(good); err != nil {
		t.Fatal(err)
	}
}

// On a small cluster where one stripe covers every node, the simulation and
// the exact chain (parallel, exponential repair) describe the same process:
// they must agree within the simulation's confidence interval.
func TestMonteCarloAgreesWithMarkov(t *testing.T) {
	p := Params{K: 2, M: 1, Nodes: 3, AFR: 0.6, Repair: 20 * 24 * time.Hour, Parallel: true}
	mk, err := Markov(p)
	if err != nil {
		t.Fatal(err)
	}
	trials := 20000
	if testing.Short() {
		trials = 4000
	}
	mc, err := MonteCarlo(MonteCarloConfig{Params: p, Zones: 3, StripeCount: 1, Trials: trials, ExpRepair: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := mc.Interval[0], mc.Interval[1]
	t.Logf("markov %.4g, monte carlo %.4g [%.4g, %.4g] over %d years", mk.AnnualLossProbability, mc.AnnualLossProbability, lo, hi, mc.Trials)
	if mk.AnnualLossProbability < lo || mk.AnnualLossProbability > hi {
		t.Fatalf("markov %.4g outside monte carlo 95%% interval [%.4g, %.4g] (seed %d)", mk.AnnualLossProbability, lo, hi, mc.Seed)
	}
}

func TestMonteCarloBurstsAndBandwidth(t *testing.T) {
	p := Params{K: 4, M: 2, Nodes: 24, AFR: 0.2, Repair: 24 * time.Hour}
	base := MonteCarloConfig{Params: p, Zones: 3, RacksPerZone: 2, StripeCount: 2000, Trials: 300, Seed: 3}
	calm, err := MonteCarlo(base)
	if err != nil {
		t.Fatal(err)
	}
	stormy := base
	stormy.RackRate = 2
	stormy.DataPerNode = 8e12
	stormy.RepairBandwidth = 50e6
	storm, err := MonteCarlo(stormy)
	if err != nil {
		t.Fatal(err)
	}
	if storm.NodeFailures <= calm.NodeFailures {
		t.Fatalf("rack bursts added no failures: %d vs %d", storm.NodeFailures, calm.NodeFailures)
	}
	if storm.RepairBytesYear <= 0 {
		t.Fatal("no repair traffic reported")
	}
	if storm.AnnualLossProbability < calm.AnnualLossProbability {
		t.Fatalf("bursts with slow repair lost less (%g) than calm (%g)", storm.AnnualLossProbability, calm.AnnualLossProbability)
	}
}

func TestClusterModelScales(t *testing.T) {
	one, _ := Markov(Params{K: 4, M: 2, AFR: 0.02, Repair: 24 * time.Hour, Parallel: true})
	cl, err := Cluster(Params{K: 4, M: 2, AFR: 0.02, Repair: 24 * time.Hour, Parallel: true, Nodes: 100, Stripes: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if !(cl.AnnualLossProbability > one.AnnualLossProbability) {
		t.Fatalf("a million stripes (%g) should be likelier to lose one than one stripe (%g)", cl.AnnualLossProbability, one.AnnualLossProbability)
	}
}

// The models that do not carry domain failures faithfully say so: the
// binomial has none, and the cluster model moves one node per domain
// failure — 4+2 on 3 zones (two shards a zone) then looks safer than the
// per-stripe chain, which it otherwise never does.
func TestDomainFailureNotes(t *testing.T) {
	p := Params{K: 4, M: 2, Nodes: 6, AFR: 0.02, Repair: 24 * time.Hour, Parallel: true, DomainRate: 0.05, Domains: 3}
	b, err := Binomial(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Cluster(p)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := Markov(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.Note, "ignores domain failures") || !strings.Contains(c.Note, "may err low") {
		t.Errorf("notes: binomial %q, cluster %q", b.Note, c.Note)
	}
	t.Logf("4+2 on 3 zones: markov %.2f nines, cluster %.2f", mk.Nines, c.Nines)
	p.DomainRate = 0
	if b, _ := Binomial(p); b.Note != "" {
		t.Errorf("binomial without domain failures: note %q", b.Note)
	}
	if c, _ := Cluster(p); strings.Contains(c.Note, "err low") {
		t.Errorf("cluster without domain failures: note %q", c.Note)
	}
}
