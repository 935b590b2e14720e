package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/internal/drill"
)

// The drill tests run `shale chaos` (issue 14, "shale chaos tested")
// against real dev clusters with short failure detection, and check its
// report: verdict, rounds and timeline.

// drillRun is one `shale chaos` run: its exit status, report and output.
type drillRun struct {
	exit           int
	report         drill.Report // when it printed one (--json)
	stdout, stderr string
	took           time.Duration
}

// runDrill runs `shale chaos ARGS` bounded by limit (a drill that outlives
// it is a hang: the test fails) with no S3 keys in the environment.
func runDrill(t *testing.T, limit time.Duration, args ...string) drillRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, shaleBin, append([]string{"chaos"}, args...)...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AWS_") && !strings.HasPrefix(e, "SHALE_") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := drillRun{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("shale chaos %s did not end within %v (a hang)\nstderr:\n%s", strings.Join(args, " "), limit, r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("shale chaos: %v", err)
	}
	if slices.Contains(args, "--json") && r.stdout != "" {
		if err := json.Unmarshal(stdout.Bytes(), &r.report); err != nil {
			t.Fatalf("shale chaos --json: %v\n%s", err, r.stdout)
		}
	}
	return r
}

// logReport logs the report as the drill prints it for a person.
func logReport(t *testing.T, r drill.Report) {
	t.Helper()
	var b strings.Builder
	_ = r.WriteText(&b)
	t.Logf("shale chaos report:\n%s", b.String())
}

// checkRoundsRepaired checks that every round's victims were killed, seen
// down, then out, and that the round was repaired after that, in the
// timeline's order.
func checkRoundsRepaired(t *testing.T, r drill.Report) {
	t.Helper()
	at := map[string]float64{} // kind/round/target → first time
	for i, e := range r.Events {
		if i > 0 && e.T < r.Events[i-1].T {
			t.Errorf("timeline out of order at %d: %v after %v", i, e.T, r.Events[i-1].T)
		}
		k := e.Kind + "/" + string(rune('0'+e.Round)) + "/" + e.Target
		if _, ok := at[k]; !ok {
			at[k] = e.T
		}
	}
	for _, rd := range r.Rounds {
		if !rd.Repaired || rd.TimeToRepair <= 0 {
			t.Errorf("round %d not repaired: %+v", rd.Round, rd)
		}
		rep, ok := at[drill.KindRepaired+"/"+string(rune('0'+rd.Round))+"/"]
		if !ok {
			t.Errorf("round %d: no repaired event in the timeline", rd.Round)
		}
		for _, v := range rd.Victims {
			kill, okK := at[drill.KindKill+"/"+string(rune('0'+rd.Round))+"/"+v.ID]
			down, okD := at[drill.KindDown+"/"+string(rune('0'+rd.Round))+"/"+v.ID]
			out, okO := at[drill.KindOut+"/"+string(rune('0'+rd.Round))+"/"+v.ID]
			if !okK || !okD || !okO || !(kill <= down && down <= out && out <= rep) {
				t.Errorf("round %d, %s: kill %v (%v) ≤ down %v (%v) ≤ out %v (%v) ≤ repaired %v does not hold",
					rd.Round, v.ID, kill, okK, down, okD, out, okO, rep)
			}
			if alive(v.PID) {
				t.Errorf("round %d: victim %s (pid %d) is still running", rd.Round, v.ID, v.PID)
			}
		}
	}
}

// checkBucketGone checks that the drill removed its bucket.
func checkBucketGone(t *testing.T, c *Cluster, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err == nil {
		t.Errorf("the drill's bucket %s is still there (no --keep)", bucket)
	}
}

