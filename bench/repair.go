package bench

// The repair benchmark (Repair): time-to-repair and repair throughput for one
// dead node of a real `shale dev` cluster, and what repair costs foreground
// reads.
//
// Nouns:
//   - the cluster is a `shale dev` child process started by the benchmark on
//     a data directory of its own, with its S3 gateway on a fresh loopback
//     port; it is driven as an operator would: S3 for data, `shale admin
//     status --json` and `shale admin out` for control, and SIGKILL of the
//     pid cluster.json records for the failure;
//   - the fill is the phase that PUTs objects of ObjectSize until the node
//     holding the most shard bytes (Used in admin status) holds at least
//     Fill bytes; that node is the victim;
//   - a foreground window is FGDuration of back-to-back GETs of FGSize
//     objects by FGConcurrency workers (the S3 benchmark's run phase), once
//     with no repair running (baseline) and once starting right after the
//     victim is killed and marked out (during repair);
//   - time-to-repair runs from the SIGKILL of the victim to the first admin
//     status in which every object is back at k+m healthy shards and the
//     repair queue is empty, so it includes the operator's `admin out`, the
//     repair loop's pass interval and the status polling interval (at most
//     Poll late);
//   - repair MB/s is the shard bytes the repair loop re-created (the growth
//     of its bytes_repaired counter) per second of time-to-repair, in MB/s
//     (10^6 bytes/s).
//
// Invariants: every wait is bounded (the cluster's start, each admin
// command, the repair by Timeout); the cluster is stopped (SIGTERM to the
// dev process, SIGKILL of its process group after a grace) before Repair
// returns, whatever happened, and its directory is removed unless Keep.
//
// What it does not do: verify object contents after repair (the end-to-end
// tests do), exercise drains or several failures, or judge the numbers.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/meta"
)

// ErrRepairConfig: a RepairConfig field is missing or out of range.
var ErrRepairConfig = errors.New("bench: invalid repair config")

// ErrRepairTimeout: the cluster was not back at full redundancy within
// RepairConfig.Timeout of the kill.
var ErrRepairTimeout = errors.New("bench: repair did not finish in time")

// Phases reported to RepairConfig.Progress.
const (
	RepairPhaseFill     = "fill"     // PUTting objects until the victim holds Fill bytes
	RepairPhaseBaseline = "baseline" // foreground GETs, no repair running
	RepairPhaseRepair   = "repair"   // the victim is dead and out; waiting for full redundancy
)

// RepairConfig says what Repair runs. Zero fields take the defaults.
type RepairConfig struct {
	// Exe is the shale binary that runs `dev` and `admin`. Required.
	Exe string
	// Dir is where the run's directory (the cluster's data, its logs and
	// dev's output) is made, as a new subdirectory. Required.
	Dir string
	// Fill is how many shard bytes the victim must hold before it is
	// killed. Default 2 GiB.
	Fill int64
	// ObjectSize of every fill object. Default 8 MiB.
	ObjectSize int64
	// FillConcurrency is the number of PUTs in flight during the fill.
	// Default 4.
	FillConcurrency int
	// Nodes, Zones, K and M shape the dev cluster. Defaults 8, 4, 4, 2.
	Nodes, Zones, K, M int
	// RepairRate is the repair throttle in bytes/s (dev's --repair-rate).
	// Default 0: unthrottled.
	RepairRate int64
	// RepairConcurrency is the number of objects the repair loop rebuilds at
	// once (dev's --repair-concurrency). Default 0: the loop's default.
	RepairConcurrency int
	// FGSize is the size of the objects foreground GETs read. Default 1 MiB.
	FGSize int64
	// FGConcurrency is the number of foreground GETs in flight. Default 2.
	FGConcurrency int
	// FGDuration is the length of each foreground window. Default 10 s.
	FGDuration time.Duration
	// FGKeys is the number of distinct foreground objects. Default 16.
	FGKeys int
	// Timeout bounds the wait for repair after the kill. Default 30 min.
	Timeout time.Duration
	// Poll is the interval between admin status calls while filling and
	// repairing. Default 1 s.
	Poll time.Duration
	// Keep leaves the run's directory in place (the cluster is stopped
	// either way).
	Keep bool
	// Progress, if set, is called from one goroutine at a time, about every
	// Poll during the fill and the repair and once at the start of the
	// baseline window, and never after Repair returns.
	Progress func(RepairProgress)
}

