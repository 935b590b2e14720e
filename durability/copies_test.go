package durability

import (
	"math"
	"testing"
	"time"
)

// Small segments are stored as M+1 copies, coded 1+M (Params.Copies). Every
// model must take K=1 and say what copies lose.

// Binomial, K=1: a window loses the stripe only when all M+1 copies fail in
// it, q^(M+1).
func TestCopiesBinomialClosedForm(t *testing.T) {
	for _, m := range []int{1, 2, 3} {
		p := Params{K: 4, M: m, AFR: 0.05, Repair: 24 * time.Hour}.Copies(0)
		r, err := Binomial(p)
		if err != nil {
			t.Fatal(err)
		}
		w := float64(p.Repair) / float64(Year)
		within(t, "copies' binomial loss", r.AnnualLossProbability, math.Pow(p.AFR*w, float64(m+1))/w, 1e-4)
	}
}

// Markov, K=1, serial repair: MTTDL ≈ μ^M / (λ^(M+1)·(M+1)!).
func TestCopiesMarkovClosedForm(t *testing.T) {
	for _, m := range []int{1, 2, 3, 4} {
		p := Params{K: 8, M: m, AFR: 0.02, Repair: 6 * time.Hour}.Copies(0)
		if p.K != 1 || p.M != m {
			t.Fatalf("Copies of 8+%d is %d+%d", m, p.K, p.M)
		}
		r, err := Markov(p)
		if err != nil {
			t.Fatal(err)
		}
		lam, mu := p.lambda(), p.mu()
		want := math.Pow(mu, float64(m)) / math.Pow(lam, float64(m+1)) / math.Gamma(float64(m+2))
		within(t, "copies' MTTDL", r.MTTDLYears, want, 0.02)
	}
}

// When one stripe covers every node, the cluster model is the stripe's
// chain: for copies on M+1 nodes as for k+m on k+m nodes.
func TestClusterIsMarkovWhenOneStripeCoversAll(t *testing.T) {
	for _, km := range [][2]int{{1, 1}, {1, 2}, {1, 3}, {4, 2}} {
		p := Params{K: km[0], M: km[1], Nodes: km[0] + km[1], AFR: 0.05, Repair: 24 * time.Hour, Parallel: true}
		mk, err := Markov(p)
		if err != nil {
			t.Fatal(err)
		}
		cl, err := Cluster(p)
		if err != nil {
			t.Fatal(err)
		}
		within(t, "cluster vs markov", cl.AnnualLossProbability, mk.AnnualLossProbability, 1e-6)
	}
}

// For the same M, copies lose a stripe only when all M+1 specific nodes
// fail, where K+M loses one when any M+1 of its K+M do: every model must give
// copies the lower loss per stripe — and, cluster-wide with as many stripes,
// copies cover fewer sets of M+1 nodes, so the cluster model too.
func TestCopiesLoseLessThanErasure(t *testing.T) {
	for _, km := range [][2]int{{2, 1}, {4, 2}, {8, 3}, {17, 3}, {10, 4}} {
		for _, parallel := range []bool{false, true} {
			p := Params{K: km[0], M: km[1], Nodes: 60, AFR: 0.04, Repair: 72 * time.Hour, Parallel: parallel, Stripes: 20_000}
			c := p.Copies(0)
			for name, model := range map[string]func(Params) (Result, error){"markov": Markov, "binomial": Binomial, "cluster": Cluster} {
				ec, err := model(p)
				if err != nil {
					t.Fatal(err)
				}
				cp, err := model(c)
				if err != nil {
					t.Fatal(err)
				}
				if !(cp.AnnualLossProbability > 0 && cp.AnnualLossProbability < ec.AnnualLossProbability) {
					t.Errorf("%s, parallel %v: 1+%d copies lose %g a year, %d+%d %g: copies must lose less",
						name, parallel, km[1], cp.AnnualLossProbability, km[0], km[1], ec.AnnualLossProbability)
				}
				if name == "markov" && !(cp.MTTDLYears > ec.MTTDLYears) {
					t.Errorf("markov: copies' MTTDL %g not above %d+%d's %g", cp.MTTDLYears, km[0], km[1], ec.MTTDLYears)
				}
			}
		}
	}
}

// Copies sit in failure domains by placement's cap for M+1 shards: on three
// zones, 1+2 puts one copy in each where 4+2 puts two shards, so a zone
// failure costs copies one of their two spares and 4+2 both.
func TestCopiesPerDomain(t *testing.T) {
	p := Params{K: 4, M: 2, AFR: 0.02, Repair: 24 * time.Hour, DomainRate: 0.05, Domains: 3}
	for _, tc := range []struct{ domains, given, want int }{{3, 0, 1}, {2, 0, 2}, {2, 1, 1}, {10, 0, 1}} {
		q := p
		q.Domains, q.PerDomain = tc.domains, tc.given
		if got := q.Copies(0).PerDomain; got != tc.want {
			t.Errorf("%d domains, %d given: copies' cap %d, want %d", tc.domains, tc.given, got, tc.want)
		}
	}
	ec, err := Markov(p)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Markov(p.Copies(0))
	if err != nil {
		t.Fatal(err)
	}
	if !(cp.AnnualLossProbability*100 < ec.AnnualLossProbability) {
		t.Errorf("zone failures: copies %g against 4+2 %g; one copy per zone should be far safer", cp.AnnualLossProbability, ec.AnnualLossProbability)
	}
	if got := p.Copies(5).Stripes; got != 5 {
		t.Errorf("Copies(5).Stripes = %d", got)
	}
	if p.Overhead() != 1.5 || p.Copies(0).Overhead() != 3 {
		t.Errorf("overheads %g and %g, want 1.5 and 3", p.Overhead(), p.Copies(0).Overhead())
	}
}

