package durability

import (
	"errors"
	"math"
	"testing"
	"time"
)

// One replica: the metadata is lost when its node is, so the annual loss is
// the node's: AFR — and with domain failures, either event within the year.
func TestMetaOneReplicaIsOneNode(t *testing.T) {
	for _, afr := range []float64{0.01, 0.02, 0.3} {
		r, err := Meta(MetaParams{Replicas: 1, AFR: afr, Rebuild: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		within(t, "one replica's annual loss", r.AnnualLossProbability, afr, 1e-6)
		within(t, "all lost", r.AllLost, afr, 1e-6)
		if r.LostAt != 1 {
			t.Errorf("one replica: lost at %d, want 1", r.LostAt)
		}
	}
	r, err := Meta(MetaParams{Replicas: 1, AFR: 0.02, Rebuild: time.Hour, DomainRate: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	lam := -math.Log1p(-0.02)
	within(t, "one replica with domain failures", r.AnnualLossProbability, -math.Expm1(-(lam + 0.05)), 1e-6)
}

// Two replicas: a majority is both, so a write is on both and only losing
// both within a rebuild loses it — but the group cannot rebuild with one
// voter of two (no majority, no leader), so the second loss is a matter of
// time: 0 →(2λ) 1 →(λ) lost. Its closed form is the hypoexponential CDF.
func TestMetaTwoReplicasClosedForm(t *testing.T) {
	afr := 0.05
	r, err := Meta(MetaParams{Replicas: 2, AFR: afr, Rebuild: time.Hour, Parallel: true})
	if err != nil {
		t.Fatal(err)
	}
	lam := -math.Log1p(-afr)
	// P(T1+T2 ≤ 1), T1 ~ Exp(2λ), T2 ~ Exp(λ): 1 − 2e^{−λ} + e^{−2λ} = AFR².
	within(t, "two replicas", r.AnnualLossProbability, afr*afr, 1e-6)
	within(t, "two replicas MTTDL", r.MTTDLYears, 1/(2*lam)+1/lam, 1e-9)
	if r.LostAt != 2 {
		t.Errorf("two replicas: lost at %d, want 2", r.LostAt)
	}
}

// Three replicas: states 0 and 1 lost, a majority (2) absorbs. The
// transient generator [[−3λ, 3λ], [μ, −(μ+2λ)]] has eigenvalues s₁, s₂, the
// roots of x² + (5λ+μ)x + 6λ² = 0, and the survival from state 0 is
// (s₁e^{s₂t} − s₂e^{s₁t})/(s₁ − s₂); the MTTDL is (5λ+μ)/(6λ²).
func TestMetaThreeReplicasClosedForm(t *testing.T) {
	for _, tc := range []struct {
		afr     float64
		rebuild time.Duration
	}{{0.3, 7 * 24 * time.Hour}, {0.02, time.Hour}, {0.05, 24 * time.Hour}} {
		p := MetaParams{Replicas: 3, AFR: tc.afr, Rebuild: tc.rebuild, Parallel: true}
		r, err := Meta(p)
		if err != nil {
			t.Fatal(err)
		}
		lam := -math.Log1p(-tc.afr)
		mu := float64(Year) / float64(tc.rebuild)
		b := 5*lam + mu
		s1 := (-b - math.Sqrt(b*b-24*lam*lam)) / 2 // the large root
		s2 := 6 * lam * lam / s1                   // the small one, from the product
		survive := (s1*math.Exp(s2) - s2*math.Exp(s1)) / (s1 - s2)
		// 1 − survive, without the cancellation: s1·(1 − e^{s2}) + s2·(e^{s1} − 1), over s1 − s2.
		want := (s1*-math.Expm1(s2) + s2*math.Expm1(s1)) / (s1 - s2)
		within(t, "three replicas (closed form)", r.AnnualLossProbability, want, 1e-6)
		within(t, "closed form self-check", want, 1-survive, 1e-3)
		within(t, "three replicas MTTDL", r.MTTDLYears, (5*lam+mu)/(6*lam*lam), 1e-9)
		if r.LostAt != 2 {
			t.Errorf("three replicas: lost at %d, want 2", r.LostAt)
		}
	}
}

// Three replicas are far more durable than one, five than three; losing all
// of them is rarer than losing a majority.
func TestMetaReplicasHelp(t *testing.T) {
	p := MetaParams{AFR: 0.02, Rebuild: time.Hour, Parallel: true}
	var prev MetaResult
	for _, n := range []int{1, 3, 5} {
		p.Replicas = n
		r, err := Meta(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d replicas: majority lost %.3g (%.2f nines), all lost %.3g", n, r.AnnualLossProbability, r.Nines, r.AllLost)
		if n > 1 {
			if !(r.AnnualLossProbability < prev.AnnualLossProbability*1e-3) {
				t.Errorf("%d replicas: %g, not far below %d replicas' %g", n, r.AnnualLossProbability, prev.Replicas, prev.AnnualLossProbability)
			}
			if !(r.AllLost < r.AnnualLossProbability) {
				t.Errorf("%d replicas: all lost %g not below majority lost %g", n, r.AllLost, r.AnnualLossProbability)
			}
		}
		prev = r
	}
}

// Replicas sharing a domain fail together: three replicas in two zones lose
// a majority whenever the zone holding two fails.
func TestMetaSharedDomainHurts(t *testing.T) {
	p := MetaParams{Replicas: 3, AFR: 0.02, Rebuild: time.Hour, Parallel: true, DomainRate: 0.01}
	spread, err := Meta(p)
	if err != nil {
		t.Fatal(err)
	}
	p.PerDomain = []int{2, 1}
	shared, err := Meta(p)
	if err != nil {
		t.Fatal(err)
	}
	// One zone failure (rate 0.01/yr) loses two replicas: ≈ 1 − e^{−0.01}.
	if !(shared.AnnualLossProbability > 0.009 && shared.AnnualLossProbability > spread.AnnualLossProbability*100) {
		t.Fatalf("two replicas in one zone: %g, spread: %g", shared.AnnualLossProbability, spread.AnnualLossProbability)
	}
}

func TestCombine(t *testing.T) {
	for _, tc := range [][2]float64{{0.02, 1e-9}, {1e-12, 3e-7}, {0, 0.5}, {0.3, 0.4}} {
		c := Combine(tc[0], tc[1])
		if c < tc[0] || c < tc[1] {
			t.Errorf("Combine(%g, %g) = %g, below a part", tc[0], tc[1], c)
		}
		within(t, "combined", c, 1-(1-tc[0])*(1-tc[1]), 1e-9)
	}
	// Tiny parts add, where 1 − (1−a)(1−b) would round them away.
	within(t, "tiny", Combine(1e-18, 2e-18), 3e-18, 1e-9)
	if Combine(1, 0.1) != 1 {
		t.Error("a certain loss is certain")
	}
}

func TestMetaValidate(t *testing.T) {
	good := MetaParams{Replicas: 3, AFR: 0.02, Rebuild: time.Hour}
	for name, mut := range map[string]func(*MetaParams){
		"no replicas":    func(p *MetaParams) { p.Replicas = 0 },
		"afr zero":       func(p *MetaParams) { p.AFR = 0 },
		"rebuild zero":   func(p *MetaParams) { p.Rebuild = 0 },
		"domain rate":    func(p *MetaParams) { p.DomainRate = -1 },
		"domains sum":    func(p *MetaParams) { p.PerDomain = []int{1, 1} },
		"empty domain":   func(p *MetaParams) { p.PerDomain = []int{3, 0} },
		"rebuild decade": func(p *MetaParams) { p.Rebuild = 11 * Year },
	} {
		p := good
		mut(&p)
		if _, err := Meta(p); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: err = %v, want ErrInvalidParams", name, err)
		}
	}
	if _, err := Meta(good); err != nil {
		t.Fatal(err)
	}
}