// RepairProgress is a snapshot of the phase under way.
type RepairProgress struct {
	// Phase is RepairPhaseFill, RepairPhaseBaseline or RepairPhaseRepair.
	Phase string
	// Elapsed since the phase began.
	Elapsed time.Duration
	// Fill: objects and object bytes PUT so far, the most shard bytes any
	// node holds and the target.
	Objects, Bytes, MaxNodeUsed, Fill int64
	// Repair: objects by their fewest healthy shards, the repair queue, the
	// repair loop's rate (bytes/s over its last 30 s) and ETA, and the shard
	// bytes re-created since the kill. The loop publishes these figures at
	// the end of each of its passes, so within a long pass they lag.
	ByHealthy      map[int]int64
	Queue          int64
	RateBytesPerS  float64
	ETA            time.Duration
	BytesRepaired  int64
	ShardsRepaired int64
	// The benchmark's own estimate, fresh at every poll: Hit objects were
	// below k+m at the first poll after the kill and Healed of them are
	// back; EstBytesPerS counts the victim's bytes per hit object for each
	// healed one, and EstETA extrapolates the healing rate so far.
	Hit, Healed  int64
	EstBytesPerS float64
	EstETA       time.Duration
}

// RepairResult is the outcome of a run.
type RepairResult struct {
	Nodes      int     `json:"nodes"`
	Zones      int     `json:"zones"`
	K          int     `json:"k"`
	M          int     `json:"m"`
	RepairRate int64   `json:"repair_rate_bytes_per_sec"` // 0: unthrottled
	ObjectSize int64   `json:"object_size"`
	Objects    int64   `json:"objects"`     // in the cluster when the victim was killed (fill + foreground)
	FillBytes  int64   `json:"fill_bytes"`  // object bytes PUT by the fill
	FillS      float64 `json:"fill_s"`      // the fill's duration
	Victim     string  `json:"victim"`      // the node killed
	VictimUsed int64   `json:"victim_used"` // shard bytes it held (admin status Used) when killed
	// Objects with a shard on the victim, counted from the first status
	// after it was out.
	ObjectsHit int64 `json:"objects_hit"`

	TimeToRepairS float64 `json:"time_to_repair_s"` // kill → all objects at k+m, queue empty
	// MetaTimeToRepairS is the repair loop's own figure (from its noticing
	// the node out to its queue empty); 0 when it did not report one.
	MetaTimeToRepairS float64 `json:"meta_time_to_repair_s"`
	ShardsRepaired    int64   `json:"shards_repaired"` // re-created since the kill
	BytesRepaired     int64   `json:"bytes_repaired"`  // shard bytes re-created since the kill
	RepairMBps        float64 `json:"repair_mbps"`     // BytesRepaired / time-to-repair, 10^6 bytes/s
	RepairFailures    int64   `json:"repair_failures"` // object repairs that failed and were retried
	RepairConflicts   int64   `json:"repair_conflicts"`
	// CPUSeconds is the user+system CPU time of the cluster's processes
	// (meta replicas, gateway, surviving nodes; from /proc) between the
	// kill and the status that showed the cluster whole: repair and the
	// foreground GETs of that window. 0 when it could not be read.
	CPUSeconds float64 `json:"cpu_s"`

	FGSize        int64   `json:"fg_size"`
	FGConcurrency int     `json:"fg_concurrency"`
	FGBaseline    S3Stats `json:"fg_baseline"`      // GETs with no repair running
	FGRepair      S3Stats `json:"fg_during_repair"` // GETs from the kill on
	// FGRepairOverlap says whether repair was still running when the
	// during-repair window ended (else part of it saw a healthy cluster).
	FGRepairOverlap bool `json:"fg_repair_overlap"`

	// Load averages (1, 5, 15 min) at the start, at the kill and at the end:
	// other work on the machine shows here.
	LoadStart [3]float64 `json:"loadavg_start"`
	LoadKill  [3]float64 `json:"loadavg_kill"`
	LoadEnd   [3]float64 `json:"loadavg_end"`

	Dir  string `json:"dir"`  // the run's directory
	Kept bool   `json:"kept"` // whether Dir was left in place
}

func (cfg RepairConfig) withDefaults() (RepairConfig, error) { return cfg.withDefaultsFor(1) }