// The simulation takes copies as a class of stripes beside K+M in the same
// cluster: the class agrees with the copies' chain where one copy set
// covers every node; adding it leaves the K+M figures as they were (the
// same node failures); and the years with any loss lie between the
// classes' largest and their sum.
func TestMonteCarloCopiesClass(t *testing.T) {
	p := Params{K: 2, M: 1, Nodes: 3, AFR: 0.6, Repair: 20 * 24 * time.Hour, Parallel: true}
	trials := 20000
	if testing.Short() {
		trials = 4000
	}
	base := MonteCarloConfig{Params: p, Zones: 3, StripeCount: 1, Trials: trials, ExpRepair: true, Seed: 11}
	alone, err := MonteCarlo(base)
	if err != nil {
		t.Fatal(err)
	}
	both := base
	both.Classes = []StripeClass{{K: 1, M: 1, Count: 60}}
	mc, err := MonteCarlo(both)
	if err != nil {
		t.Fatal(err)
	}
	if mc.LossYears != alone.LossYears || mc.NodeFailures != alone.NodeFailures {
		t.Errorf("a copies class changed the 2+1 figures: %d loss years, %d failures; alone %d, %d",
			mc.LossYears, mc.NodeFailures, alone.LossYears, alone.NodeFailures)
	}
	if len(mc.Classes) != 1 || mc.Any == nil {
		t.Fatalf("classes %+v, any %v", mc.Classes, mc.Any)
	}
	cl := mc.Classes[0]
	if cl.K != 1 || cl.M != 1 || cl.Stripes != 60 {
		t.Errorf("class %+v", cl)
	}
	// 1+1 on 3 nodes, 60 copy sets: some on each pair of nodes, so the
	// class is lost whenever two nodes are down at once — as 2+1 is.
	if cl.LossYears != mc.LossYears {
		t.Errorf("1+1 covering every pair of 3 nodes lost in %d years, 2+1 on the same nodes in %d", cl.LossYears, mc.LossYears)
	}
	if mc.Any.AnnualLossProbability != cl.AnnualLossProbability {
		t.Errorf("any %g, both classes %g", mc.Any.AnnualLossProbability, cl.AnnualLossProbability)
	}

	// 1+2 on 3 nodes: one copy set, the copies' chain.
	c := Params{K: 1, M: 2, Nodes: 3, AFR: 0.9, Repair: 40 * 24 * time.Hour, Parallel: true}
	mk, err := Markov(c)
	if err != nil {
		t.Fatal(err)
	}
	three := MonteCarloConfig{Params: p, Zones: 3, StripeCount: 1, Trials: trials, ExpRepair: true, Seed: 1,
		Classes: []StripeClass{{K: 1, M: 2, Count: 1}}}
	three.AFR, three.Repair = c.AFR, c.Repair
	mc, err = MonteCarlo(three)
	if err != nil {
		t.Fatal(err)
	}
	cl = mc.Classes[0]
	lo, hi := cl.Interval[0], cl.Interval[1]
	t.Logf("1+2: markov %.4g, monte carlo %.4g [%.4g, %.4g]; 2+1 %.4g; any %.4g", mk.AnnualLossProbability, cl.AnnualLossProbability, lo, hi,
		mc.AnnualLossProbability, mc.Any.AnnualLossProbability)
	if mk.AnnualLossProbability < lo || mk.AnnualLossProbability > hi {
		t.Errorf("1+2 copies: markov %.4g outside the simulation's 95%% interval [%.4g, %.4g] (seed %d)", mk.AnnualLossProbability, lo, hi, mc.Seed)
	}
	if !(cl.LossYears > 0 && cl.LossYears < mc.LossYears) {
		t.Errorf("1+2 lost in %d years, 2+1 on the same nodes in %d: copies must lose less, and something", cl.LossYears, mc.LossYears)
	}
	anyYears := int(math.Round(mc.Any.AnnualLossProbability * float64(mc.Trials)))
	if anyYears < max(cl.LossYears, mc.LossYears) || anyYears > cl.LossYears+mc.LossYears {
		t.Errorf("any-loss years %d outside [%d, %d]", anyYears, max(cl.LossYears, mc.LossYears), cl.LossYears+mc.LossYears)
	}
}
