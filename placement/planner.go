package placement

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/shale-store/shale/cluster"
)

// Caps are the most shards of one object a single domain may hold, per
// level.
type Caps struct {
	Zone int `json:"zone"`
	Rack int `json:"rack"`
	Host int `json:"host"`
}

// Planner places objects on one cluster.Map. It precomputes per-node hashes,
// weights and domain indexes once, so each placement costs one 64-bit mix
// per eligible node plus sorting the few best (see place). Building one
// costs O(nodes) hashing; keep one per map epoch. A Planner is immutable
// after NewPlanner except for internal caches, and is safe for concurrent
// use.
type Planner struct {
	m *cluster.Map

	// Per node of the map, in the order the planner was built from.
	ids   []cluster.NodeID
	hash  []uint64
	zone  []int32 // domain indexes; meaningful only as identities
	rack  []int32
	host  []int32
	index map[cluster.NodeID]int32

	nZones, nRacks, nHosts int

	// Eligible (Up) nodes: positions into the per-node slices, their inverse
	// normalised weights, and whether all their weights are equal (then the
	// draw alone orders them and no logarithm is needed).
	elig    []int32
	invW    []float64
	uniform bool

	// Eligible nodes per domain, and the tree linking the levels.
	zoneCnt, rackCnt, hostCnt []int
	rackZone, hostRack        []int32
	dZones, dRacks, dHosts    int // domains holding at least one eligible node

	cacheMu sync.Mutex
	caps    map[int]Caps  // by shard count; guarded by cacheMu
	tiers   map[int]*tier // by wanted candidate count; guarded by cacheMu

	scratch sync.Pool // *scratch
}

// NewPlanner prepares placements on m. A nil map is an empty one.
func NewPlanner(m *cluster.Map) *Planner {
	var nodes []cluster.Node
	if m != nil {
		nodes = make([]cluster.Node, m.Len())
		for i := range nodes {
			nodes[i] = m.At(i)
		}
	}
	return newPlanner(m, nodes)
}

// newPlanner builds a planner from nodes in the given order. Tests call it
// with shuffled slices to show the answers do not depend on that order.
func newPlanner(m *cluster.Map, nodes []cluster.Node) *Planner {
	p := &Planner{
		m:     m,
		ids:   make([]cluster.NodeID, len(nodes)),
		hash:  make([]uint64, len(nodes)),
		zone:  make([]int32, len(nodes)),
		rack:  make([]int32, len(nodes)),
		host:  make([]int32, len(nodes)),
		index: make(map[cluster.NodeID]int32, len(nodes)),
		caps:  map[int]Caps{},
		tiers: map[int]*tier{},
	}
	zones, racks, hosts := map[string]int32{}, map[string]int32{}, map[string]int32{}
	intern := func(tab map[string]int32, key string) int32 {
		if v, ok := tab[key]; ok {
			return v
		}
		v := int32(len(tab))
		tab[key] = v
		return v
	}
	maxW := 0.0
	for i, n := range nodes {
		p.ids[i] = n.ID
		p.hash[i] = nodeHash(string(n.ID))
		p.index[n.ID] = int32(i)
		p.zone[i] = intern(zones, n.Domain.Key(cluster.LevelZone))
		p.rack[i] = intern(racks, n.Domain.Key(cluster.LevelRack))
		p.host[i] = intern(hosts, n.Domain.Key(cluster.LevelHost))
		if n.State.Placeable() {
			p.elig = append(p.elig, int32(i))
			if w := n.Weight(); w > maxW {
				maxW = w
			}
		}
	}
	p.nZones, p.nRacks, p.nHosts = len(zones), len(racks), len(hosts)
	p.zoneCnt = make([]int, p.nZones)
	p.rackCnt = make([]int, p.nRacks)
	p.hostCnt = make([]int, p.nHosts)
	p.rackZone = make([]int32, p.nRacks)
	p.hostRack = make([]int32, p.nHosts)
	for i := range nodes {
		p.rackZone[p.rack[i]] = p.zone[i]
		p.hostRack[p.host[i]] = p.rack[i]
	}
	p.invW = make([]float64, len(p.elig))
	p.uniform = true
	for j, i := range p.elig {
		w := nodes[i].Weight()
		// Normalising by the largest weight keeps keys in a sane range;
		// scaling every weight by one factor never changes an order.
		p.invW[j] = maxW / w
		if w != nodes[p.elig[0]].Weight() {
			p.uniform = false
		}
		if p.zoneCnt[p.zone[i]] == 0 {
			p.dZones++
		}
		if p.rackCnt[p.rack[i]] == 0 {
			p.dRacks++
		}
		if p.hostCnt[p.host[i]] == 0 {
			p.dHosts++
		}
		p.zoneCnt[p.zone[i]]++
		p.rackCnt[p.rack[i]]++
		p.hostCnt[p.host[i]]++
	}
	return p
}