// withDefaultsFor is withDefaults for a cluster that needs spare nodes
// beyond k+m: one, for the repair of a dead node's shards; none, for a
// cluster about to grow.
func (cfg RepairConfig) withDefaultsFor(spare int) (RepairConfig, error) {
	bad := func(format string, a ...any) (RepairConfig, error) {
		return cfg, fmt.Errorf("%w: "+format, append([]any{ErrRepairConfig}, a...)...)
	}
	if cfg.Exe == "" {
		return bad("the shale binary is required")
	}
	if cfg.Dir == "" {
		return bad("a directory is required")
	}
	def64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def64(&cfg.Fill, 2<<30)
	def64(&cfg.ObjectSize, 8<<20)
	def(&cfg.FillConcurrency, 4)
	def(&cfg.Nodes, 8)
	def(&cfg.Zones, 4)
	def(&cfg.K, 4)
	def(&cfg.M, 2)
	def64(&cfg.FGSize, 1<<20)
	def(&cfg.FGConcurrency, 2)
	def(&cfg.FGKeys, 16)
	if cfg.FGDuration == 0 {
		cfg.FGDuration = 10 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Minute
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	switch {
	case cfg.Fill < 0:
		return bad("fill %d is negative", cfg.Fill)
	case cfg.ObjectSize < 0 || cfg.ObjectSize > 5<<30:
		return bad("object size %d: want 1 byte to 5 GiB", cfg.ObjectSize)
	case cfg.FGSize < 0 || cfg.FGSize > 5<<30:
		return bad("foreground size %d: want 1 byte to 5 GiB", cfg.FGSize)
	case cfg.FillConcurrency < 0 || cfg.FGConcurrency < 0 || cfg.FGKeys < 0:
		return bad("concurrencies and keys must be positive")
	case cfg.K < 1 || cfg.M < 1:
		return bad("coding %d+%d: want k ≥ 1 and m ≥ 1 (a node must be repairable)", cfg.K, cfg.M)
	case spare > 0 && cfg.Nodes < cfg.K+cfg.M+spare:
		return bad("%d nodes: want more than k+m = %d, so a dead node's shards have somewhere to go", cfg.Nodes, cfg.K+cfg.M)
	case cfg.Nodes < cfg.K+cfg.M:
		return bad("%d nodes cannot hold k+m = %d shards", cfg.Nodes, cfg.K+cfg.M)
	case cfg.Zones < 1 || cfg.Zones > cfg.Nodes:
		return bad("zones %d: want 1 to %d", cfg.Zones, cfg.Nodes)
	case cfg.RepairRate < 0:
		return bad("repair rate %d is negative", cfg.RepairRate)
	case cfg.FGDuration < 0 || cfg.Timeout < 0 || cfg.Poll < 0:
		return bad("durations must be positive")
	}
	return cfg, nil
}

// repairCluster is what the benchmark does to the cluster under test. The
// real one is a `shale dev` child (devCluster); tests use a fake.
type repairCluster interface {
	// Endpoint and credentials of the S3 gateway.
	S3() (endpoint, access, secret string)
	// Status is `shale admin status`.
	Status(ctx context.Context) (meta.Status, error)
	// Kill SIGKILLs the node's process and returns once it is gone.
	Kill(ctx context.Context, node cluster.NodeID) error
	// Out marks the node out (`shale admin out`).
	Out(ctx context.Context, node cluster.NodeID) error
}

// statusSource is what the fill needs of a cluster: its status.
type statusSource interface {
	Status(ctx context.Context) (meta.Status, error)
}

// cpuSampler is a repairCluster that can read its processes' CPU time:
// seconds of user+system time by pid, for the processes alive.
type cpuSampler interface {
	CPU() map[int]float64
}

// cpuSince sums the CPU time processes alive in both samples spent
// between them (a process that died in between, such as the victim, is
// left out).
func cpuSince(before, after map[int]float64) float64 {
	var sum float64
	for pid, a := range after {
		if b, ok := before[pid]; ok && a >= b {
			sum += a - b
		}
	}
	return sum
}

// Repair starts a `shale dev` cluster under cfg.Dir, fills it, measures
// foreground GETs, kills the fullest node, marks it out, measures foreground
// GETs again while repair runs, and waits until every object is back at k+m
// healthy shards. The cluster is stopped before Repair returns.
//
// When the repair does not finish within Timeout, or ctx ends after the
// kill, Repair returns what it measured with an error (ErrRepairTimeout or
// one wrapping ctx.Err()). An error before the kill returns a zero result.
func Repair(ctx context.Context, cfg RepairConfig) (res RepairResult, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return RepairResult{}, err
	}
	root, err := os.MkdirTemp(cfg.Dir, "repair-bench-")
	if err != nil {
		return RepairResult{}, fmt.Errorf("repair bench: %w", err)
	}
	defer func() {
		res.Dir, res.Kept = root, cfg.Keep
		if !cfg.Keep {
			if rerr := os.RemoveAll(root); rerr != nil && err == nil {
				err = fmt.Errorf("repair bench: remove %s: %w", root, rerr)
			}
		}
	}()
	dc, err := startDevCluster(ctx, cfg, root)
	if err != nil {
		return RepairResult{}, fmt.Errorf("repair bench: %w", err)
	}
	defer dc.stop()
	res, err = runRepair(ctx, cfg, dc)
	if err != nil {
		err = fmt.Errorf("repair bench: %w (dev output and logs in %s)", err, root)
	}
	return res, err
}

