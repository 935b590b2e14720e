package bench

// The rebalance benchmark (Rebalance): how fast a real `shale dev` cluster
// moves shards onto nodes added to it, what that costs in CPU, and what it
// costs foreground reads.
//
// Nouns:
//   - the cluster, the fill and the foreground windows are the repair
//     benchmark's (repair.go): a `shale dev` child, PUTs of ObjectSize
//     until the fullest node holds Fill shard bytes, and windows of GETs;
//   - the growth adds Add nodes with `shale admin node add`, one per zone
//     in turn, as an operator would; the settle runs from the first add to
//     the first admin status that shows the round under way (the
//     rebalancer waits for placement to hold still), the rebalance from
//     there to the first status in which it is idle again having moved
//     something (each at most Poll late); the during-rebalance foreground
//     window starts with the round;
//   - rebalance MB/s is the shard bytes the rebalancer moved (the growth of
//     its bytes counter) per second of that time, in MB/s (10^6 bytes/s);
//     CPU is the user+system time of every process of the cluster (the new
//     nodes included) over the rebalance, also per GiB moved.
//
// Invariants: as the repair benchmark's — every wait bounded, the cluster
// stopped and (unless Keep) removed before Rebalance returns.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/meta"
)

// ErrRebalanceTimeout: the rebalance had not finished within Timeout of the
// first node added.
var ErrRebalanceTimeout = errors.New("bench: rebalance did not finish in time")

// RebalancePhaseMove is the phase reported while the rebalance runs (the
// fill and baseline phases are the repair benchmark's).
const RebalancePhaseMove = "rebalance"

// RebalanceConfig says what Rebalance runs: the repair benchmark's cluster,
// fill and foreground (Fill: the fullest node's shard bytes before the
// growth; Timeout: the bound on the rebalance), and the nodes to add.
type RebalanceConfig struct {
	RepairConfig
	// Add is the number of nodes added, one per zone in turn. Default
	// Zones.
	Add int
	// Progress, if set, is called about every Poll during the rebalance
	// (the fill's progress goes to RepairConfig.Progress).
	MoveProgress func(RebalanceProgress)
}

// RebalanceProgress is a snapshot of the rebalance under way: the
// rebalancer's own figures, and what it moved since the first add.
type RebalanceProgress struct {
	Elapsed time.Duration
	meta.RebalanceStats
	Moved int64 // shard bytes moved since the first add
}

// RebalanceResult is the outcome of a run.
type RebalanceResult struct {
	Nodes      int     `json:"nodes"` // before the growth
	Added      int     `json:"added"`
	Zones      int     `json:"zones"`
	K          int     `json:"k"`
	M          int     `json:"m"`
	ObjectSize int64   `json:"object_size"`
	Objects    int64   `json:"objects"`    // in the cluster at the first add
	FillBytes  int64   `json:"fill_bytes"` // object bytes PUT by the fill
	FillS      float64 `json:"fill_s"`

	// SettleS runs from the first node added to the round's start (the
	// rebalancer waits for placement to hold still), RebalanceS from there
	// to the rebalancer idle again, TotalS is both.
	SettleS        float64 `json:"settle_s"`
	RebalanceS     float64 `json:"rebalance_s"`
	TotalS         float64 `json:"total_s"`
	ObjectsMoved   int64   `json:"objects_moved"`
	ShardsMoved    int64   `json:"shards_moved"`
	BytesMoved     int64   `json:"bytes_moved"`
	RebalanceMBps  float64 `json:"rebalance_mbps"` // BytesMoved / RebalanceS, 10^6 bytes/s
	Conflicts      int64   `json:"conflicts"`
	Failures       int64   `json:"failures"`
	CPUSeconds     float64 `json:"cpu_s"`               // all cluster processes, first add → idle
	CPUSecondsPerG float64 `json:"cpu_s_per_gib_moved"` // CPUSeconds per GiB moved

	FGSize        int64   `json:"fg_size"`
	FGConcurrency int     `json:"fg_concurrency"`
	FGBaseline    S3Stats `json:"fg_baseline"`         // GETs before the growth
	FGRebalance   S3Stats `json:"fg_during_rebalance"` // GETs from the first add on
	// FGOverlap says whether the rebalance was still running when the
	// during-rebalance window ended.
	FGOverlap bool `json:"fg_rebalance_overlap"`

	LoadStart [3]float64 `json:"loadavg_start"`
	LoadAdd   [3]float64 `json:"loadavg_add"`
	LoadEnd   [3]float64 `json:"loadavg_end"`

	Dir  string `json:"dir"`
	Kept bool   `json:"kept"`
}

func (cfg RebalanceConfig) withDefaults() (RebalanceConfig, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 6
	}
	if cfg.Zones == 0 {
		cfg.Zones = 3
	}
	rc, err := cfg.RepairConfig.withDefaultsFor(0) // a growing cluster needs no spare node
	if err != nil {
		return cfg, err
	}
	cfg.RepairConfig = rc
	if cfg.Add == 0 {
		cfg.Add = cfg.Zones
	}
	if cfg.Add < 0 || cfg.Add > 64 {
		return cfg, fmt.Errorf("%w: add %d nodes: want 1 to 64", ErrRepairConfig, cfg.Add)
	}
	return cfg, nil
}

