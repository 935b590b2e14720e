package drill

import (
	"fmt"
	"io"
	"strings"
)

// Outcomes of a drill, worst first.
const (
	OutcomeLost       = "data lost"             // an object did not read back at the end
	OutcomeWrong      = "wrong bytes"           // a read returned bytes that differ from what was written
	OutcomeUnfinished = "repair did not finish" // time ran out before every object was whole again
	OutcomePass       = "pass"                  // nothing lost, nothing wrong, repair finished
)

// Exit statuses of `shale chaos` by outcome (1 is any other error: a
// refused plan, a cluster that cannot be reached).
const (
	ExitPass       = 0
	ExitDataLoss   = 2 // lost or wrong
	ExitUnfinished = 3
)

// Counts are what a drill's reads and waits found.
type Counts struct {
	// Objects is the verification set: objects whose PUT was acknowledged.
	Objects int `json:"objects"`
	// PutsFailed are PUTs that were not acknowledged (not in the set).
	PutsFailed int `json:"puts_failed"`
	// Lost: objects that did not read back in the final read-back (after
	// retries). Wrong: objects that read back with bytes that differ, in any
	// read. Failed: reads during a degraded window that failed even after
	// retries (the object may have read back later).
	Lost   int `json:"lost"`
	Wrong  int `json:"wrong"`
	Failed int `json:"reads_failed"`
	// Reads is the number of object reads done, all read-backs together.
	Reads int `json:"reads"`
	// RepairFinished: every round was seen repaired before the time ran out.
	RepairFinished bool `json:"repair_finished"`
	// Unfinished says what the round that did not finish was waiting for.
	Unfinished string `json:"unfinished,omitempty"`
}

// Verdict is the drill's outcome.
type Verdict struct {
	Counts
	Outcome string `json:"outcome"`
	Exit    int    `json:"exit"`
	Summary string `json:"summary"`
}

// Decide turns counts into a verdict: losing or corrupting data is worst
// (exit 2), then a repair that did not finish in time (exit 3); reads that
// failed in a degraded window but whose objects read back whole later are
// reported without failing the drill.
func Decide(c Counts) Verdict {
	v := Verdict{Counts: c, Outcome: OutcomePass, Exit: ExitPass}
	switch {
	case c.Lost > 0:
		v.Outcome, v.Exit = OutcomeLost, ExitDataLoss
	case c.Wrong > 0:
		v.Outcome, v.Exit = OutcomeWrong, ExitDataLoss
	case !c.RepairFinished:
		v.Outcome, v.Exit = OutcomeUnfinished, ExitUnfinished
	}
	s := fmt.Sprintf("%s: %d objects, %d lost, %d reads wrong, %d reads failed", strings.ToUpper(v.Outcome), c.Objects, c.Lost, c.Wrong, c.Failed)
	if c.PutsFailed > 0 {
		s += fmt.Sprintf(" (%d PUTs not acknowledged, not in the set)", c.PutsFailed)
	}
	if !c.RepairFinished {
		s += "; repair did not finish in time"
		if c.Unfinished != "" {
			s += ": " + c.Unfinished
		}
	}
	v.Summary = s
	return v
}

// Report is the whole drill: `shale chaos --json` prints it.
type Report struct {
	Seed    uint64        `json:"seed"`
	K       int           `json:"k"`
	M       int           `json:"m"`
	Nodes   int           `json:"nodes"`
	Zones   int           `json:"zones"`
	Bucket  string        `json:"bucket"`
	Kept    bool          `json:"kept"`  // --keep, or a cleanup that failed (a note event says why)
	Bytes   int64         `json:"bytes"` // of the verification set (acknowledged objects)
	Elapsed float64       `json:"elapsed_s"`
	Events  []Event       `json:"timeline"`
	Rounds  []RoundResult `json:"rounds"`
	Verdict Verdict       `json:"verdict"`
}

// WriteText writes the report for a person: the timeline, one line per
// round, and the verdict last.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "shale chaos: seed %d, %d+%d, %d nodes in %d zones, bucket %s\n\ntimeline:\n", r.Seed, r.K, r.M, r.Nodes, r.Zones, r.Bucket)
	for _, e := range r.Events {
		round := "  "
		if e.Round > 0 {
			round = fmt.Sprintf("r%d", e.Round)
		}
		fmt.Fprintf(&b, "  t+%7.1fs  %s  %-8s  %s", e.T, round, e.Kind, e.Detail)
		if e.Kind == KindKill && e.PID > 0 {
			fmt.Fprintf(&b, ", pid %d", e.PID)
		}
		b.WriteByte('\n')
	}
	if len(r.Rounds) > 0 {
		b.WriteString("\nrounds:\n")
	}
	for _, rd := range r.Rounds {
		var ids []string
		for _, v := range rd.Victims {
			ids = append(ids, v.ID)
		}
		if rd.MetaLeader != "" {
			ids = append(ids, "meta "+rd.MetaLeader)
		}
		what := strings.Join(ids, ", ")
		if rd.Zone != "" {
			what = "zone " + rd.Zone + ": " + what
		}
		fmt.Fprintf(&b, "  round %d: killed %s; ", rd.Round, what)
		if rd.WorstSpareObjects > 0 {
			fmt.Fprintf(&b, "worst %d spare shards (%d objects); ", rd.WorstSpare, rd.WorstSpareObjects)
		} else {
			b.WriteString("redundancy never seen lower; ")
		}
		if rd.Repaired {
			fmt.Fprintf(&b, "time-to-repair %.1fs (%.1fs after out); %s in %d shards re-created\n", rd.TimeToRepair, rd.FromOut, HumanBytes(rd.BytesRepaired), rd.ShardsRepair)
		} else {
			fmt.Fprintf(&b, "NOT repaired; %s in %d shards re-created so far\n", HumanBytes(rd.BytesRepaired), rd.ShardsRepair)
		}
	}
	kept := "removed"
	if r.Kept {
		kept = "kept"
	}
	fmt.Fprintf(&b, "\n%d objects, %s written; bucket %s %s; %.1fs in all\nverdict: %s\n", r.Verdict.Objects, HumanBytes(r.Bytes), r.Bucket, kept, r.Elapsed, r.Verdict.Summary)
	_, err := io.WriteString(w, b.String())
	return err
}
