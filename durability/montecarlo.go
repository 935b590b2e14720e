package durability

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/placement"
)

// MonteCarloConfig describes a simulated cluster.
type MonteCarloConfig struct {
	Params
	// Topology: Nodes are spread evenly over Zones × RacksPerZone racks, one
	// host per node. Defaults: 1 zone, 1 rack per zone.
	Zones, RacksPerZone int
	// Stripes placed by the placement package (default 100,000).
	StripeCount int
	// Classes are further kinds of stripes in the same cluster — say small
	// objects stored as M+1 copies (K=1) beside Params' K+M — placed by
	// the same placement and failed by the same simulated node failures, so
	// the years in which any of them loses a stripe (MonteCarloResult.Any)
	// are counted as one cluster's, not combined as if independent.
	Classes []StripeClass
	// Trials is the number of simulated years (default 1,000).
	Trials int
	// WeibullShape: 0 or 1 draws exponential lifetimes; otherwise Weibull
	// lifetimes with this shape, scaled so a new node fails within a year with
	// probability AFR, starting at ages uniform over [0, 5) years.
	WeibullShape float64
	// RackRate: failures per rack per year that take all its nodes down at
	// once (bursts). 0: none.
	RackRate float64
	// ExpRepair draws each repair's duration from an exponential of mean
	// Params.Repair (what the Markov chain assumes) instead of a fixed time.
	ExpRepair bool
	// DataPerNode (bytes) and RepairBandwidth (bytes/s, cluster-wide) make
	// repair bandwidth-limited: failed nodes are rebuilt one after another at
	// that bandwidth, after Detect. Both zero: each repair takes Params.Repair.
	DataPerNode     float64
	RepairBandwidth float64
	Detect          time.Duration
	Seed            uint64
	// Progress, if set, is called now and then with trials done and total.
	Progress func(done, total int)
	// Stop, if set, ends the simulation early when it returns true (a time
	// bound kept by the caller); the result covers the trials done.
	Stop func() bool
}

// StripeClass is one kind of stripe of a simulated cluster: its coding and
// how many stripes of it are placed.
type StripeClass struct {
	K, M  int
	Count int
}

// MonteCarloResult adds the simulation's own figures to Result. Its Result
// and counters are those of Params' K+M stripes.
type MonteCarloResult struct {
	Result
	// Classes are MonteCarloConfig.Classes' figures, in their order.
	Classes []MonteCarloClassResult `json:"classes,omitempty"`
	// Any counts the years in which a stripe of any class (Params' or
	// Classes') was lost; set only when there are Classes.
	Any             *Result `json:"any,omitempty"`
	Trials          int     `json:"trials"`
	LossYears       int     `json:"loss_years"`
	StripesLost     int64   `json:"stripes_lost"`
	LossPerStripe   float64 `json:"loss_per_stripe_per_year"`
	RepairBytesYear float64 `json:"repair_bytes_per_year,omitempty"`
	NodeFailures    int64   `json:"node_failures"`
	Seed            uint64  `json:"seed"`
}

// MonteCarloClassResult is one StripeClass's part of a simulation.
type MonteCarloClassResult struct {
	Result
	K             int     `json:"k"`
	M             int     `json:"m"`
	Stripes       int     `json:"stripes"`
	LossYears     int     `json:"loss_years"`
	StripesLost   int64   `json:"stripes_lost"`
	LossPerStripe float64 `json:"loss_per_stripe_per_year"`
}

type event struct {
	at   float64 // years since the trial began
	kind int     // evFail, evRepaired, evRack
	node int
	life int32 // which life of the node an evFail belongs to
}

const (
	evFail = iota
	evRepaired
	evRack
)

