package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/bench"
)

func init() { benchCommands = append(benchCommands, newBenchRepairCmd) }

// benchRepairFlags are the flags of `shale bench repair`.
type benchRepairFlags struct {
	cfg                      bench.RepairConfig
	fill, objectSize, fgSize string
	repairRate               string
	asJSON, quiet            bool
}

func newBenchRepairCmd() *cobra.Command {
	var f benchRepairFlags
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Measure time-to-repair and repair MB/s for one dead node, and foreground GET latency with and without repair",
		Long: `Starts its own dev cluster (this binary's ` + "`shale dev`" + `, data under a new directory
inside --data, S3 on a fresh loopback port), PUTs --object-size objects until
the fullest node holds --fill bytes of shards (admin status "used"), and
measures foreground GETs of --fg-size objects (--fg-concurrency in flight,
--fg-duration) with no repair running.

It then SIGKILLs that node, marks it out at once (` + "`shale admin out`" + `), measures
foreground GETs again while repair runs, and polls admin status until every
object is back at k+m healthy shards and the repair queue is empty.

Reported: time-to-repair (kill to all-healthy; includes the repair loop's pass
interval and up to one status poll), shards and bytes re-created, repair MB/s
(10^6 bytes/s of re-created shards over time-to-repair), foreground p50/p99
without and with repair, and the load average (other work on the machine
skews every number).

The cluster is stopped at the end (SIGTERM to the dev process) and its
directory removed unless --keep.`,
		Example: `  shale bench repair --data /tmp/rb --fill 2GiB
  shale bench repair --data /tmp/rb --fill 512MiB --repair-rate 50MB --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchRepair(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Dir, "data", "", "directory under which the run's cluster directory is made (required)")
	fl.StringVar(&f.fill, "fill", "2GiB", "shard bytes the killed node must hold")
	fl.StringVar(&f.objectSize, "object-size", "8MiB", "size of the fill objects")
	fl.IntVar(&f.cfg.FillConcurrency, "fill-concurrency", 4, "PUTs in flight during the fill")
	fl.IntVar(&f.cfg.Nodes, "nodes", 8, "storage nodes of the dev cluster")
	fl.IntVar(&f.cfg.Zones, "zones", 4, "zones the nodes are spread over")
	fl.IntVar(&f.cfg.K, "k", 4, "data shards per stripe")
	fl.IntVar(&f.cfg.M, "m", 2, "parity shards per stripe")
	fl.StringVar(&f.repairRate, "repair-rate", "0", "repair throttle in bytes/s, e.g. 50MiB (0: unthrottled)")
	fl.StringVar(&f.fgSize, "fg-size", "1MiB", "size of the foreground GET objects")
	fl.IntVar(&f.cfg.FGConcurrency, "fg-concurrency", 2, "foreground GETs in flight")
	fl.IntVar(&f.cfg.RepairConcurrency, "repair-concurrency", 0, "objects the repair loop rebuilds at once (0: its default)")
	fl.DurationVar(&f.cfg.FGDuration, "fg-duration", 10*time.Second, "length of each foreground window")
	fl.DurationVar(&f.cfg.Timeout, "timeout", 30*time.Minute, "give up when repair has not finished this long after the kill")
	fl.BoolVar(&f.cfg.Keep, "keep", false, "keep the run's directory (data, logs) after the cluster stops")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object (time_to_repair_s, bytes_repaired, repair_mbps, fg_baseline, fg_during_repair, …)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress lines on stderr")
	return cmd
}

func runBenchRepair(cmd *cobra.Command, f benchRepairFlags) error {
	cfg := f.cfg
	if cfg.Dir == "" {
		return errors.New("bench repair: --data is required")
	}
	sizes := []struct {
		name string
		s    string
		dst  *int64
	}{{"--fill", f.fill, &cfg.Fill}, {"--object-size", f.objectSize, &cfg.ObjectSize},
		{"--fg-size", f.fgSize, &cfg.FGSize}, {"--repair-rate", f.repairRate, &cfg.RepairRate}}
	for _, s := range sizes {
		n, err := bench.ParseBytes(s.s)
		if err != nil {
			return fmt.Errorf("bench repair: %s: %w", s.name, err)
		}
		*s.dst = n
	}
	// Zero means "default" in RepairConfig; on the command line it is a mistake.
	if cfg.Fill <= 0 || cfg.ObjectSize <= 0 || cfg.FGSize <= 0 || cfg.FillConcurrency <= 0 ||
		cfg.FGConcurrency <= 0 || cfg.FGDuration <= 0 || cfg.Timeout <= 0 {
		return errors.New("bench repair: --fill, --object-size, --fg-size, the concurrencies, --fg-duration and --timeout must be positive")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("bench repair: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench repair: %w", err)
	}
	cfg.Exe = exe
	stderr := cmd.ErrOrStderr()
	if !f.quiet {
		last := ""
		cfg.Progress = func(p bench.RepairProgress) {
			if p.Phase != last && last != "" {
				fmt.Fprintln(stderr)
			}
			last = p.Phase
			fmt.Fprint(stderr, "\r\033[K"+benchRepairProgressLine(p))
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Repair(ctx, cfg)
	if !f.quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil && res.Victim == "" { // nothing was measured
		return fmt.Errorf("bench repair: %w", err)
	}
	out := cmd.OutOrStdout()
	if perr := printBenchRun(out, f.asJSON, res, func(w io.Writer) error { return bench.WriteRepairTable(w, res) }, res.Kept, res.Dir); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("bench repair: stopped early: %w", err)
	}
	return nil
}

// benchRepairProgressLine is the one-line status of a phase.
func benchRepairProgressLine(p bench.RepairProgress) string {
	secs := p.Elapsed.Seconds()
	switch p.Phase {
	case bench.RepairPhaseFill:
		mbps := 0.0
		if secs > 0 {
			mbps = float64(p.Bytes) / secs / 1e6
		}
		return fmt.Sprintf("fill: %d objects, %s PUT, %.1f MB/s; fullest node %s of %s, %.0fs",
			p.Objects, humanBytes(p.Bytes), mbps, humanBytes(p.MaxNodeUsed), humanBytes(p.Fill), secs)
	case bench.RepairPhaseBaseline:
		return "foreground GETs, no repair running…"
	}
	eta := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return d.Round(time.Second).String()
	}
	return fmt.Sprintf("repair: %.0fs  by healthy shards %s  healed %d/%d  ~%.1f MB/s  ETA ~%s  | loop: queue %d, %.1f MB/s, ETA %s, %d shards (%s)",
		secs, bench.FormatHealthy(p.ByHealthy), p.Healed, p.Hit, p.EstBytesPerS/1e6, eta(p.EstETA),
		p.Queue, p.RateBytesPerS/1e6, eta(p.ETA), p.ShardsRepaired, humanBytes(p.BytesRepaired))
}

// printBenchRun prints a benchmark's result: one JSON object (the result's
// fields and "cpu") with asJSON, else the CPU line, the table, and where
// the run's directory was kept.
func printBenchRun(out io.Writer, asJSON bool, res any, table func(io.Writer) error, kept bool, dir string) error {
	cpu := fmt.Sprintf("%s, %d logical CPUs", cpuModel(), runtime.NumCPU())
	if asJSON {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			return err
		}
		fields["cpu"] = cpu
		return printJSON(out, fields)
	}
	fmt.Fprintf(out, "cpu: %s, %s/%s\n", cpu, runtime.GOOS, runtime.GOARCH)
	if err := table(out); err != nil {
		return err
	}
	if kept {
		fmt.Fprintf(out, "kept: %s\n", dir)
	}
	return nil
}