// rebalanceCluster is what the benchmark does to the cluster under test.
type rebalanceCluster interface {
	S3() (endpoint, access, secret string)
	Status(ctx context.Context) (meta.Status, error)
	// AddNode adds a node in zone and returns once it is up.
	AddNode(ctx context.Context, zone string) error
}

// AddNode runs `shale admin node add --zone zone` and re-reads
// cluster.json, so CPU counts the new node too.
func (dc *devCluster) AddNode(ctx context.Context, zone string) error {
	if _, err := dc.admin(ctx, "node", "add", "--zone", zone); err != nil {
		return err
	}
	f, err := devcluster.Read(dc.data)
	if err != nil {
		return err
	}
	dc.file = f
	return nil
}

// Rebalance starts a `shale dev` cluster under cfg.Dir, fills it, measures
// foreground GETs, adds cfg.Add nodes, measures foreground GETs again while
// the rebalancer moves shards onto them, and waits until it is idle again.
// The cluster is stopped before Rebalance returns. An error after the first
// add returns what was measured with it.
func Rebalance(ctx context.Context, cfg RebalanceConfig) (res RebalanceResult, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return RebalanceResult{}, err
	}
	root, err := os.MkdirTemp(cfg.Dir, "rebalance-bench-")
	if err != nil {
		return RebalanceResult{}, fmt.Errorf("rebalance bench: %w", err)
	}
	defer func() {
		res.Dir, res.Kept = root, cfg.Keep
		if !cfg.Keep {
			if rerr := os.RemoveAll(root); rerr != nil && err == nil {
				err = fmt.Errorf("rebalance bench: remove %s: %w", root, rerr)
			}
		}
	}()
	dc, err := startDevCluster(ctx, cfg.RepairConfig, root)
	if err != nil {
		return RebalanceResult{}, fmt.Errorf("rebalance bench: %w", err)
	}
	defer dc.stop()
	res, err = runRebalance(ctx, cfg, dc)
	if err != nil {
		err = fmt.Errorf("rebalance bench: %w (dev output and logs in %s)", err, root)
	}
	return res, err
}

// runRebalance is the benchmark proper, on a running cluster.
func runRebalance(ctx context.Context, cfg RebalanceConfig, cl rebalanceCluster) (RebalanceResult, error) {
	res := RebalanceResult{Nodes: cfg.Nodes, Added: cfg.Add, Zones: cfg.Zones, K: cfg.K, M: cfg.M,
		ObjectSize: cfg.ObjectSize, FGSize: cfg.FGSize, FGConcurrency: cfg.FGConcurrency}
	res.LoadStart = loadAvg()
	run, err := fillAndBaseline(ctx, cfg.RepairConfig, cl, "rebalance-bench")
	if err != nil {
		return RebalanceResult{}, err
	}
	defer run.close()
	fg := run.fg
	res.FillS, res.FillBytes, res.FGBaseline = run.fillS, run.filled, run.baseline

	before, err := cl.Status(ctx)
	if err != nil {
		return RebalanceResult{}, err
	}
	res.Objects = before.Objects
	var rb0 meta.RebalanceStats
	if before.Repair != nil {
		rb0 = before.Repair.Rebalance
	}
	zones := zonesOf(before)
	if len(zones) == 0 {
		return RebalanceResult{}, errors.New("no zone to add nodes to")
	}

	res.LoadAdd = loadAvg()
	addAt := time.Now()
	for i := range cfg.Add {
		if err := cl.AddNode(ctx, zones[i%len(zones)]); err != nil {
			return res, fmt.Errorf("add a node in %s: %w", zones[i%len(zones)], err)
		}
	}
	// The round starts once placement has settled; the foreground window
	// and the CPU count start with it.
	cs, sampled := cl.(cpuSampler)
	var (
		cpu0    map[int]float64
		startAt time.Time
		wg      sync.WaitGroup
		during  S3Result
		fgEnd   time.Time
	)
	defer wg.Wait()
	doneAt, last, werr := waitRebalanced(ctx, cfg, cl, addAt, rb0, func() {
		startAt = time.Now()
		if sampled {
			cpu0 = cs.CPU()
		}
		wg.Go(func() {
			during = fg.run(ctx)
			fgEnd = time.Now()
		})
	})
	if sampled && cpu0 != nil {
		res.CPUSeconds = cpuSince(cpu0, cs.CPU())
	}
	wg.Wait()
	res.FGRebalance = during.S3Stats
	res.FGOverlap = doneAt.IsZero() || doneAt.After(fgEnd)
	res.LoadEnd = loadAvg()
	end := doneAt
	if werr != nil {
		end = time.Now()
	}
	if !startAt.IsZero() {
		res.SettleS = startAt.Sub(addAt).Seconds()
		res.RebalanceS = end.Sub(startAt).Seconds()
	}
	res.TotalS = end.Sub(addAt).Seconds()
	res.ObjectsMoved = last.ObjectsMoved - rb0.ObjectsMoved
	res.ShardsMoved = last.ShardsMoved - rb0.ShardsMoved
	res.BytesMoved = last.BytesMoved - rb0.BytesMoved
	res.Conflicts = last.Conflicts - rb0.Conflicts
	res.Failures = last.Failures - rb0.Failures
	if res.RebalanceS > 0 {
		res.RebalanceMBps = float64(res.BytesMoved) / res.RebalanceS / 1e6
	}
	if res.BytesMoved > 0 {
		res.CPUSecondsPerG = res.CPUSeconds / (float64(res.BytesMoved) / (1 << 30))
	}
	return res, werr
}