type events []event

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e[i].at < e[j].at }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// MonteCarlo simulates the cluster for Trials years and reports the fraction
// of years in which any stripe was lost, with a 95% Wilson interval.
func MonteCarlo(cfg MonteCarloConfig) (MonteCarloResult, error) {
	if err := cfg.Params.Validate(); err != nil {
		return MonteCarloResult{}, err
	}
	if cfg.Zones <= 0 {
		cfg.Zones = 1
	}
	if cfg.RacksPerZone <= 0 {
		cfg.RacksPerZone = 1
	}
	if cfg.StripeCount <= 0 {
		cfg.StripeCount = 100_000
	}
	if cfg.Trials <= 0 {
		cfg.Trials = 1000
	}
	if cfg.WeibullShape < 0 || cfg.RackRate < 0 || cfg.DataPerNode < 0 || cfg.RepairBandwidth < 0 {
		return MonteCarloResult{}, fmt.Errorf("%w: negative Monte Carlo setting", ErrInvalidParams)
	}
	N := cfg.Nodes
	racks := cfg.Zones * cfg.RacksPerZone
	nodes := make([]cluster.Node, N)
	rackOf := make([]int, N)
	for i := range nodes {
		r := i % racks
		rackOf[i] = r
		nodes[i] = cluster.Node{
			ID: cluster.NodeID(fmt.Sprintf("n%05d", i)),
			Domain: cluster.Domain{
				Zone: "z" + strconv.Itoa(r%cfg.Zones),
				Rack: "r" + strconv.Itoa(r),
				Host: "h" + strconv.Itoa(i),
			},
			State: cluster.Up,
		}
	}
	m, err := cluster.NewMap(1, nodes)
	if err != nil {
		return MonteCarloResult{}, err
	}
	idx := make(map[cluster.NodeID]int, N)
	for i, nd := range nodes {
		idx[nd.ID] = i
	}
	// Class 0 is Params' K+M; the stripes of all classes are numbered one
	// after another, and each knows its class and the shards it survives.
	if len(cfg.Classes) > 255 {
		return MonteCarloResult{}, fmt.Errorf("%w: %d stripe classes, at most 255", ErrInvalidParams, len(cfg.Classes))
	}
	classes := append([]StripeClass{{K: cfg.K, M: cfg.M, Count: cfg.StripeCount}}, cfg.Classes...)
	total := 0
	for i, c := range classes {
		if i > 0 {
			probe := cfg.Params
			probe.K, probe.M, probe.Nodes, probe.DomainRate = c.K, c.M, N, 0
			if err := probe.Validate(); err != nil {
				return MonteCarloResult{}, fmt.Errorf("stripe class %d+%d: %w", c.K, c.M, err)
			}
			if c.Count <= 0 {
				return MonteCarloResult{}, fmt.Errorf("%w: stripe class %d+%d has %d stripes", ErrInvalidParams, c.K, c.M, c.Count)
			}
		}
		total += c.Count
	}
	classOf := make([]uint8, 0, total)
	tolerates := make([]int16, 0, total)
	// node → stripes it holds a shard of.
	onNode := make([][]int32, N)
	planner := placement.NewPlanner(m)
	for ci, c := range classes {
		prefix := "stripe-"
		if ci > 0 {
			// distinct object names: another class's objects are other objects
			prefix = fmt.Sprintf("class%d-stripe-", ci)
		}
		for s := 0; s < c.Count; s++ {
			ids, err := planner.Place(prefix+strconv.Itoa(s), c.K, c.M)
			if err != nil {
				return MonteCarloResult{}, fmt.Errorf("place %d+%d stripe %d: %w", c.K, c.M, s, err)
			}
			id := int32(len(classOf))
			classOf = append(classOf, uint8(ci))
			tolerates = append(tolerates, int16(c.M))
			for _, nd := range ids {
				onNode[idx[nd]] = append(onNode[idx[nd]], id)
			}
		}
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	lam := cfg.lambda()
	shape := cfg.WeibullShape
	if shape == 1 {
		shape = 0
	}
	scale := 0.0
	if shape > 0 {
		scale = math.Pow(lam, -1/shape) // F(1 year) = AFR for a new node
	}
	// life draws a node's remaining life (years) at age a.
	life := func(a float64) float64 {
		if shape == 0 {
			return rng.ExpFloat64() / lam
		}
		u := 1 - rng.Float64()
		return scale*math.Pow(math.Pow(a/scale, shape)-math.Log(u), 1/shape) - a
	}
	repairYears := func() float64 {
		d := float64(cfg.Repair) / float64(Year)
		if cfg.ExpRepair {
			return rng.ExpFloat64() * d
		}
		return d
	}
	bandwidthLimited := cfg.DataPerNode > 0 && cfg.RepairBandwidth > 0
	rebuildYears := 0.0
	if bandwidthLimited {
		rebuildYears = cfg.DataPerNode / cfg.RepairBandwidth / Year.Seconds()
	}
	detect := float64(cfg.Detect) / float64(Year)

	res := MonteCarloResult{Seed: cfg.Seed}
	lossYears := make([]int, len(classes))
	stripesLost := make([]int64, len(classes))
	anyLossYears := 0
	lossThisYear := make([]bool, len(classes))
	failed := make([]int16, total)
	lost := make([]bool, total)
	down := make([]bool, N)
	lives := make([]int32, N)
	var lostList []int32
	for trial := 0; trial < cfg.Trials; trial++ {
		if cfg.Stop != nil && trial > 0 && cfg.Stop() {
			break
		}
		if cfg.Progress != nil && trial%max(1, cfg.Trials/100) == 0 {
			cfg.Progress(trial, cfg.Trials)
		}
		for i := range failed {
			failed[i] = 0
		}
		for _, s := range lostList {
			lost[s] = false
		}
		lostList = lostList[:0]
		for i := range down {
			down[i] = false
			lives[i] = 0
		}
		q := events{}
		for i := 0; i < N; i++ {
			age := 0.0
			if shape > 0 {
				age = rng.Float64() * 5
			}
			if t := life(age); t < 1 {
				q = append(q, event{at: t, kind: evFail, node: i})
			}
		}
		if cfg.RackRate > 0 {
			for r := 0; r < racks; r++ {
				for t := rng.ExpFloat64() / cfg.RackRate; t < 1; t += rng.ExpFloat64() / cfg.RackRate {
					q = append(q, event{at: t, kind: evRack, node: r})
				}
			}
		}
		heap.Init(&q)
		queueFree := 0.0 // when the shared repair bandwidth is next free
		for i := range lossThisYear {
			lossThisYear[i] = false
		}
		fail := func(i int, at float64) {
			if down[i] {
				return
			}
			down[i] = true
			lives[i]++ // a pending failure of the life a rack burst ended is void
			res.NodeFailures++
			for _, s := range onNode[i] {
				failed[s]++
				if failed[s] > tolerates[s] && !lost[s] {
					lost[s] = true
					lostList = append(lostList, s)
					stripesLost[classOf[s]]++
					lossThisYear[classOf[s]] = true
				}
			}
			var done float64
			if bandwidthLimited {
				start := max(at+detect, queueFree)
				done = start + rebuildYears
				queueFree = done
				res.RepairBytesYear += cfg.DataPerNode
			} else {
				done = at + repairYears()
			}
			if done < 1 {
				heap.Push(&q, event{at: done, kind: evRepaired, node: i})
			}
		}
		for q.Len() > 0 {
			ev := heap.Pop(&q).(event)
			switch ev.kind {
			case evFail:
				if ev.life == lives[ev.node] {
					fail(ev.node, ev.at)
				}
			case evRack:
				for i := 0; i < N; i++ {
					if rackOf[i] == ev.node {
						fail(i, ev.at)
					}
				}
			case evRepaired:
				down[ev.node] = false
				for _, s := range onNode[ev.node] {
					failed[s]--
				}
				// the rebuilt node (a replacement) starts a new life.
				if t := ev.at + life(0); t < 1 {
					heap.Push(&q, event{at: t, kind: evFail, node: ev.node, life: lives[ev.node]})
				}
			}
		}
		res.Trials++
		anyLoss := false
		for i, l := range lossThisYear {
			if l {
				lossYears[i]++
				anyLoss = true
			}
		}
		if anyLoss {
			anyLossYears++
		}
	}
	if cfg.Progress != nil {
		cfg.Progress(res.Trials, cfg.Trials)
	}
	if res.Trials == 0 {
		return res, fmt.Errorf("%w: no trial finished", ErrInvalidParams)
	}
	res.LossYears, res.StripesLost = lossYears[0], stripesLost[0]
	res.Result = yearsResult(lossYears[0], res.Trials)
	res.LossPerStripe = float64(res.StripesLost) / float64(res.Trials) / float64(cfg.StripeCount)
	res.RepairBytesYear /= float64(res.Trials)
	for i, c := range cfg.Classes {
		res.Classes = append(res.Classes, MonteCarloClassResult{
			Result: yearsResult(lossYears[i+1], res.Trials),
			K:      c.K, M: c.M, Stripes: c.Count, LossYears: lossYears[i+1], StripesLost: stripesLost[i+1],
			LossPerStripe: float64(stripesLost[i+1]) / float64(res.Trials) / float64(c.Count),
		})
	}
	if len(cfg.Classes) > 0 {
		a := yearsResult(anyLossYears, res.Trials)
		res.Any = &a
	}
	return res, nil
}

// yearsResult is the simulation's figure for loss in lossYears of trials
// years, with its 95% Wilson interval.
func yearsResult(lossYears, trials int) Result {
	p := float64(lossYears) / float64(trials)
	lo, hi := wilson(lossYears, trials)
	r := Result{Model: "montecarlo", AnnualLossProbability: p, Nines: Nines(p), Interval: &[2]float64{lo, hi}}
	if lossYears == 0 {
		// No loss seen: all the simulation can say is an upper bound on the
		// probability, so the nines it reports are a lower bound.
		r.Nines = Nines(hi)
		r.Note = fmt.Sprintf("no loss in %d simulated years: probability < %.2g, nines ≥ %.2f (95%%)", trials, hi, r.Nines)
	}
	return r
}

// wilson is the 95% Wilson score interval of k successes in n trials.
func wilson(k, n int) (float64, float64) {
	const z = 1.959964
	p := float64(k) / float64(n)
	nn := float64(n)
	den := 1 + z*z/nn
	c := (p + z*z/(2*nn)) / den
	h := z * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn)) / den
	return max(0, c-h), min(1, c+h)
}
