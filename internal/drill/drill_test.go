package drill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func tenNodes() []Candidate {
	var out []Candidate
	zones := []string{"a", "b", "c"}
	for i := range 10 {
		id := "node-" + string(rune('0'+i))
		out = append(out, Candidate{ID: id, Zone: zones[i%3], PID: 100 + i, Marker: "/d/" + id, Alive: true})
	}
	return out
}

func ids(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestChooseNodesDeterministic(t *testing.T) {
	cands := tenNodes()
	for seed := range uint64(50) {
		a, err := ChooseNodes(RNG(seed, 1), cands, 3)
		if err != nil {
			t.Fatal(err)
		}
		// Same seed and round, candidates listed in another order: same choice.
		rev := slices.Clone(cands)
		slices.Reverse(rev)
		b, err := ChooseNodes(RNG(seed, 1), rev, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(a), ids(b)) {
			t.Fatalf("seed %d: %v, then %v with the candidates reversed", seed, ids(a), ids(b))
		}
		seen := map[string]bool{}
		for _, c := range a {
			if seen[c.ID] {
				t.Fatalf("seed %d: %s chosen twice: %v", seed, c.ID, ids(a))
			}
			seen[c.ID] = true
		}
	}
	// Different seeds do not all give the same choice.
	first, _ := ChooseNodes(RNG(1, 1), cands, 3)
	differ := false
	for seed := uint64(2); seed < 20; seed++ {
		c, _ := ChooseNodes(RNG(seed, 1), cands, 3)
		differ = differ || !slices.Equal(ids(c), ids(first))
	}
	if !differ {
		t.Fatal("19 seeds all chose the same victims")
	}
}

func TestChooseNeverDeadOrForeign(t *testing.T) {
	cands := tenNodes()
	// node-0..node-3 dead or not ours (Alive false), node-4 without a pid.
	for i := range 4 {
		cands[i].Alive = false
	}
	cands[4].PID = 0
	ok := map[string]bool{}
	for _, c := range cands[5:] {
		ok[c.ID] = true
	}
	for seed := range uint64(200) {
		got, err := ChooseNodes(RNG(seed, 2), cands, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range got {
			if !ok[c.ID] {
				t.Fatalf("seed %d chose %s (alive=%v pid=%d)", seed, c.ID, c.Alive, c.PID)
			}
		}
		z, zs, err := ChooseZone(RNG(seed, 2), cands)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range zs {
			if !ok[c.ID] || c.Zone != z {
				t.Fatalf("seed %d zone %s chose %s (zone %s)", seed, z, c.ID, c.Zone)
			}
		}
	}
	if _, err := ChooseNodes(RNG(1, 1), cands, 6); !errors.Is(err, ErrTooFewVictims) {
		t.Fatalf("6 of 5 alive: %v, want ErrTooFewVictims", err)
	}
}

func TestChooseZoneAll(t *testing.T) {
	cands := tenNodes()
	z, got, err := ChooseZone(RNG(7, 1), cands)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, c := range cands {
		if c.Zone == z {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("zone %s: chose %v, want all %d of its nodes", z, ids(got), want)
	}
}

func TestIsClusterProcess(t *testing.T) {
	fsys := fstest.MapFS{
		"10/stat":    {Data: []byte("10 (shale) S 1 ...")},
		"10/cmdline": {Data: []byte("/usr/bin/shale\x00node\x00--data\x00/d/node-1\x00--listen\x00:0\x00")},
		"11/stat":    {Data: []byte("11 (sleep) S 1 ...")},
		"11/cmdline": {Data: []byte("sleep\x00/d/node-1\x00")},
		"12/stat":    {Data: []byte("12 (shale) Z 1 ...")},
		"12/cmdline": {Data: []byte("/usr/bin/shale\x00node\x00--data\x00/d/node-1\x00")},
		"13/stat":    {Data: []byte("13 (my shale) S 1 ...")},
		"13/cmdline": {Data: []byte("/tmp/x/shale-test\x00node\x00--data=/d/node-1\x00")},
	}
	for _, tc := range []struct {
		pid    int
		marker string
		exe    string
		want   bool
	}{
		{10, "/d/node-1", "", true},
		{10, "/d/node-10", "", false}, // another node of the same cluster
		{10, "/d/node-", "", false},   // a prefix is not the data dir
		{11, "/d/node-1", "", false},  // not shale: a recycled pid
		{12, "/d/node-1", "", false},  // zombie
		{13, "/d/node-1", "", false},  // another binary name
		{13, "/d/node-1", "shale-test", true},
		{14, "/d/node-1", "", false}, // gone
		{0, "/d/node-1", "", false},
		{10, "", "", false},
	} {
		if got := IsClusterProcess(fsys, tc.pid, tc.marker, tc.exe); got != tc.want {
			t.Errorf("pid %d marker %q exe %q: %v, want %v", tc.pid, tc.marker, tc.exe, got, tc.want)
		}
	}
}

func TestPlanCheck(t *testing.T) {
	nodes := tenNodes()
	nine := nodes[:9]
	for _, tc := range []struct {
		name string
		p    Plan
		want error // nil: accepted
		any  bool  // any error
	}{
		{"2 of 4+2 twice on 10", Plan{K: 4, M: 2, Nodes: nodes, KillNodes: 2, Rounds: 2}, nil, false},
		{"3 of 4+2", Plan{K: 4, M: 2, Nodes: nodes, KillNodes: 3, Rounds: 1}, ErrWouldLoseData, false},
		{"3 of 4+2 forced", Plan{K: 4, M: 2, Nodes: nodes, KillNodes: 3, Rounds: 1, Force: true}, nil, false},
		{"2 rounds leave fewer than k+m", Plan{K: 4, M: 2, Nodes: nine, KillNodes: 2, Rounds: 2}, ErrWouldLoseData, false},
		{"more victims than nodes, even forced", Plan{K: 4, M: 2, Nodes: nodes, KillNodes: 4, Rounds: 3, Force: true}, ErrTooFewVictims, false},
		{"zone of 3 zones, 4+2", Plan{K: 4, M: 2, Nodes: nine, KillZone: true, Rounds: 1}, nil, false},
		{"2 zones of 3, 4+2", Plan{K: 4, M: 2, Nodes: nine, KillZone: true, Rounds: 2}, ErrWouldLoseData, false},
		{"zone of 3 zones, 6+2", Plan{K: 6, M: 2, Nodes: nine, KillZone: true, Rounds: 1}, ErrWouldLoseData, false},
		{"nothing", Plan{K: 4, M: 2, Nodes: nodes, Rounds: 1}, ErrEmptyPlan, false},
		{"meta leader of 3", Plan{K: 4, M: 2, Nodes: nodes, Metas: metas(3, 3), KillMetaLeader: true, Rounds: 1}, nil, false},
		{"meta leader of 3 twice", Plan{K: 4, M: 2, Nodes: nodes, Metas: metas(3, 3), KillMetaLeader: true, Rounds: 2}, ErrWouldLoseData, false},
		{"meta leader of 3, one already dead", Plan{K: 4, M: 2, Nodes: nodes, Metas: metas(3, 2), KillMetaLeader: true, Rounds: 1}, ErrWouldLoseData, false},
		{"meta leader of 5 twice", Plan{K: 4, M: 2, Nodes: nodes, Metas: metas(5, 5), KillMetaLeader: true, Rounds: 2}, nil, false},
		{"nodes and zone", Plan{K: 4, M: 2, Nodes: nodes, KillNodes: 1, KillZone: true, Rounds: 1}, nil, true},
	} {
		err := tc.p.Check()
		switch {
		case tc.any && err == nil:
			t.Errorf("%s: accepted, want an error", tc.name)
		case tc.any:
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// metas returns n meta replicas, the first alive of them alive.
func metas(n, alive int) []Candidate {
	var out []Candidate
	for i := range n {
		out = append(out, Candidate{ID: fmt.Sprintf("meta-%d", i), PID: 200 + i, Alive: i < alive})
	}
	return out
}

func sample(at time.Duration, states map[string]string, spare map[int]int64, queue, bytes int64) Sample {
	var n int64
	for _, v := range spare {
		n += v
	}
	return Sample{At: at, Nodes: states, Spare: spare, Objects: n, RepairQueue: queue, BytesRepaired: bytes, ShardsRepaired: bytes / 100}
}

func TestTrackerRound(t *testing.T) {
	var tl Timeline
	tr := NewTracker(2, &tl)
	s := time.Second
	up := map[string]string{"n1": "up", "n2": "up", "n3": "up"}
	tr.Observe(sample(0, up, map[int]int64{2: 10}, 0, 1000))
	victims := []Candidate{{ID: "n1", PID: 11}, {ID: "n2", PID: 12}}
	tr.Killed(1*s, victims, "", "")
	if tr.Repaired() {
		t.Fatal("repaired at the kill")
	}
	// Before meta notices: everything still whole, queue empty — not repaired.
	tr.Observe(sample(1500*time.Millisecond, up, map[int]int64{2: 10}, 0, 1000))
	if tr.Repaired() {
		t.Fatal("repaired before the victims were seen out")
	}
	tr.Observe(sample(2*s, map[string]string{"n1": "down", "n2": "up", "n3": "up"}, map[int]int64{2: 4, 1: 6}, 0, 1000))
	tr.Observe(sample(3*s, map[string]string{"n1": "down", "n2": "down", "n3": "up"}, map[int]int64{2: 2, 1: 4, 0: 4}, 0, 1000))
	tr.Observe(sample(5*s, map[string]string{"n1": "out", "n2": "out", "n3": "up"}, map[int]int64{2: 2, 1: 4, 0: 4}, 8, 1000))
	// Whole again but the queue is not empty: not repaired.
	tr.Observe(sample(6*s, map[string]string{"n1": "out", "n2": "out", "n3": "up"}, map[int]int64{2: 10}, 1, 1800))
	if tr.Repaired() {
		t.Fatal("repaired with a non-empty repair queue")
	}
	if w := tr.Waiting(); !strings.Contains(w, "repair queue 1") {
		t.Fatalf("Waiting %q while the repair queue holds 1", w)
	}
	tr.Observe(sample(7*s, map[string]string{"n1": "out", "n2": "out", "n3": "up"}, map[int]int64{2: 10}, 0, 2000))
	if !tr.Repaired() {
		t.Fatalf("not repaired: %s", tr.Waiting())
	}
	r := tr.Rounds()[0]
	if r.Down["n1"] != 2 || r.Down["n2"] != 3 || r.Out["n1"] != 5 {
		t.Errorf("down %v out %v", r.Down, r.Out)
	}
	if r.WorstSpare != 0 || r.WorstSpareObjects != 4 {
		t.Errorf("worst %d spare (%d objects), want 0 (4)", r.WorstSpare, r.WorstSpareObjects)
	}
	if r.TimeToRepair != 6 || r.FromOut != 2 || r.BytesRepaired != 1000 {
		t.Errorf("ttr %v from out %v bytes %d, want 6, 2, 1000", r.TimeToRepair, r.FromOut, r.BytesRepaired)
	}
	// Later samples change nothing in a repaired round.
	tr.Observe(sample(9*s, map[string]string{"n1": "up", "n2": "out", "n3": "up"}, map[int]int64{2: 10}, 0, 5000))
	if got := tr.Rounds()[0]; got.BytesRepaired != 1000 {
		t.Errorf("a sample after the repair changed the round: %d bytes", got.BytesRepaired)
	}

	// The timeline: kills, down, out, health changes, repaired, in time order.
	var kinds []string
	var last time.Duration
	for _, e := range tl.Events() {
		if e.At < last {
			t.Fatalf("events out of order: %v after %v", e.At, last)
		}
		last = e.At
		if e.Kind != KindHealth {
			kinds = append(kinds, e.Kind+":"+e.Target)
		}
	}
	want := []string{"kill:n1", "kill:n2", "down:n1", "down:n2", "out:n1", "out:n2", "repaired:"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("timeline %v, want %v", kinds, want)
	}
	health := 0
	for _, e := range tl.Events() {
		if e.Kind == KindHealth {
			health++
		}
	}
	if health != 4 { // 0s, 2s, 3s, 6s (whole again); nothing new at 1.5, 5, 7 or 9
		t.Errorf("%d health events, want 4 (one per change)", health)
	}
}

func TestTimelineOrdersByTime(t *testing.T) {
	var tl Timeline
	tl.Add(Event{At: 3 * time.Second, Kind: "c"})
	tl.Add(Event{At: time.Second, Kind: "a"})
	tl.Add(Event{At: 3 * time.Second, Kind: "d"})
	tl.Add(Event{At: 2 * time.Second, Kind: "b"})
	var got []string
	for _, e := range tl.Events() {
		got = append(got, e.Kind)
	}
	if !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("%v", got)
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		c       Counts
		outcome string
		exit    int
	}{
		{Counts{Objects: 10, RepairFinished: true}, OutcomePass, ExitPass},
		{Counts{Objects: 10, Failed: 3, RepairFinished: true}, OutcomePass, ExitPass},
		{Counts{Objects: 10, Lost: 1, RepairFinished: true}, OutcomeLost, ExitDataLoss},
		{Counts{Objects: 10, Wrong: 1, RepairFinished: true}, OutcomeWrong, ExitDataLoss},
		{Counts{Objects: 10, Lost: 1, Wrong: 1}, OutcomeLost, ExitDataLoss},
		{Counts{Objects: 10, Unfinished: "victims not yet out: n1"}, OutcomeUnfinished, ExitUnfinished},
		{Counts{Objects: 10, Wrong: 2}, OutcomeWrong, ExitDataLoss},
	} {
		v := Decide(tc.c)
		if v.Outcome != tc.outcome || v.Exit != tc.exit {
			t.Errorf("%+v: %s (exit %d), want %s (exit %d)", tc.c, v.Outcome, v.Exit, tc.outcome, tc.exit)
		}
		if !tc.c.RepairFinished && !strings.Contains(v.Summary, "repair did not finish") {
			t.Errorf("%+v: summary %q does not say repair did not finish", tc.c, v.Summary)
		}
	}
}

func TestReportText(t *testing.T) {
	var tl Timeline
	tr := NewTracker(2, &tl)
	tr.Killed(time.Second, []Candidate{{ID: "n1", PID: 11, Zone: "z"}}, "", "")
	tr.Observe(sample(2*time.Second, map[string]string{"n1": "out"}, map[int]int64{2: 3}, 0, 0))
	r := Report{Seed: 5, K: 4, M: 2, Nodes: 6, Zones: 3, Bucket: "b", Events: tl.Events(), Rounds: tr.Rounds(),
		Verdict: Decide(Counts{Objects: 3, RepairFinished: true})}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"seed 5", "kill", "SIGKILL node n1 (zone z), pid 11", "out", "repaired", "round 1: killed n1", "verdict: PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"seed", "timeline", "rounds", "verdict"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
}