// zonesOf lists the zones of st's nodes, in order of first appearance.
func zonesOf(st meta.Status) []string {
	var zs []string
	seen := map[string]bool{}
	for _, n := range st.Nodes {
		if z := n.Domain.Zone; !seen[z] {
			seen[z] = true
			zs = append(zs, z)
		}
	}
	return zs
}

// waitRebalanced polls status until the rebalancer is idle having moved
// something since rb0, and returns when it first saw that (zero on error)
// and the last figures it read. started runs once, at the first status
// that shows the round under way (planning or moving, or bytes moved).
func waitRebalanced(ctx context.Context, cfg RebalanceConfig, cl rebalanceCluster, addAt time.Time, rb0 meta.RebalanceStats, started func()) (time.Time, meta.RebalanceStats, error) {
	deadline := addAt.Add(cfg.Timeout)
	last := rb0
	for begun := false; ; {
		st, err := cl.Status(ctx)
		now := time.Now()
		if err == nil && st.Repair != nil {
			last = st.Repair.Rebalance
			if !begun && (last.State == "planning" || last.State == "moving" || last.BytesMoved > rb0.BytesMoved) {
				begun = true
				started()
			}
			if cfg.MoveProgress != nil {
				cfg.MoveProgress(RebalanceProgress{Elapsed: now.Sub(addAt), RebalanceStats: last, Moved: last.BytesMoved - rb0.BytesMoved})
			}
			if last.State == "idle" && last.BytesMoved > rb0.BytesMoved {
				return now, last, nil
			}
		}
		if ctx.Err() != nil {
			return time.Time{}, last, fmt.Errorf("rebalance: %w", ctx.Err())
		}
		if now.After(deadline) {
			return time.Time{}, last, fmt.Errorf("%w: %v after the first add (%s, %d objects left)", ErrRebalanceTimeout, cfg.Timeout, last.State, last.ObjectsToMove)
		}
		if !sleepCtx(ctx, cfg.Poll) {
			return time.Time{}, last, fmt.Errorf("rebalance: %w", ctx.Err())
		}
	}
}

// WriteRebalanceTable prints a run: the cluster and fill, the rebalance
// figures, and the foreground latencies before and during it.
func WriteRebalanceTable(w io.Writer, r RebalanceResult) error {
	fmt.Fprintf(w, "cluster: %d nodes over %d zones, %d+%d; %d nodes added\n", r.Nodes, r.Zones, r.K, r.M, r.Added)
	fmt.Fprintf(w, "fill: %d objects in the cluster (%s of %s fill objects PUT in %.0f s)\n\n",
		r.Objects, formatGiB(r.FillBytes), FormatBytes(r.ObjectSize), r.FillS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "settle (first add → the round starts)\t%.1f s\n", r.SettleS)
	fmt.Fprintf(tw, "rebalance (round start → rebalancer idle)\t%.1f s\n", r.RebalanceS)
	fmt.Fprintf(tw, "moved\t%d shards of %d objects, %s\n", r.ShardsMoved, r.ObjectsMoved, formatGiB(r.BytesMoved))
	fmt.Fprintf(tw, "rebalance throughput\t%.1f MB/s\n", r.RebalanceMBps)
	if r.CPUSeconds > 0 {
		fmt.Fprintf(tw, "cluster CPU over the round (rebalance and foreground)\t%.1f s (%.1f s per GiB moved)\n", r.CPUSeconds, r.CPUSecondsPerG)
	}
	if r.Failures > 0 || r.Conflicts > 0 {
		fmt.Fprintf(tw, "failures / conflicts\t%d / %d\n", r.Failures, r.Conflicts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeForeground(w, r.FGSize, r.FGConcurrency, "before", r.FGBaseline, "during rebalance", r.FGRebalance); err != nil {
		return err
	}
	if !r.FGOverlap {
		fmt.Fprintln(w, "(the rebalance finished before the during-rebalance window ended)")
	}
	fmt.Fprintf(w, "\nload average: %s at start, %s at the first add, %s at end\n",
		formatLoad(r.LoadStart), formatLoad(r.LoadAdd), formatLoad(r.LoadEnd))
	return nil
}