// Map returns the map the planner was built on.
func (p *Planner) Map() *cluster.Map { return p.m }

// Eligible is the number of nodes new shards may go to (Up nodes).
func (p *Planner) Eligible() int { return len(p.elig) }

// Caps returns the per-level caps for placing n shards on this map's
// eligible nodes. Each cap is the smallest value, at least
// ceil(n / eligible domains at that level), that still lets min(n, eligible
// nodes) shards be placed given the caps already fixed for the wider levels:
// zones first, then racks, then hosts. On a map whose domains are each big
// enough that is exactly ceil(n / domains); on a lopsided map (say one zone
// with a single node) the wider domains take the slack. Caps of an empty
// map are zero.
func (p *Planner) Caps(n int) Caps {
	p.cacheMu.Lock()
	c, ok := p.caps[n]
	p.cacheMu.Unlock()
	if ok {
		return c
	}
	c = p.computeCaps(n)
	p.cacheMu.Lock()
	p.caps[n] = c
	p.cacheMu.Unlock()
	return c
}

func (p *Planner) computeCaps(n int) Caps {
	if len(p.elig) == 0 || n <= 0 {
		return Caps{}
	}
	target := min(n, len(p.elig))
	inf := n
	c := Caps{Zone: ceilDiv(n, p.dZones), Rack: inf, Host: inf}
	for p.flow(c) < target {
		c.Zone++
	}
	c.Rack = ceilDiv(n, p.dRacks)
	for p.flow(c) < target {
		c.Rack++
	}
	c.Host = ceilDiv(n, p.dHosts)
	for p.flow(c) < target {
		c.Host++
	}
	return c
}

