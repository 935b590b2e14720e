package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// fakeRepairCluster is a cluster whose nodes fill in proportion to the bytes
// fakeS3 received (node-3 twice as fast as the others) and which, once a
// node is killed and out, heals healPerStatus objects at every Status call.
type fakeRepairCluster struct {
	s3            *fakeS3
	url           string
	healPerStatus int64 // 0: never heals

	mu             sync.Mutex
	events         []string // "kill node-3", "out node-3"
	killed, out    cluster.NodeID
	hit, healed    int64
	frozenUsed     map[cluster.NodeID]int64
	statusAfterOut int
}

const fakeShardBytes = 1000 // re-created bytes per healed object

func (f *fakeRepairCluster) S3() (string, string, string) { return f.url, "AK", "SK" }

func (f *fakeRepairCluster) used(i int) int64 {
	w := int64(1)
	if i == 3 {
		w = 2
	}
	return f.s3.putBytes.Load() * 3 / 2 / 8 * w
}

func (f *fakeRepairCluster) Status(ctx context.Context) (meta.Status, error) {
	if err := ctx.Err(); err != nil {
		return meta.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	objects := int64(f.s3.objectCount())
	st := meta.Status{Objects: objects, ObjectsByHealthyShards: map[int]int64{}}
	for i := 1; i <= 8; i++ {
		id := cluster.NodeID(fmt.Sprintf("node-%d", i))
		n := cluster.Node{ID: id, State: cluster.Up, Used: f.used(i)}
		if f.frozenUsed != nil {
			n.Used = f.frozenUsed[id]
		}
		if id == f.killed && f.out == "" {
			n.State = cluster.Down
		}
		if id == f.out {
			n.State = cluster.Out
		}
		st.Nodes = append(st.Nodes, n)
	}
	st.Repair = &meta.RepairStats{Updated: time.Now()}
	if f.out != "" {
		if f.hit == 0 {
			f.hit = objects * 3 / 4
		}
		if f.statusAfterOut > 0 {
			f.healed = min(f.hit, f.healed+f.healPerStatus)
		}
		f.statusAfterOut++
		st.ObjectsByHealthyShards[5] = f.hit - f.healed
		if f.hit > f.healed {
			st.RepairQueue = 1
		}
		st.Repair.ShardsRepaired = f.healed
		st.Repair.BytesRepaired = f.healed * fakeShardBytes
		st.Repair.RateBytesPerSec = 1e6
		if f.hit == f.healed {
			st.Repair.LastTimeToRepairSeconds = 0.5
		}
	}
	st.ObjectsByHealthyShards[6] = objects - st.ObjectsByHealthyShards[5]
	if st.ObjectsByHealthyShards[5] == 0 {
		delete(st.ObjectsByHealthyShards, 5)
	}
	return st, nil
}

func (f *fakeRepairCluster) Kill(_ context.Context, node cluster.NodeID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "kill "+string(node))
	f.killed = node
	f.frozenUsed = map[cluster.NodeID]int64{}
	for i := 1; i <= 8; i++ {
		f.frozenUsed[cluster.NodeID(fmt.Sprintf("node-%d", i))] = f.used(i)
	}
	return nil
}

func (f *fakeRepairCluster) Out(_ context.Context, node cluster.NodeID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if node != f.killed {
		return fmt.Errorf("out %s, but %s was killed", node, f.killed)
	}
	f.events = append(f.events, "out "+string(node))
	f.out = node
	return nil
}

func newFakeRepair(t *testing.T, heal int64) *fakeRepairCluster {
	t.Helper()
	fs := newFakeS3()
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return &fakeRepairCluster{s3: fs, url: srv.URL, healPerStatus: heal}
}

func smallRepairConfig() RepairConfig {
	return RepairConfig{
		Exe: "unused", Dir: "unused",
		Fill: 256 << 10, ObjectSize: 64 << 10, FillConcurrency: 2,
		FGSize: 4 << 10, FGConcurrency: 2, FGDuration: 150 * time.Millisecond, FGKeys: 4,
		Poll: 10 * time.Millisecond, Timeout: 30 * time.Second,
	}
}