// runRepair is the benchmark proper, on a running cluster.
func runRepair(ctx context.Context, cfg RepairConfig, cl repairCluster) (RepairResult, error) {
	res := RepairResult{Nodes: cfg.Nodes, Zones: cfg.Zones, K: cfg.K, M: cfg.M, RepairRate: cfg.RepairRate,
		ObjectSize: cfg.ObjectSize, FGSize: cfg.FGSize, FGConcurrency: cfg.FGConcurrency}
	res.LoadStart = loadAvg()
	run, err := fillAndBaseline(ctx, cfg, cl, "repair-bench")
	if err != nil {
		return RepairResult{}, err
	}
	defer run.close()
	fg := run.fg
	res.FillS, res.FillBytes, res.FGBaseline = run.fillS, run.filled, run.baseline

	// The victim: the fullest node, as the heartbeats now say.
	before, err := cl.Status(ctx)
	if err != nil {
		return RepairResult{}, err
	}
	victim, ok := fullestNode(before)
	if !ok {
		return RepairResult{}, errors.New("no node is up to kill")
	}
	res.Victim, res.VictimUsed, res.Objects = string(victim.ID), victim.Used, before.Objects
	var base0 meta.RepairStats
	if before.Repair != nil {
		base0 = *before.Repair
	}

	// Kill, out, and the during-repair window beside the wait.
	res.LoadKill = loadAvg()
	cs, sampled := cl.(cpuSampler)
	var cpu0 map[int]float64
	if sampled {
		cpu0 = cs.CPU()
	}
	killAt := time.Now()
	if err := cl.Kill(ctx, victim.ID); err != nil {
		return RepairResult{}, err
	}
	if err := cl.Out(ctx, victim.ID); err != nil {
		return res, err
	}
	var (
		wg     sync.WaitGroup
		during S3Result
		fgEnd  time.Time
	)
	wg.Go(func() {
		during = fg.run(ctx)
		fgEnd = time.Now()
	})
	doneAt, last, werr := waitRepaired(ctx, cfg, cl, killAt, base0, &res)
	if sampled {
		res.CPUSeconds = cpuSince(cpu0, cs.CPU())
	}
	wg.Wait()
	res.FGRepair = during.S3Stats
	res.FGRepairOverlap = doneAt.IsZero() || doneAt.After(fgEnd)
	res.LoadEnd = loadAvg()
	if werr != nil {
		res.TimeToRepairS = time.Since(killAt).Seconds()
		fillRepairStats(&res, base0, last)
		return res, werr
	}
	res.TimeToRepairS = doneAt.Sub(killAt).Seconds()

	// The loop publishes its counters at the end of a pass, which may come
	// just after the status that showed the cluster whole: wait (briefly)
	// for a report made after it.
	deadline := time.Now().Add(10 * cfg.Poll)
	for last.Repair == nil || last.Repair.Updated.Before(doneAt) {
		if time.Now().After(deadline) || !sleepCtx(ctx, cfg.Poll/4) {
			break
		}
		if st, err := cl.Status(ctx); err == nil {
			last = st
		}
	}
	fillRepairStats(&res, base0, last)
	if res.TimeToRepairS > 0 {
		res.RepairMBps = float64(res.BytesRepaired) / res.TimeToRepairS / 1e6
	}
	return res, nil
}

// benchRun is a cluster filled and measured once at rest: what the repair
// and rebalance benchmarks share before they disturb it.
type benchRun struct {
	fb, fg   *s3Bench // the fill's client, and the foreground GETs'
	filled   int64    // object bytes PUT by the fill
	fillS    float64  // the fill's duration
	baseline S3Stats  // the foreground window at rest
}

