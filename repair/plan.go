package repair

import (
	"sort"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// Candidate is one object version that may need repair.
type Candidate struct {
	Bucket, Key string
	Generation  uint64
	// Healthy is the fewest healthy shards of any of its segments; K and
	// Total are that segment's k and k+m.
	Healthy, K, Total int
	// Lost is the number of shards (over all segments) to re-create, and
	// LostBytes their size.
	Lost      int
	LostBytes int64
	// Since is when the object was first seen needing repair.
	Since time.Time
}

// Urgent reports whether the object is one failure (or less) from loss.
func (c Candidate) Urgent() bool { return c.Healthy <= c.K }

// Margin is how many more failures the object survives.
func (c Candidate) Margin() int { return c.Healthy - c.K }

// ShardHealth is how one shard looks to repair.
type ShardHealth int

const (
	// Healthy: on a node in the map that is up or full, not reported bad.
	Healthy ShardHealth = iota
	// Unavailable: on a node that is down but not yet out: readable again
	// when it comes back, so not re-created yet.
	Unavailable
	// Lost: never written, on an out or unknown node, reported bad, or on a
	// draining node (copied away before the node leaves).
	Lost
)

// Classify decides one shard's health.
func Classify(ref meta.ShardRef, mp *cluster.Map, bad bool) ShardHealth {
	if ref.Node == "" || bad {
		return Lost
	}
	n, ok := mp.Node(ref.Node)
	if !ok {
		return Lost
	}
	switch n.State {
	case cluster.Up, cluster.Full:
		return Healthy
	case cluster.Down:
		return Unavailable
	default: // Out, Draining
		return Lost
	}
}

// Assess turns a manifest into a candidate. bad says whether a shard of a
// segment has been reported missing or corrupt. ok is false when nothing is
// lost (the object needs no repair now, though it may have unavailable
// shards on down nodes).
func Assess(m meta.Manifest, mp *cluster.Map, bad func(seg, index int) bool, since time.Time) (c Candidate, ok bool) {
	c = Candidate{Bucket: m.Bucket, Key: m.Key, Generation: m.Generation, Since: since, Healthy: -1}
	for si, seg := range m.Segments {
		healthy := 0
		for _, ref := range seg.Shards {
			switch Classify(ref, mp, bad != nil && bad(si, ref.Index)) {
			case Healthy:
				healthy++
			case Lost:
				c.Lost++
				c.LostBytes += ref.Size
				if ref.Size == 0 && seg.K > 0 {
					c.LostBytes += seg.Size / int64(seg.K)
				}
			}
		}
		if c.Healthy < 0 || healthy-seg.K < c.Healthy-c.K {
			c.Healthy, c.K, c.Total = healthy, seg.K, seg.K+seg.M
		}
	}
	if c.Healthy < 0 { // no segments: an empty object
		c.Healthy = 0
	}
	return c, c.Lost > 0
}

// Plan orders candidates by risk: smallest margin (healthy − k) first, then
// the oldest, then bucket and key. It returns a new slice; the input is not
// changed.
func Plan(cs []Candidate) []Candidate {
	out := append([]Candidate(nil), cs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Margin() != b.Margin() {
			return a.Margin() < b.Margin()
		}
		if !a.Since.Equal(b.Since) {
			return a.Since.Before(b.Since)
		}
		if a.Bucket != b.Bucket {
			return a.Bucket < b.Bucket
		}
		return a.Key < b.Key
	})
	return out
}