// flow is the most shards placeable on the eligible nodes under caps c: the
// rank of the laminar matroid the caps define, computed up the tree.
func (p *Planner) flow(c Caps) int {
	rackSum := make([]int, p.nRacks)
	zoneSum := make([]int, p.nZones)
	for h, cnt := range p.hostCnt {
		rackSum[p.hostRack[h]] += min(cnt, c.Host)
	}
	for r, s := range rackSum {
		zoneSum[p.rackZone[r]] += min(s, c.Rack)
	}
	total := 0
	for _, s := range zoneSum {
		total += min(s, c.Zone)
	}
	return total
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func checkArgs(object string, k, parity int) (int, error) {
	if object == "" || k < 1 || parity < 0 || k+parity > MaxShards {
		return 0, fmt.Errorf("%w: object %q, k=%d, parity=%d", ErrInvalidArgs, object, k, parity)
	}
	return k + parity, nil
}

// Place returns k+parity distinct Up nodes for object; element i is the node
// of shard i. No zone, rack or host gets more shards than Caps(k+parity).
// It returns a *TooFewNodesError when the map has fewer than k+parity Up
// nodes.
func (p *Planner) Place(object string, k, parity int) ([]cluster.NodeID, error) {
	n, err := checkArgs(object, k, parity)
	if err != nil {
		return nil, fmt.Errorf("place %s: %w", object, err)
	}
	if len(p.elig) < n {
		return nil, fmt.Errorf("place %s (%d+%d): %w", object, k, parity,
			&TooFewNodesError{Need: n, Have: len(p.elig)})
	}
	out, _ := p.place(object, n)
	return out, nil
}

// PlaceDegraded is Place for a map with fewer than k+parity Up nodes: it
// fills as many shard indexes as the eligible nodes and the caps allow,
// lowest indexes (data shards) first, and leaves "" in the rest. With
// enough Up nodes it returns exactly what Place returns. It fails with a
// *TooFewNodesError when fewer than min indexes can be filled.
func (p *Planner) PlaceDegraded(object string, k, parity, min int) ([]cluster.NodeID, error) {
	n, err := checkArgs(object, k, parity)
	if err == nil && (min < 1 || min > n) {
		err = fmt.Errorf("%w: min %d outside 1..%d", ErrInvalidArgs, min, n)
	}
	if err != nil {
		return nil, fmt.Errorf("place %s degraded: %w", object, err)
	}
	out, got := p.place(object, n)
	if got < min {
		return nil, fmt.Errorf("place %s (%d+%d) degraded: %w", object, k, parity,
			&TooFewNodesError{Need: min, Have: got})
	}
	return out, nil
}

// cand is a candidate node: its rank key (see before) and eligible position.
type cand struct {
	key uint64
	j   int32
}

// scratch is per-call working memory, pooled per planner.
type scratch struct {
	key    []uint64 // rank key by eligible position: smaller ranks ahead
	x      []uint64 // draw by eligible position
	cand   []cand   // candidates, best first
	picked []int32  // eligible positions, in pick order
	cz     []int32  // shards per zone, rack, host
	cr     []int32
	ch     []int32
	taken  []bool // by slot
}

func (p *Planner) getScratch() *scratch {
	if s, ok := p.scratch.Get().(*scratch); ok {
		return s
	}
	e := len(p.elig)
	return &scratch{
		key:  make([]uint64, e),
		x:    make([]uint64, e),
		cand: make([]cand, 0, e),
		cz:   make([]int32, p.nZones),
		cr:   make([]int32, p.nRacks),
		ch:   make([]int32, p.nHosts),
	}
}

// before reports whether eligible position a ranks ahead of b for the
// current object: lower HRW key, then higher draw, then lower id. Positions
// are never compared, so node order cannot leak into the answer. s.key holds
// the HRW key's float64 bits (ordered like the floats, since keys are
// positive) or, on a map of equal weights, ^draw — the same order, as the
// key then falls as the draw grows.
func (p *Planner) before(s *scratch, a, b int32) bool {
	if s.key[a] != s.key[b] {
		return s.key[a] < s.key[b]
	}
	if s.x[a] != s.x[b] {
		return s.x[a] > s.x[b]
	}
	return p.ids[p.elig[a]] < p.ids[p.elig[b]]
}

// place picks up to min(n, eligible) nodes greedily in rank order, skipping
// any whose zone, rack or host is at its cap, then assigns shard indexes.
// It returns the placement (length n, "" for unfilled indexes) and how many
// indexes it filled.
//
// Only the best-ranked few nodes are ever ranked exactly: a tier keeps the
// nodes whose key is at most a bound chosen so that about 2n nodes (at least
// 24) pass, and the greedy runs on those in rank order. Every node left out
// ranks behind every node kept, so if the greedy fills the placement from
// the kept nodes, the answer is exactly that of a greedy over all nodes. If
// the caps reject too many, the next tier (4 times as many nodes, then all)
// is tried.
func (p *Planner) place(object string, n int) ([]cluster.NodeID, int) {
	out := make([]cluster.NodeID, n)
	target := min(n, len(p.elig))
	if target == 0 {
		return out, 0
	}
	caps := p.Caps(n)
	s := p.getScratch()
	defer p.scratch.Put(s)

	oh := objectHash(object)
	for want := max(2*n, 24); ; want *= 4 {
		tr := p.tier(want)
		p.selectCandidates(s, oh, tr)
		s.picked = s.picked[:0]
		for _, c := range s.cand {
			j := c.j
			i := p.elig[j]
			z, r, h := p.zone[i], p.rack[i], p.host[i]
			if int(s.cz[z]) >= caps.Zone || int(s.cr[r]) >= caps.Rack || int(s.ch[h]) >= caps.Host {
				continue
			}
			s.cz[z]++
			s.cr[r]++
			s.ch[h]++
			s.picked = append(s.picked, j)
			if len(s.picked) == target {
				break
			}
		}
		for _, j := range s.picked { // reset only what we touched
			i := p.elig[j]
			s.cz[p.zone[i]], s.cr[p.rack[i]], s.ch[p.host[i]] = 0, 0, 0
		}
		if len(s.picked) == target || tr.all {
			break
		}
	}
	got := len(s.picked)
	p.assign(s, out[:got])
	return out, got
}

// A tier is a rank bound that about want eligible nodes pass for a random
// object: on equal weights a minimum draw, otherwise a maximum HRW key theta
// together with, per node, the smallest draw that could reach it (a cheap
// conservative filter, so that only passing nodes pay for a logarithm).
type tier struct {
	all     bool     // every node passes
	minDraw uint64   // equal weights: nodes with a smaller draw are out
	theta   float64  // weighted: nodes with a larger key are out
	nodeMin []uint64 // weighted: per eligible node, draws below can't reach theta
}

// tier returns (and caches) the tier letting about want nodes through.
func (p *Planner) tier(want int) *tier {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	if tr, ok := p.tiers[want]; ok {
		return tr
	}
	e := len(p.elig)
	tr := &tier{all: want >= e}
	switch {
	case tr.all:
	case p.uniform:
		tr.minDraw = uint64((1 - float64(want)/float64(e)) * 0x1p64)
	default:
		// Expected passing count is Σ 1-exp(-theta·w_i); solve for theta.
		count := func(theta float64) float64 {
			c := 0.0
			for _, iw := range p.invW {
				c += -math.Expm1(-theta / iw)
			}
			return c
		}
		lo, hi := 0.0, 1.0
		for count(hi) < float64(want) {
			hi *= 2
		}
		for range 60 {
			if mid := (lo + hi) / 2; count(mid) < float64(want) {
				lo = mid
			} else {
				hi = mid
			}
		}
		tr.theta = hi
		tr.nodeMin = make([]uint64, e)
		for j, iw := range p.invW {
			// key ≤ theta ⇔ u ≥ exp(-theta/w); u = (x>>11 + 0.5)·2^-53. A
			// margin of 2^-30 in u keeps the filter conservative whatever
			// the rounding of Log and Exp.
			umin := math.Exp(-tr.theta/iw) - 0x1p-30
			if umin <= 0 {
				continue
			}
			tr.nodeMin[j] = uint64(umin*0x1p53) << 11
		}
	}
	p.tiers[want] = tr
	return tr
}

// selectCandidates leaves in s.cand the eligible nodes passing tier tr for
// the object with hash oh, sorted best first.
func (p *Planner) selectCandidates(s *scratch, oh uint64, tr *tier) {
	s.cand = s.cand[:0]
	switch {
	case p.uniform:
		for j, i := range p.elig {
			x := draw(oh, p.hash[i])
			if x >= tr.minDraw || tr.all {
				s.x[j], s.key[j] = x, ^x
				s.cand = append(s.cand, cand{^x, int32(j)})
			}
		}
	default:
		for j, i := range p.elig {
			x := draw(oh, p.hash[i])
			if !tr.all && x < tr.nodeMin[j] {
				continue
			}
			key := hrwKey(x, p.invW[j])
			if !tr.all && key > tr.theta {
				continue
			}
			kb := math.Float64bits(key)
			s.x[j], s.key[j] = x, kb
			s.cand = append(s.cand, cand{kb, int32(j)})
		}
	}
	slices.SortFunc(s.cand, func(a, b cand) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		if p.before(s, a.j, b.j) {
			return -1
		}
		if p.before(s, b.j, a.j) {
			return 1
		}
		return 0
	})
}