func (r *benchRun) close() {
	r.fb.transport.CloseIdleConnections()
	if r.fg != nil {
		r.fg.transport.CloseIdleConnections()
	}
}

// fillAndBaseline fills bucket on cl until the fullest node holds
// cfg.Fill shard bytes, writes the foreground objects and runs the
// foreground window once, with nothing else going on. On error nothing
// needs closing.
func fillAndBaseline(ctx context.Context, cfg RepairConfig, cl interface {
	statusSource
	S3() (endpoint, access, secret string)
}, bucket string) (*benchRun, error) {
	endpoint, access, secret := cl.S3()
	s3cfg := S3Config{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: bucket,
		Checksum: S3ChecksumWhenRequired, Keep: true}
	fillCfg := s3cfg
	fillCfg.Op, fillCfg.Size, fillCfg.Concurrency, fillCfg.Prefix = S3OpPut, cfg.ObjectSize, cfg.FillConcurrency, "fill/"
	fillCfg, err := fillCfg.withDefaults()
	if err != nil {
		return nil, err
	}
	run := &benchRun{fb: newS3Bench(fillCfg)}
	fail := func(err error) (*benchRun, error) {
		run.close()
		return nil, err
	}
	if _, err := run.fb.ensureBucket(ctx); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	_, run.filled, err = fill(ctx, cfg, cl, run.fb)
	run.fillS = time.Since(t0).Seconds()
	if err != nil {
		return fail(err)
	}
	fgCfg := s3cfg
	fgCfg.Op, fgCfg.Size, fgCfg.Concurrency, fgCfg.Duration, fgCfg.Keys, fgCfg.Prefix =
		S3OpGet, cfg.FGSize, cfg.FGConcurrency, cfg.FGDuration, cfg.FGKeys, "fg/"
	if fgCfg, err = fgCfg.withDefaults(); err != nil {
		return fail(err)
	}
	run.fg = newS3Bench(fgCfg)
	if err := run.fg.prepare(ctx); err != nil {
		return fail(fmt.Errorf("foreground objects: %w", err))
	}
	if cfg.Progress != nil {
		cfg.Progress(RepairProgress{Phase: RepairPhaseBaseline})
	}
	base := run.fg.run(ctx)
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	run.baseline = base.S3Stats
	return run, nil
}

// fill PUTs objects until the fullest node holds cfg.Fill bytes, and
// returns how many objects and bytes it wrote.
func fill(ctx context.Context, cfg RepairConfig, cl statusSource, fb *s3Bench) (int64, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		c        s3Counters
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		enough   atomic.Bool
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for w := range cfg.FillConcurrency {
		wg.Go(func() {
			for !enough.Load() && ctx.Err() == nil {
				key := fb.putKey(w, fb.puts[w])
				fb.puts[w]++
				_, err := fb.setup.PutObject(ctx, &s3.PutObjectInput{
					Bucket:        aws.String(fb.cfg.Bucket),
					Key:           aws.String(key),
					Body:          bytes.NewReader(fb.payload),
					ContentLength: aws.Int64(fb.cfg.Size),
				})
				if err != nil {
					if ctx.Err() == nil {
						fail(fmt.Errorf("fill: put %s/%s: %w", fb.cfg.Bucket, key, err))
					}
					return
				}
				c.ops.Add(1)
				c.bytes.Add(fb.cfg.Size)
			}
		})
	}
	start := time.Now()
	for !enough.Load() && ctx.Err() == nil {
		if !sleepCtx(ctx, cfg.Poll) {
			break
		}
		st, err := cl.Status(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fail(fmt.Errorf("fill: %w", err))
			}
			break
		}
		n, _ := fullestNode(st)
		if n.Used >= cfg.Fill {
			enough.Store(true)
		}
		if cfg.Progress != nil {
			cfg.Progress(RepairProgress{Phase: RepairPhaseFill, Elapsed: time.Since(start), Objects: c.ops.Load(),
				Bytes: c.bytes.Load(), MaxNodeUsed: n.Used, Fill: cfg.Fill})
		}
	}
	wg.Wait()
	if firstErr != nil {
		return c.ops.Load(), c.bytes.Load(), firstErr
	}
	if err := ctx.Err(); err != nil {
		return c.ops.Load(), c.bytes.Load(), fmt.Errorf("fill: %w", err)
	}
	return c.ops.Load(), c.bytes.Load(), nil
}

