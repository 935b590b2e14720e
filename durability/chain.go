package durability

import (
	"fmt"
	"math"
)

// chain is a continuous-time Markov chain with transient states 0..n-1 and
// one absorbing state (data loss). rate[i][j] (i ≠ j) is the rate from
// transient state i to j; exit[i] is the rate from i into loss. Rates are per
// year.
type chain struct {
	rate [][]float64
	exit []float64
}

func newChain(n int) *chain {
	c := &chain{rate: make([][]float64, n), exit: make([]float64, n)}
	for i := range c.rate {
		c.rate[i] = make([]float64, n)
	}
	return c
}

func (c *chain) add(from, to int, r float64) {
	if r <= 0 || from == to {
		return
	}
	if to >= len(c.rate) {
		c.exit[from] += r
		return
	}
	c.rate[from][to] += r
}

func (c *chain) out(i int) float64 {
	s := c.exit[i]
	for j, r := range c.rate[i] {
		if j != i {
			s += r
		}
	}
	return s
}

// mttdl is the expected time (years) from state 0 to absorption. It
// eliminates states from the last down to 1 and recomputes every diagonal as
// the sum of the remaining outgoing rates (the Grassmann–Taksar–Heyman
// idea), so no step subtracts nearly equal numbers even when loss is 1e-30
// likely per repair cycle.
func (c *chain) mttdl() float64 {
	n := len(c.rate)
	r := make([][]float64, n)
	for i := range r {
		r[i] = append([]float64(nil), c.rate[i]...)
	}
	e := append([]float64(nil), c.exit...)
	b := make([]float64, n) // expected time reward per visit: holding time
	for i := range b {
		b[i] = 1
	}
	for s := n - 1; s >= 1; s-- {
		outS := e[s]
		for j := 0; j < s; j++ {
			outS += r[s][j]
		}
		if outS == 0 {
			return math.Inf(1)
		}
		for i := 0; i < s; i++ {
			ris := r[i][s]
			if ris == 0 {
				continue
			}
			f := ris / outS
			for j := 0; j < s; j++ {
				if j != i {
					r[i][j] += f * r[s][j]
				}
			}
			e[i] += f * e[s]
			b[i] += f * b[s]
			r[i][s] = 0
		}
	}
	if e[0] == 0 {
		return math.Inf(1)
	}
	// Only the exit remains out of state 0: out0·t0 = b0.
	return b[0] / e[0]
}

// maxUniformSteps bounds uniformization's work; beyond it the chain is
// answered from its MTTDL (exact for a chain that mixes much faster than it
// is absorbed, which is when the bound is hit).
const maxUniformSteps = 20_000_000

// lossWithin is the probability of absorption within t years, starting in
// state 0, by uniformization: P = Σ_n Poisson(n; qt)·A_n, where A_n is the
// mass absorbed within n jumps of the uniformized chain. Every term is
// non-negative, so tiny probabilities keep their relative accuracy.
func (c *chain) lossWithin(t float64) (float64, string) {
	n := len(c.rate)
	q := 0.0
	outs := make([]float64, n)
	for i := range outs {
		outs[i] = c.out(i)
		q = max(q, outs[i])
	}
	if q == 0 {
		return 0, ""
	}
	q *= 1.0001 // keep every self-loop probability positive
	qt := q * t
	last := qt + 12*math.Sqrt(qt) + 30
	if last > maxUniformSteps {
		m := c.mttdl()
		return -math.Expm1(-t / m), fmt.Sprintf("uniformization would take %.0f steps; from MTTDL", last)
	}
	v := make([]float64, n)
	next := make([]float64, n)
	v[0] = 1
	absorbed := 0.0
	p := 0.0
	for k := 0; float64(k) <= last; k++ {
		w := math.Exp(-qt + float64(k)*math.Log(qt) - lgamma(float64(k)+1))
		if qt == 0 && k == 0 {
			w = 1
		}
		p += w * absorbed
		// one jump of the uniformized chain
		for j := range next {
			next[j] = 0
		}
		for i, vi := range v {
			if vi == 0 {
				continue
			}
			absorbed += vi * c.exit[i] / q
			next[i] += vi * (1 - outs[i]/q)
			for j, r := range c.rate[i] {
				if r > 0 && j != i {
					next[j] += vi * r / q
				}
			}
		}
		v, next = next, v
	}
	return min(p, 1), ""
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
