package drill

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Event kinds.
const (
	KindStart    = "start"    // the drill began
	KindWrite    = "write"    // the verification set is being or was written
	KindKill     = "kill"     // a process was SIGKILLed
	KindDown     = "down"     // meta marked a victim down
	KindOut      = "out"      // meta marked a victim out: repair re-creates its shards
	KindHealth   = "health"   // the histogram of objects by spare shards changed
	KindLeader   = "leader"   // a meta replica leads after the leader was killed
	KindRead     = "read"     // a read-back of the verification set
	KindRepaired = "repaired" // every object back at full redundancy
	KindTimeout  = "timeout"  // the drill's time ran out
	KindNote     = "note"     // anything else worth a line
)

// Event is one line of the timeline.
type Event struct {
	At     time.Duration `json:"-"`
	T      float64       `json:"t"` // seconds since the drill began
	Round  int           `json:"round,omitempty"`
	Kind   string        `json:"kind"`
	Target string        `json:"target,omitempty"` // node or replica id
	PID    int           `json:"pid,omitempty"`
	Detail string        `json:"detail,omitempty"`
	// Spare is the histogram of objects by spare shards (KindHealth).
	Spare map[int]int64 `json:"spare,omitempty"`
}

// Timeline collects events; Events returns them ordered by time, ties in
// the order they were added. Not safe for concurrent use.
type Timeline struct {
	events []Event
}

// Add appends e, setting its T from At.
func (tl *Timeline) Add(e Event) {
	e.T = e.At.Seconds()
	tl.events = append(tl.events, e)
}