// waitRepaired polls status until the cluster is whole again, and returns
// when it first saw it so (zero on error) and the last status it read.
func waitRepaired(ctx context.Context, cfg RepairConfig, cl repairCluster, killAt time.Time, base0 meta.RepairStats,
	res *RepairResult) (time.Time, meta.Status, error) {
	deadline := killAt.Add(cfg.Timeout)
	var last meta.Status
	for first := true; ; first = false {
		st, err := cl.Status(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return time.Time{}, last, fmt.Errorf("repair: %w", ctx.Err())
			}
			// A status call can fail while meta is busy; the deadline bounds retries.
			if now.After(deadline) {
				return time.Time{}, last, fmt.Errorf("repair: %w", err)
			}
		} else {
			last = st
			below := st.Objects - st.ObjectsByHealthyShards[cfg.K+cfg.M]
			if first {
				res.ObjectsHit = below
			}
			if cfg.Progress != nil {
				elapsed := now.Sub(killAt)
				p := RepairProgress{Phase: RepairPhaseRepair, Elapsed: elapsed, ByHealthy: st.ObjectsByHealthyShards,
					Queue: st.RepairQueue, Hit: res.ObjectsHit, Healed: max(res.ObjectsHit-below, 0)}
				if p.Hit > 0 && p.Healed > 0 && elapsed > 0 {
					p.EstBytesPerS = float64(p.Healed) * float64(res.VictimUsed) / float64(p.Hit) / elapsed.Seconds()
					p.EstETA = time.Duration(float64(elapsed) * float64(below) / float64(p.Healed))
				}
				if r := st.Repair; r != nil {
					p.RateBytesPerS = r.RateBytesPerSec
					p.ETA = time.Duration(r.ETASeconds * float64(time.Second))
					p.BytesRepaired = r.BytesRepaired - base0.BytesRepaired
					p.ShardsRepaired = r.ShardsRepaired - base0.ShardsRepaired
				}
				cfg.Progress(p)
			}
			if repaired(st, cfg.K+cfg.M) {
				return now, st, nil
			}
		}
		if now.After(deadline) {
			return time.Time{}, last, fmt.Errorf("%w: %v after the kill: %s", ErrRepairTimeout, cfg.Timeout, FormatHealthy(last.ObjectsByHealthyShards))
		}
		if !sleepCtx(ctx, cfg.Poll) {
			return time.Time{}, last, fmt.Errorf("repair: %w", ctx.Err())
		}
	}
}

// repaired reports whether every object of st has all width shards healthy
// and nothing is queued for repair.
func repaired(st meta.Status, width int) bool {
	if st.RepairQueue != 0 {
		return false
	}
	for h, n := range st.ObjectsByHealthyShards {
		if h != width && n > 0 {
			return false
		}
	}
	return st.ObjectsByHealthyShards[width] == st.Objects
}

// fullestNode is the up node holding the most shard bytes (ties: the
// smallest id, so the choice is repeatable).
func fullestNode(st meta.Status) (cluster.Node, bool) {
	var best cluster.Node
	found := false
	for _, n := range st.Nodes {
		if n.State != cluster.Up {
			continue
		}
		if !found || n.Used > best.Used || (n.Used == best.Used && n.ID < best.ID) {
			best, found = n, true
		}
	}
	return best, found
}

func fillRepairStats(res *RepairResult, base0 meta.RepairStats, st meta.Status) {
	r := st.Repair
	if r == nil {
		return
	}
	res.ShardsRepaired = r.ShardsRepaired - base0.ShardsRepaired
	res.BytesRepaired = r.BytesRepaired - base0.BytesRepaired
	res.RepairFailures = r.Failures - base0.Failures
	res.RepairConflicts = r.Conflicts - base0.Conflicts
	if r.LastTimeToRepairSeconds != base0.LastTimeToRepairSeconds {
		res.MetaTimeToRepairS = r.LastTimeToRepairSeconds
	}
}