// assign gives each picked node, in pick order, the free index in out it
// prefers most (highest slotDraw).
func (p *Planner) assign(s *scratch, out []cluster.NodeID) {
	if cap(s.taken) < len(out) {
		s.taken = make([]bool, len(out))
	}
	taken := s.taken[:len(out)]
	clear(taken)
	for _, j := range s.picked {
		best, bestD := -1, uint64(0)
		for slot := range out {
			if taken[slot] {
				continue
			}
			if d := slotDraw(s.x[j], slot); best < 0 || d > bestD {
				best, bestD = slot, d
			}
		}
		taken[best] = true
		out[best] = p.ids[p.elig[j]]
	}
}

// Place returns k+parity distinct Up nodes of m for object (see
// Planner.Place). It builds a Planner per call; callers placing many objects
// on one map should build a Planner once.
func Place(m *cluster.Map, object string, k, parity int) ([]cluster.NodeID, error) {
	return NewPlanner(m).Place(object, k, parity)
}

// PlaceDegraded is Place that tolerates too few Up nodes (see
// Planner.PlaceDegraded).
func PlaceDegraded(m *cluster.Map, object string, k, parity, min int) ([]cluster.NodeID, error) {
	return NewPlanner(m).PlaceDegraded(object, k, parity, min)
}