// TestDrillKillNodesTwoRounds: 4+2 on 10 nodes, `shale chaos --kill-nodes 2
// --rounds 2`: two nodes die while the verification set is being written,
// repair restores k+m, two more die: nothing is lost, nothing reads wrong,
// and the timeline shows each victim killed, down, out, then the repair.
func TestDrillKillNodesTwoRounds(t *testing.T) {
	c := startDev(t, opts{nodes: 10, zones: 3, downAfter: time.Second, outAfter: 3 * time.Second})
	r := runDrill(t, 3*time.Minute, "--data", c.Data, "--kill-nodes", "2", "--rounds", "2",
		"--objects", "60", "--multipart", "1", "--max-size", "256KiB", "--timeout", "2m", "--seed", "14", "--json")
	logReport(t, r.report)
	if r.exit != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", r.exit, r.stderr)
	}
	v := r.report.Verdict
	if v.Outcome != drill.OutcomePass || v.Lost != 0 || v.Wrong != 0 || !v.RepairFinished || v.Objects == 0 {
		t.Fatalf("verdict %+v", v)
	}
	if v.Objects+v.PutsFailed != 60 {
		t.Errorf("%d acknowledged + %d failed PUTs, want 60 in all", v.Objects, v.PutsFailed)
	}
	if len(r.report.Rounds) != 2 {
		t.Fatalf("%d rounds, want 2", len(r.report.Rounds))
	}
	seen := map[string]bool{}
	for _, rd := range r.report.Rounds {
		if len(rd.Victims) != 2 {
			t.Errorf("round %d killed %d nodes, want 2", rd.Round, len(rd.Victims))
		}
		for _, vi := range rd.Victims {
			if seen[vi.ID] {
				t.Errorf("%s killed twice", vi.ID)
			}
			seen[vi.ID] = true
			if c.node(t, vi.ID).PID != vi.PID {
				t.Errorf("%s: killed pid %d, cluster.json has %d", vi.ID, vi.PID, c.node(t, vi.ID).PID)
			}
		}
		if rd.WorstSpare >= c.File.M {
			t.Errorf("round %d: redundancy never seen lower (worst %d spare shards): did the kill land?", rd.Round, rd.WorstSpare)
		}
	}
	checkRoundsRepaired(t, r.report)
	// Round 1's kill landed during the writes.
	var kill1, writesDone float64 = -1, -1
	for _, e := range r.report.Events {
		if e.Kind == drill.KindKill && e.Round == 1 && kill1 < 0 {
			kill1 = e.T
		}
		if e.Kind == drill.KindWrite && strings.HasPrefix(e.Detail, "writes done") {
			writesDone = e.T
		}
	}
	if kill1 < 0 || writesDone < 0 || kill1 >= writesDone {
		t.Errorf("round 1's kill at %v, writes done at %v: the kill did not land during the writes", kill1, writesDone)
	}
	checkBucketGone(t, c, r.report.Bucket)
}

// TestDrillKillZone: a whole zone of a 4+2 cluster over 3 zones (9 nodes,
// so 6 remain and repair can re-place every shard): 0 lost.
func TestDrillKillZone(t *testing.T) {
	c := startDev(t, opts{nodes: 9, zones: 3, downAfter: time.Second, outAfter: 3 * time.Second})
	r := runDrill(t, 3*time.Minute, "--data", c.Data, "--kill-zone",
		"--objects", "50", "--multipart", "1", "--max-size", "256KiB", "--timeout", "2m", "--json")
	logReport(t, r.report)
	if r.exit != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", r.exit, r.stderr)
	}
	v := r.report.Verdict
	if v.Outcome != drill.OutcomePass || v.Lost != 0 || v.Wrong != 0 || v.Objects == 0 {
		t.Fatalf("verdict %+v", v)
	}
	if len(r.report.Rounds) != 1 {
		t.Fatalf("%d rounds, want 1", len(r.report.Rounds))
	}
	rd := r.report.Rounds[0]
	var inZone []string
	for _, n := range c.File.Nodes {
		if n.Zone == rd.Zone {
			inZone = append(inZone, n.ID)
		}
	}
	var killed []string
	for _, vi := range rd.Victims {
		killed = append(killed, vi.ID)
	}
	slices.Sort(killed)
	slices.Sort(inZone)
	if rd.Zone == "" || !slices.Equal(killed, inZone) || len(killed) != 3 {
		t.Fatalf("killed %v of zone %q, whose nodes are %v", killed, rd.Zone, inZone)
	}
	checkRoundsRepaired(t, r.report)
	checkBucketGone(t, c, r.report.Bucket)
}