// sleepCtx waits d or until ctx ends, and says whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// FormatHealthy prints objects by healthy shards, most shards first, as
// "6:1200 5:37".
func FormatHealthy(m map[int]int64) string {
	hs := make([]int, 0, len(m))
	for h := range m {
		hs = append(hs, h)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(hs)))
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		parts = append(parts, fmt.Sprintf("%d:%d", h, m[h]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// loadAvg reads the 1, 5 and 15 minute load averages (zeros where unknown).
func loadAvg() [3]float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	return parseLoadAvg(string(b))
}

func parseLoadAvg(s string) [3]float64 {
	var la [3]float64
	for i, f := range strings.Fields(s) {
		if i == 3 {
			break
		}
		la[i], _ = strconv.ParseFloat(f, 64)
	}
	return la
}

// WriteRepairTable prints a run: the cluster and fill, the repair figures,
// and the foreground latencies with and without repair.
func WriteRepairTable(w io.Writer, r RepairResult) error {
	rate := "unthrottled"
	if r.RepairRate > 0 {
		rate = fmt.Sprintf("%.1f MB/s", float64(r.RepairRate)/1e6)
	}
	fmt.Fprintf(w, "cluster: %d nodes over %d zones, %d+%d, repair rate %s\n", r.Nodes, r.Zones, r.K, r.M, rate)
	fmt.Fprintf(w, "fill: %d objects in the cluster (%s of %s fill objects PUT in %.0f s)\n",
		r.Objects, formatGiB(r.FillBytes), FormatBytes(r.ObjectSize), r.FillS)
	fmt.Fprintf(w, "killed %s holding %s of shards; %d objects had a shard on it\n\n", r.Victim, formatGiB(r.VictimUsed), r.ObjectsHit)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "time-to-repair (kill → all objects at %d shards)\t%.1f s\n", r.K+r.M, r.TimeToRepairS)
	if r.MetaTimeToRepairS > 0 {
		fmt.Fprintf(tw, "time-to-repair reported by the repair loop\t%.1f s\n", r.MetaTimeToRepairS)
	}
	fmt.Fprintf(tw, "shards re-created\t%d\n", r.ShardsRepaired)
	fmt.Fprintf(tw, "bytes re-created\t%s\n", formatGiB(r.BytesRepaired))
	fmt.Fprintf(tw, "repair throughput\t%.1f MB/s\n", r.RepairMBps)
	if r.CPUSeconds > 0 {
		fmt.Fprintf(tw, "cluster CPU, kill → whole (repair and foreground)\t%.1f s\n", r.CPUSeconds)
	}
	if r.RepairFailures > 0 || r.RepairConflicts > 0 {
		fmt.Fprintf(tw, "repair failures / conflicts\t%d / %d\n", r.RepairFailures, r.RepairConflicts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeForeground(w, r.FGSize, r.FGConcurrency, "no repair", r.FGBaseline, "during repair", r.FGRepair); err != nil {
		return err
	}
	if !r.FGRepairOverlap {
		fmt.Fprintln(w, "(repair finished before the during-repair window ended)")
	}
	fmt.Fprintf(w, "\nload average: %s at start, %s at kill, %s at end\n",
		formatLoad(r.LoadStart), formatLoad(r.LoadKill), formatLoad(r.LoadEnd))
	return nil
}

// writeForeground prints the foreground GET windows of a benchmark run:
// the one at rest and the one during the disturbance, a row each.
func writeForeground(w io.Writer, size int64, concurrency int, restName string, rest S3Stats, duringName string, during S3Stats) error {
	fmt.Fprintf(w, "\nforeground GET %s, %d in flight:\n", FormatBytes(size), concurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tops\tMB/s\tp50 ms\tp99 ms\tmax ms\terrors\t")
	for _, r := range []struct {
		name string
		s    S3Stats
	}{{restName, rest}, {duringName, during}} {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t\n", r.name, r.s.Ops, r.s.MBps, r.s.P50ms, r.s.P99ms, r.s.MaxMs, r.s.ErrorsTotal)
	}
	return tw.Flush()
}

func formatGiB(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

func formatLoad(l [3]float64) string { return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2]) }

// devCluster is a `shale dev` child process and what its cluster.json says.
type devCluster struct {
	exe, data string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the dev process has exited
	file      devcluster.File
	creds     struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
}

const (
	devStartTimeout = 90 * time.Second
	devStopGrace    = 30 * time.Second
	adminTimeout    = time.Minute
)

// startDevCluster runs `shale dev` on root/data with dev's output in
// root/dev.out, and returns once cluster.json is written (dev writes it
// after every node has registered).
func startDevCluster(ctx context.Context, cfg RepairConfig, root string) (*devCluster, error) {
	data := filepath.Join(root, "data")
	out, err := os.Create(filepath.Join(root, "dev.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child keeps its own copy
	args := []string{"dev", "--data", data, "--s3", "127.0.0.1:0",
		"--nodes", strconv.Itoa(cfg.Nodes), "--zones", strconv.Itoa(cfg.Zones),
		"--k", strconv.Itoa(cfg.K), "--m", strconv.Itoa(cfg.M),
		"--repair-rate", strconv.FormatInt(cfg.RepairRate, 10)}
	if cfg.RepairConcurrency > 0 {
		args = append(args, "--repair-concurrency", strconv.Itoa(cfg.RepairConcurrency))
	}
	cmd := exec.Command(cfg.Exe, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so stopping it cannot signal us; should this
	// process die, the cluster dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s dev: %w", cfg.Exe, err)
	}
	dc := &devCluster{exe: cfg.Exe, data: data, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(dc.done) }()

	deadline := time.Now().Add(devStartTimeout)
	for {
		f, err := devcluster.Read(data)
		if err == nil {
			dc.file = f
			break
		}
		if !errors.As(err, new(*fs.PathError)) { // read, but does not parse
			dc.stop()
			return nil, err
		}
		select {
		case <-dc.done:
			return nil, fmt.Errorf("shale dev exited before it was ready: %v", cmd.ProcessState)
		case <-ctx.Done():
			dc.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			dc.stop()
			return nil, fmt.Errorf("shale dev not ready within %v", devStartTimeout)
		}
	}
	b, err := os.ReadFile(dc.file.Credentials)
	if err == nil {
		err = json.Unmarshal(b, &dc.creds)
	}
	if err != nil {
		dc.stop()
		return nil, fmt.Errorf("credentials of the dev cluster: %w", err)
	}
	return dc, nil
}

func (dc *devCluster) S3() (string, string, string) {
	return dc.file.S3, dc.creds.AccessKey, dc.creds.SecretKey
}

// admin runs `shale admin ARGS --data DATA` and returns its stdout.
func (dc *devCluster) admin(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	full := append(append([]string{"admin"}, args...), "--data", dc.data)
	cmd := exec.CommandContext(ctx, dc.exe, full...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("shale %s: %w: %s", strings.Join(full, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (dc *devCluster) Status(ctx context.Context) (meta.Status, error) {
	var st meta.Status
	out, err := dc.admin(ctx, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("decode admin status: %w", err)
	}
	return st, nil
}

func (dc *devCluster) Out(ctx context.Context, node cluster.NodeID) error {
	_, err := dc.admin(ctx, "out", string(node))
	return err
}

// Kill SIGKILLs the node's pid from cluster.json, after checking that the
// pid still runs that node (never a recycled pid), and waits until it is
// gone.
func (dc *devCluster) Kill(ctx context.Context, node cluster.NodeID) error {
	pid := 0
	for _, n := range dc.file.Nodes {
		if n.ID == string(node) {
			pid = n.PID
		}
	}
	if pid <= 0 {
		return fmt.Errorf("kill %s: not in cluster.json", node)
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte("\x00node\x00")) || !bytes.Contains(cmdline, []byte("\x00"+string(node)+"\x00")) {
		return fmt.Errorf("kill %s: pid %d is not that node's process", node, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s (pid %d): %w", node, pid, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for procAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("kill %s: pid %d still alive after SIGKILL", node, pid)
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
	return nil
}

// CPU reads the user+system CPU time of the cluster's processes (meta
// replicas, gateway, nodes) from /proc/PID/stat, in seconds by pid; pids
// that cannot be read (a dead node) are left out.
func (dc *devCluster) CPU() map[int]float64 {
	pids := []int{dc.file.GatewayPID, dc.file.MetaPID}
	for _, m := range dc.file.Metas {
		pids = append(pids, m.PID)
	}
	for _, n := range dc.file.Nodes {
		pids = append(pids, n.PID)
	}
	out := map[int]float64{}
	for _, pid := range pids {
		if pid <= 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		if t, ok := parseStatCPU(string(b)); ok {
			out[pid] = t
		}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// parseStatCPU returns utime+stime of a /proc/PID/stat line, in seconds.
func parseStatCPU(s string) (float64, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// After the comm: state(0) ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime(11) stime(12).
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(u+st) / clockTicks, true
}

// procAlive reports whether pid runs and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// stop sends SIGTERM to dev (which stops its meta, nodes and gateway) and,
// after a grace, SIGKILLs dev's process group; it returns once dev exited.
func (dc *devCluster) stop() {
	select {
	case <-dc.done:
		return
	default:
	}
	_ = dc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-dc.done:
		return
	case <-time.After(devStopGrace):
	}
	_ = syscall.Kill(-dc.cmd.Process.Pid, syscall.SIGKILL)
	<-dc.done
}