// Events returns a copy of the events ordered by time.
func (tl *Timeline) Events() []Event {
	out := slices.Clone(tl.events)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// Sample is one reading of meta's status.
type Sample struct {
	At time.Duration
	// Nodes maps a node id to its state as meta shows it ("up", "down",
	// "out", "draining", …).
	Nodes map[string]string
	// Spare is meta's objects by spare shards: healthy shards beyond k of
	// the worst segment, m when whole, negative when unreadable.
	Spare          map[int]int64
	Objects        int64
	RepairQueue    int64
	BytesRepaired  int64
	ShardsRepaired int64
}

// RoundResult is what one round did and what the cluster did about it.
type RoundResult struct {
	Round   int         `json:"round"`
	Victims []Candidate `json:"victims"`
	Zone    string      `json:"zone,omitempty"` // the zone killed, with --kill-zone
	// MetaLeader is the meta replica killed, with --kill-meta-leader.
	MetaLeader string        `json:"meta_leader,omitempty"`
	KilledAt   time.Duration `json:"-"`
	Killed     float64       `json:"killed_t"`
	// Down and Out are when each victim was first seen in that state
	// (seconds since the drill began).
	Down map[string]float64 `json:"down_t,omitempty"`
	Out  map[string]float64 `json:"out_t,omitempty"`
	// WorstSpare is the fewest spare shards any object had in this round
	// (m: redundancy never dropped in a sample), and WorstSpareObjects how
	// many objects were at it.
	WorstSpare        int   `json:"worst_spare"`
	WorstSpareObjects int64 `json:"worst_spare_objects"`
	Repaired          bool  `json:"repaired"`
	// TimeToRepair runs from the kill to every object back at full
	// redundancy; FromOut from the last victim going out to the same.
	TimeToRepair  float64 `json:"time_to_repair_s,omitempty"`
	FromOut       float64 `json:"repair_after_out_s,omitempty"`
	BytesRepaired int64   `json:"bytes_repaired"`
	ShardsRepair  int64   `json:"shards_repaired"`
}

// Tracker follows a drill's rounds through status samples.
type Tracker struct {
	full int // spare shards of a whole object: m
	tl   *Timeline

	rounds    []*RoundResult
	lastSpare map[int]int64
	lastQueue int64
	lastBytes int64
	lastShard int64
	sampled   bool
	base      struct{ bytes, shards int64 } // counters when the current round began
}

// NewTracker follows a cluster whose whole objects have m spare shards,
// adding events to tl.
func NewTracker(m int, tl *Timeline) *Tracker {
	return &Tracker{full: m, tl: tl}
}

// Killed starts a round: victims were killed at at (nodes; metaLeader is
// the replica killed with them, "" none).
func (t *Tracker) Killed(at time.Duration, victims []Candidate, zone, metaLeader string) {
	r := &RoundResult{Round: len(t.rounds) + 1, Victims: slices.Clone(victims), Zone: zone, MetaLeader: metaLeader,
		KilledAt: at, Killed: at.Seconds(), Down: map[string]float64{}, Out: map[string]float64{}, WorstSpare: t.full}
	t.rounds = append(t.rounds, r)
	t.base.bytes, t.base.shards = t.lastBytes, t.lastShard
	for _, v := range victims {
		t.tl.Add(Event{At: at, Round: r.Round, Kind: KindKill, Target: v.ID, PID: v.PID, Detail: "SIGKILL node " + v.ID + zoneNote(v.Zone)})
	}
}

func zoneNote(z string) string {
	if z == "" {
		return ""
	}
	return " (zone " + z + ")"
}

// current is the round in progress, nil before the first kill.
func (t *Tracker) current() *RoundResult {
	if len(t.rounds) == 0 {
		return nil
	}
	return t.rounds[len(t.rounds)-1]
}

// Observe takes one status sample (samples come in time order) and adds
// the events it shows.
func (t *Tracker) Observe(s Sample) {
	r := t.current()
	round := 0
	if r != nil {
		round = r.Round
	}
	if !t.sampled || !maps.Equal(nonZero(s.Spare), nonZero(t.lastSpare)) {
		t.tl.Add(Event{At: s.At, Round: round, Kind: KindHealth, Spare: nonZero(s.Spare),
			Detail: fmt.Sprintf("%d objects by spare shards: %s; repair queue %d", s.Objects, FormatSpare(s.Spare, t.full), s.RepairQueue)})
	}
	t.sampled = true
	t.lastSpare = nonZero(s.Spare)
	t.lastQueue = s.RepairQueue
	t.lastBytes, t.lastShard = s.BytesRepaired, s.ShardsRepaired
	if r == nil || r.Repaired {
		return
	}
	for _, v := range r.Victims {
		st := s.Nodes[v.ID]
		if _, seen := r.Down[v.ID]; !seen && (st == "down" || st == "out") {
			r.Down[v.ID] = s.At.Seconds()
			t.tl.Add(Event{At: s.At, Round: round, Kind: KindDown, Target: v.ID, Detail: fmt.Sprintf("%s seen %s %.1fs after the kill", v.ID, st, (s.At - r.KilledAt).Seconds())})
		}
		if _, seen := r.Out[v.ID]; !seen && st == "out" {
			r.Out[v.ID] = s.At.Seconds()
			t.tl.Add(Event{At: s.At, Round: round, Kind: KindOut, Target: v.ID, Detail: fmt.Sprintf("%s out %.1fs after the kill: its shards are re-created elsewhere", v.ID, (s.At - r.KilledAt).Seconds())})
		}
	}
	if worst, n, ok := worstSpare(s.Spare); ok && worst < r.WorstSpare {
		r.WorstSpare, r.WorstSpareObjects = worst, n
	} else if ok && worst == r.WorstSpare && n > r.WorstSpareObjects && worst < t.full {
		r.WorstSpareObjects = n
	}
	r.BytesRepaired = s.BytesRepaired - t.base.bytes
	r.ShardsRepair = s.ShardsRepaired - t.base.shards
	if len(r.Out) < len(r.Victims) || !Whole(s.Spare, t.full) || s.RepairQueue != 0 {
		return
	}
	r.Repaired = true
	r.TimeToRepair = (s.At - r.KilledAt).Seconds()
	last := r.Killed
	for _, o := range r.Out {
		last = max(last, o)
	}
	r.FromOut = s.At.Seconds() - last
	detail := fmt.Sprintf("every object back at full redundancy %.1fs after the kill (%.1fs after the last victim went out); %d shards, %s re-created",
		r.TimeToRepair, r.FromOut, r.ShardsRepair, HumanBytes(r.BytesRepaired))
	if len(r.Victims) == 0 {
		detail = fmt.Sprintf("meta answers again %.1fs after the kill, every object at full redundancy", r.TimeToRepair)
	}
	t.tl.Add(Event{At: s.At, Round: round, Kind: KindRepaired, Detail: detail})
}

// Repaired reports whether the current round is over: every victim out and
// every object whole again. True before the first kill.
func (t *Tracker) Repaired() bool {
	r := t.current()
	return r == nil || r.Repaired
}

// Waiting says what the current round still waits for ("" when repaired).
func (t *Tracker) Waiting() string {
	r := t.current()
	if r == nil || r.Repaired {
		return ""
	}
	var notOut []string
	for _, v := range r.Victims {
		if _, ok := r.Out[v.ID]; !ok {
			notOut = append(notOut, v.ID)
		}
	}
	if len(notOut) > 0 {
		return "victims not yet out: " + strings.Join(notOut, ", ")
	}
	var below int64
	for sp, n := range t.lastSpare {
		if sp < t.full {
			below += n
		}
	}
	return fmt.Sprintf("repair under way: %d objects below full redundancy, repair queue %d", below, t.lastQueue)
}

// Rounds returns the rounds so far.
func (t *Tracker) Rounds() []RoundResult {
	out := make([]RoundResult, len(t.rounds))
	for i, r := range t.rounds {
		out[i] = *r
	}
	return out
}

// Whole reports whether every object in spare has full spare shards.
func Whole(spare map[int]int64, full int) bool {
	for s, n := range spare {
		if n > 0 && s < full {
			return false
		}
	}
	return true
}

func worstSpare(spare map[int]int64) (int, int64, bool) {
	worst, found := 0, false
	for s, n := range spare {
		if n > 0 && (!found || s < worst) {
			worst, found = s, true
		}
	}
	return worst, spare[worst], found
}

func nonZero(m map[int]int64) map[int]int64 {
	out := map[int]int64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// FormatSpare formats a histogram of objects by spare shards, best first:
// "2:40 1:12 0:8" with "lost" for negative levels.
func FormatSpare(spare map[int]int64, full int) string {
	var ks []int
	for k, v := range spare {
		if v != 0 {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return "(none)"
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ks)))
	parts := make([]string, len(ks))
	for i, k := range ks {
		label := fmt.Sprintf("%d", k)
		switch {
		case k == full:
			label += "(whole)"
		case k < 0:
			label += "(unreadable)"
		}
		parts[i] = fmt.Sprintf("%s=%d", label, spare[k])
	}
	return strings.Join(parts, " ")
}

// HumanBytes formats n bytes with binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