func TestRunRepairFake(t *testing.T) {
	f := newFakeRepair(t, 7)
	cfg, err := smallRepairConfig().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	var maxHealed, hit int64
	cfg.Progress = func(p RepairProgress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
		if p.Phase == RepairPhaseRepair {
			maxHealed, hit = max(maxHealed, p.Healed), p.Hit
		}
	}
	res, err := runRepair(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{RepairPhaseFill, RepairPhaseBaseline, RepairPhaseRepair}; strings.Join(phases, ",") != strings.Join(want, ",") {
		t.Errorf("phases %v, want %v", phases, want)
	}
	if strings.Join(f.events, ",") != "kill node-3,out node-3" {
		t.Errorf("events %v, want node-3 (the fullest) killed, then out", f.events)
	}
	if res.Victim != "node-3" || res.VictimUsed < cfg.Fill {
		t.Errorf("victim %s holding %d, want node-3 holding ≥ %d", res.Victim, res.VictimUsed, cfg.Fill)
	}
	if want := int64(f.s3.objectCount()); res.Objects != want || res.Objects <= int64(cfg.FGKeys) {
		t.Errorf("objects %d, want %d (fill + %d foreground)", res.Objects, want, cfg.FGKeys)
	}
	if res.FillBytes <= 0 || res.FillBytes%cfg.ObjectSize != 0 {
		t.Errorf("fill bytes %d, want a positive multiple of %d", res.FillBytes, cfg.ObjectSize)
	}
	if res.ObjectsHit != f.hit || res.ShardsRepaired != f.hit || res.BytesRepaired != f.hit*fakeShardBytes {
		t.Errorf("hit %d, shards %d, bytes %d; want %d, %d, %d", res.ObjectsHit, res.ShardsRepaired, res.BytesRepaired,
			f.hit, f.hit, f.hit*fakeShardBytes)
	}
	if hit != f.hit || maxHealed != f.hit {
		t.Errorf("progress: healed up to %d of %d, want %d of %d", maxHealed, hit, f.hit, f.hit)
	}
	if res.TimeToRepairS <= 0 || res.RepairMBps <= 0 || res.MetaTimeToRepairS != 0.5 {
		t.Errorf("time-to-repair %v s, %v MB/s, meta's %v s", res.TimeToRepairS, res.RepairMBps, res.MetaTimeToRepairS)
	}
	if got := float64(res.BytesRepaired) / res.TimeToRepairS / 1e6; got != res.RepairMBps {
		t.Errorf("repair MB/s %v, want bytes/time-to-repair = %v", res.RepairMBps, got)
	}
	if res.FGBaseline.Ops == 0 || res.FGRepair.Ops == 0 || res.FGBaseline.ErrorsTotal+res.FGRepair.ErrorsTotal != 0 {
		t.Errorf("foreground: baseline %+v, during repair %+v", res.FGBaseline, res.FGRepair)
	}

	var sb strings.Builder
	if err := WriteRepairTable(&sb, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"killed node-3", "time-to-repair", "repair throughput", "no repair", "during repair", "load average"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestRunRepairTimeout(t *testing.T) {
	f := newFakeRepair(t, 0) // never heals
	cfg, err := smallRepairConfig().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 100 * time.Millisecond
	res, err := runRepair(context.Background(), cfg, f)
	if !errors.Is(err, ErrRepairTimeout) {
		t.Fatalf("err = %v, want ErrRepairTimeout", err)
	}
	if res.Victim != "node-3" || res.FGRepair.Ops == 0 || !res.FGRepairOverlap {
		t.Errorf("partial result %+v: want the victim, the during-repair window and overlap set", res)
	}
}

func TestRunRepairCanceled(t *testing.T) {
	f := newFakeRepair(t, 1)
	cfg, err := smallRepairConfig().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Fill = 1 << 62 // never reached
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = runRepair(ctx, cfg, f)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if len(f.events) != 0 {
		t.Errorf("events %v after a cancelled fill, want none", f.events)
	}
}

func TestRepairConfig(t *testing.T) {
	cfg, err := RepairConfig{Exe: "shale", Dir: "/tmp"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fill != 2<<30 || cfg.ObjectSize != 8<<20 || cfg.Nodes != 8 || cfg.Zones != 4 || cfg.K != 4 || cfg.M != 2 ||
		cfg.FGSize != 1<<20 || cfg.FGConcurrency != 2 || cfg.RepairRate != 0 {
		t.Errorf("defaults %+v", cfg)
	}
	for _, c := range []RepairConfig{
		{Dir: "/tmp"},
		{Exe: "shale"},
		{Exe: "shale", Dir: "/tmp", Nodes: 6}, // 4+2 on 6 nodes: nowhere to repair to
		{Exe: "shale", Dir: "/tmp", Zones: 9}, // more zones than nodes
		{Exe: "shale", Dir: "/tmp", Fill: -1},
		{Exe: "shale", Dir: "/tmp", RepairRate: -1},
		{Exe: "shale", Dir: "/tmp", ObjectSize: 6 << 30},
	} {
		if _, err := c.withDefaults(); !errors.Is(err, ErrRepairConfig) {
			t.Errorf("%+v: err = %v, want ErrRepairConfig", c, err)
		}
	}
}

func TestRepairMissingBinary(t *testing.T) {
	dir := t.TempDir()
	cfg := smallRepairConfig()
	cfg.Exe, cfg.Dir = filepath.Join(dir, "no-such-shale"), dir
	if _, err := Repair(context.Background(), cfg); err == nil {
		t.Fatal("Repair with a missing binary succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("run directory left behind: %v", ents)
	}
}

func TestRepaired(t *testing.T) {
	for _, c := range []struct {
		st   meta.Status
		want bool
	}{
		{meta.Status{Objects: 3, ObjectsByHealthyShards: map[int]int64{6: 3}}, true},
		{meta.Status{}, true}, // an empty cluster is whole
		{meta.Status{Objects: 3, ObjectsByHealthyShards: map[int]int64{6: 3}, RepairQueue: 1}, false},
		{meta.Status{Objects: 3, ObjectsByHealthyShards: map[int]int64{6: 2, 5: 1}}, false},
		{meta.Status{Objects: 3, ObjectsByHealthyShards: map[int]int64{6: 3, 5: 0}}, true},
		{meta.Status{Objects: 4, ObjectsByHealthyShards: map[int]int64{6: 3}}, false}, // one unaccounted
	} {
		if got := repaired(c.st, 6); got != c.want {
			t.Errorf("repaired(%+v) = %v, want %v", c.st, got, c.want)
		}
	}
}

func TestFullestNode(t *testing.T) {
	st := meta.Status{Nodes: []cluster.Node{
		{ID: "node-1", Used: 5, State: cluster.Up},
		{ID: "node-2", Used: 9, State: cluster.Out},
		{ID: "node-4", Used: 7, State: cluster.Up},
		{ID: "node-3", Used: 7, State: cluster.Up},
	}}
	if n, ok := fullestNode(st); !ok || n.ID != "node-3" {
		t.Errorf("fullest = %s, %v; want node-3 (ties by id, out nodes skipped)", n.ID, ok)
	}
	if _, ok := fullestNode(meta.Status{}); ok {
		t.Error("fullest node of an empty cluster")
	}
}

func TestRepairFormatting(t *testing.T) {
	if got := parseLoadAvg("1.50 0.25 3.00 2/345 6789\n"); got != [3]float64{1.5, 0.25, 3} {
		t.Errorf("parseLoadAvg = %v", got)
	}
	if got := parseLoadAvg(""); got != [3]float64{} {
		t.Errorf("parseLoadAvg(\"\") = %v", got)
	}
	if got := FormatHealthy(map[int]int64{5: 2, 6: 10, 4: 1}); got != "6:10 5:2 4:1" {
		t.Errorf("FormatHealthy = %q", got)
	}
	if got := FormatHealthy(nil); got != "none" {
		t.Errorf("FormatHealthy(nil) = %q", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A comm with spaces and a parenthesis, as /proc allows.
	line := "4242 (shale (x) y) S 1 4242 4242 0 -1 4194560 2222 0 0 0 1234 566 0 0 20 0 9 0 100 0 0"
	got, ok := parseStatCPU(line)
	if !ok || got != 18.0 {
		t.Fatalf("parseStatCPU = %v, %v; want 18 s (1234+566 ticks)", got, ok)
	}
	if _, ok := parseStatCPU("4242 (shale) S 1"); ok {
		t.Fatal("a short line parsed")
	}
	if got := cpuSince(map[int]float64{1: 2, 2: 5}, map[int]float64{1: 3.5, 3: 9}); got != 1.5 {
		t.Fatalf("cpuSince = %v, want 1.5 (pid 2 died, pid 3 is new)", got)
	}
}
