package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/bench"
)

func init() { benchCommands = append(benchCommands, newBenchRebalanceCmd) }

// benchRebalanceFlags are the flags of `shale bench rebalance`.
type benchRebalanceFlags struct {
	cfg                      bench.RebalanceConfig
	fill, objectSize, fgSize string
	asJSON, quiet            bool
}

func newBenchRebalanceCmd() *cobra.Command {
	var f benchRebalanceFlags
	cmd := &cobra.Command{
		Use:   "rebalance",
		Short: "Measure rebalance MB/s and CPU after adding nodes, and foreground GET latency before and during it",
		Long: `Starts its own dev cluster (this binary's ` + "`shale dev`" + `, data under a new directory
inside --data, S3 on a fresh loopback port), PUTs --object-size objects until
the fullest node holds --fill bytes of shards, and measures foreground GETs of
--fg-size objects (--fg-concurrency in flight, --fg-duration).

It then adds --add nodes, one per zone in turn, with ` + "`shale admin node add`" + ` (as an
operator would), measures foreground GETs again while the rebalancer moves
shards onto them, and polls admin status until the rebalancer is idle again.

Reported: the settle time (first add to the round's start: the rebalancer
waits for placement to hold still), the rebalance time (round start to idle;
includes the repair loop's pass interval and up to one status poll), shards
and bytes moved, rebalance MB/s (10^6 bytes/s of moved shards over the
rebalance time), the CPU seconds of every cluster process over it (also per
GiB moved), foreground p50/p99 before and during (the during window starts
with the round), and the load average (other work on the machine skews every
number).

The cluster is stopped at the end and its directory removed unless --keep.`,
		Example: `  shale bench rebalance --data /tmp/rb --fill 1GiB
  shale bench rebalance --data /tmp/rb --nodes 6 --zones 3 --add 3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchRebalance(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Dir, "data", "", "directory under which the run's cluster directory is made (required)")
	fl.StringVar(&f.fill, "fill", "1GiB", "shard bytes the fullest node must hold before the growth")
	fl.StringVar(&f.objectSize, "object-size", "4MiB", "size of the fill objects")
	fl.IntVar(&f.cfg.FillConcurrency, "fill-concurrency", 4, "PUTs in flight during the fill")
	fl.IntVar(&f.cfg.Nodes, "nodes", 6, "storage nodes of the dev cluster before the growth")
	fl.IntVar(&f.cfg.Zones, "zones", 3, "zones the nodes are spread over")
	fl.IntVar(&f.cfg.Add, "add", 0, "nodes to add, one per zone in turn (0: one per zone)")
	fl.IntVar(&f.cfg.K, "k", 4, "data shards per stripe")
	fl.IntVar(&f.cfg.M, "m", 2, "parity shards per stripe")
	fl.StringVar(&f.fgSize, "fg-size", "1MiB", "size of the foreground GET objects")
	fl.IntVar(&f.cfg.FGConcurrency, "fg-concurrency", 2, "foreground GETs in flight")
	fl.IntVar(&f.cfg.RepairConcurrency, "repair-concurrency", 0, "objects the repair loop (and the rebalancer) works on at once (0: its default)")
	fl.DurationVar(&f.cfg.FGDuration, "fg-duration", 10*time.Second, "length of each foreground window")
	fl.DurationVar(&f.cfg.Timeout, "timeout", 30*time.Minute, "give up when the rebalance has not finished this long after the first add")
	fl.BoolVar(&f.cfg.Keep, "keep", false, "keep the run's directory (data, logs) after the cluster stops")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object (rebalance_s, bytes_moved, rebalance_mbps, cpu_s_per_gib_moved, fg_baseline, fg_during_rebalance, …)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress lines on stderr")
	return cmd
}

func runBenchRebalance(cmd *cobra.Command, f benchRebalanceFlags) error {
	cfg := f.cfg
	if cfg.Dir == "" {
		return errors.New("bench rebalance: --data is required")
	}
	for _, s := range []struct {
		name, s string
		dst     *int64
	}{{"--fill", f.fill, &cfg.Fill}, {"--object-size", f.objectSize, &cfg.ObjectSize}, {"--fg-size", f.fgSize, &cfg.FGSize}} {
		n, err := bench.ParseBytes(s.s)
		if err != nil {
			return fmt.Errorf("bench rebalance: %s: %w", s.name, err)
		}
		*s.dst = n
	}
	if cfg.Fill <= 0 || cfg.ObjectSize <= 0 || cfg.FGSize <= 0 || cfg.FillConcurrency <= 0 ||
		cfg.FGConcurrency <= 0 || cfg.FGDuration <= 0 || cfg.Timeout <= 0 || cfg.Add < 0 {
		return errors.New("bench rebalance: --fill, --object-size, --fg-size, the concurrencies, --fg-duration and --timeout must be positive")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("bench rebalance: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench rebalance: %w", err)
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
		cfg.MoveProgress = func(p bench.RebalanceProgress) {
			if last != bench.RebalancePhaseMove {
				fmt.Fprintln(stderr)
				last = bench.RebalancePhaseMove
			}
			fmt.Fprint(stderr, "\r\033[K"+benchRebalanceProgressLine(p))
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Rebalance(ctx, cfg)
	if !f.quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil && res.RebalanceS == 0 { // nothing was measured
		return fmt.Errorf("bench rebalance: %w", err)
	}
	out := cmd.OutOrStdout()
	if perr := printBenchRun(out, f.asJSON, res, func(w io.Writer) error { return bench.WriteRebalanceTable(w, res) }, res.Kept, res.Dir); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("bench rebalance: stopped early: %w", err)
	}
	return nil
}

// benchRebalanceProgressLine is the one-line status of the rebalance.
func benchRebalanceProgressLine(p bench.RebalanceProgress) string {
	eta := "-"
	if p.ETASeconds > 0 {
		eta = (time.Duration(p.ETASeconds * float64(time.Second))).Round(time.Second).String()
	}
	return fmt.Sprintf("rebalance: %.0fs  %s  %d objects (%s) to move  %.1f MB/s  ETA %s  moved %s",
		p.Elapsed.Seconds(), p.State, p.ObjectsToMove, humanBytes(p.BytesToMove), p.RateBytesPerSec/1e6, eta, humanBytes(p.Moved))
}
