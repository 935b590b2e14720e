package durability

import "math"

// pow1m returns (1−h)^n accurately for tiny h.
func pow1m(h, n float64) float64 {
	if h >= 1 {
		return 0
	}
	return math.Exp(n * math.Log1p(-h))
}

// Binomial is Backblaze's discrete model: within one repair window each
// shard's node fails with p = AFR × window/year; the stripe is lost when more
// than m of its k+m shards fail in the same window; the year holds
// year/window independent windows. It has no domain failures (DomainRate
// is ignored, and its Note says so).
func Binomial(p Params) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	n := p.K + p.M
	window := float64(p.Repair) / float64(Year)
	q := min(p.AFR*window, 1)
	lossWindow := 0.0
	for i := p.M + 1; i <= n; i++ {
		lossWindow += expLogChoose(n, i) * math.Pow(q, float64(i)) * math.Pow(1-q, float64(n-i))
	}
	windows := 1 / window
	prob := -math.Expm1(windows * math.Log1p(-min(lossWindow, 1-1e-300)))
	if lossWindow < 1e-12 {
		prob = windows * lossWindow // the same, without rounding away the tail
	}
	prob = min(prob, 1)
	r := Result{Model: "binomial", AnnualLossProbability: prob, Nines: Nines(prob)}
	if p.DomainRate > 0 {
		r.Note = "ignores domain failures"
	}
	return r, nil
}