// TestDrillKillMetaLeader: --kill-meta-leader with --kill-nodes 1 kills the
// meta replica that leads along with a node, during the writes: another
// replica is seen leading, repair still finishes, nothing is lost.
func TestDrillKillMetaLeader(t *testing.T) {
	c := startDev(t, opts{nodes: 7, zones: 3, downAfter: time.Second, outAfter: 3 * time.Second})
	lead := c.MetaLeader(t, 30*time.Second)
	r := runDrill(t, 3*time.Minute, "--data", c.Data, "--kill-nodes", "1", "--kill-meta-leader",
		"--objects", "40", "--multipart", "0", "--max-size", "256KiB", "--timeout", "2m", "--json")
	logReport(t, r.report)
	if r.exit != 0 {
		t.Fatalf("exit %d, want 0\nstderr:\n%s", r.exit, r.stderr)
	}
	if v := r.report.Verdict; v.Outcome != drill.OutcomePass || v.Lost != 0 || v.Wrong != 0 || v.Objects == 0 {
		t.Fatalf("verdict %+v", v)
	}
	if len(r.report.Rounds) != 1 || r.report.Rounds[0].MetaLeader != lead.ID {
		t.Fatalf("rounds %+v: want one that killed the leader %s", r.report.Rounds, lead.ID)
	}
	var next string
	for _, e := range r.report.Events {
		if e.Kind == drill.KindLeader {
			next = e.Target
		}
	}
	if next == "" || next == lead.ID {
		t.Fatalf("timeline names %q as the new leader after %s was killed", next, lead.ID)
	}
	if alive(lead.PID) {
		t.Errorf("meta leader %s (pid %d) still runs", lead.ID, lead.PID)
	}
	checkRoundsRepaired(t, r.report)
	checkBucketGone(t, c, r.report.Bucket)
}

// TestDrillRepairDoesNotFinish: a cluster whose --out-after is longer than
// the drill's --timeout never re-creates the victim's shards in time; the
// drill must end within its bound with the verdict "repair did not
// finish" and exit 3, not hang. Before it, plans and targets the drill must
// refuse are refused, killing nothing.
func TestDrillRepairDoesNotFinish(t *testing.T) {
	c := startDev(t, opts{nodes: 7, zones: 3, downAfter: time.Second, outAfter: 10 * time.Minute})
	pids := func() []bool {
		var out []bool
		for _, n := range c.File.Nodes {
			out = append(out, alive(n.PID))
		}
		return out
	}
	before := pids()

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"more than m", []string{"--data", c.Data, "--kill-nodes", "3"}, "would lose data"},
			{"no cluster file", []string{"--data", t.TempDir(), "--kill-nodes", "1"}, "no cluster file"},
			{"no credentials", []string{"--cluster-file", noCredsFile(t, c), "--kill-nodes", "1"}, "no credentials"},
			{"nothing to kill", []string{"--data", c.Data}, "nothing to kill"},
		} {
			r := runDrill(t, time.Minute, tc.args...)
			if r.exit != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s: exit %d, stderr %q; want exit 1 and %q", tc.name, r.exit, r.stderr, tc.want)
			}
		}
		if got := pids(); !slices.Equal(got, before) {
			t.Fatalf("a refused drill killed something: alive before %v, after %v", before, got)
		}
		// --force runs the plan the first refusal stopped: it is the
		// refusal, not an inability, that stopped it. (Not run here: it
		// would kill three nodes.)
	})

	const timeout = 20 * time.Second
	r := runDrill(t, timeout+time.Minute, "--data", c.Data, "--kill-nodes", "1",
		"--objects", "30", "--multipart", "0", "--max-size", "128KiB", "--timeout", timeout.String(), "--json")
	logReport(t, r.report)
	if r.exit != drill.ExitUnfinished {
		t.Fatalf("exit %d, want %d (repair did not finish)\nstderr:\n%s", r.exit, drill.ExitUnfinished, r.stderr)
	}
	v := r.report.Verdict
	if v.Outcome != drill.OutcomeUnfinished || v.RepairFinished || v.Lost != 0 || v.Wrong != 0 {
		t.Fatalf("verdict %+v", v)
	}
	if !strings.Contains(r.stderr, "repair did not finish") || !strings.Contains(v.Unfinished, "not yet out") {
		t.Errorf("stderr %q, unfinished %q: want a clear 'repair did not finish' naming the victim not yet out", r.stderr, v.Unfinished)
	}
	if r.report.Elapsed > timeout.Seconds()+1 {
		t.Errorf("the drill took %.1fs, more than its --timeout %v", r.report.Elapsed, timeout)
	}
	timedOut := false
	for _, e := range r.report.Events {
		timedOut = timedOut || e.Kind == drill.KindTimeout
	}
	if !timedOut {
		t.Error("no timeout event in the timeline")
	}
	checkBucketGone(t, c, r.report.Bucket)
}

// noCredsFile writes a copy of the cluster's file without its credentials
// file and returns its path.
func noCredsFile(t *testing.T, c *Cluster) string {
	t.Helper()
	f := c.File
	f.Credentials = ""
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
