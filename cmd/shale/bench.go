package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/bench"
	"github.com/shale-store/shale/erasure"
)

// benchCommands holds the constructors of the `shale bench` subcommands;
// files of this package add theirs (s3, repair, …) in an init function.
var benchCommands []func() *cobra.Command

func init() {
	commands = append(commands, newBenchCmd)
	benchCommands = append(benchCommands, newBenchEncodeCmd)
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks: erasure encode/decode, S3 load, repair time",
	}
	for _, c := range benchCommands {
		cmd.AddCommand(c())
	}
	return cmd
}

func newBenchEncodeCmd() *cobra.Command {
	var (
		k, m      int
		blockSize string
		size      string
		runs      int
		procs     []int
		paths     []string
		asJSON    bool
		quiet     bool
	)
	cmd := &cobra.Command{
		Use:   "encode",
		Short: "Measure the erasure codec: raw Reed-Solomon, the encode pipeline, decode, degraded decode, memcpy",
		Long: `Measures, for each coding and block size at GOMAXPROCS 1 and all cores,
the throughput in GB/s of object bytes of: raw (Reed-Solomon parity only),
pipeline (Encode: read copy, encode, checksums, records, writer goroutines),
decode (data shards only), decode_degraded (m data shards missing) and memcpy.
Each number is the median of --runs interleaved runs. With --k and --m only
that coding is measured; with --block-size only that block size.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := bench.EncodeConfig{Runs: runs, Procs: procs, Paths: paths}
			switch {
			case k > 0:
				cfg.Codings = []bench.Coding{{K: k, M: m}}
			case m > 0:
				return fmt.Errorf("bench encode: --m needs --k")
			}
			if blockSize != "" {
				bs, err := bench.ParseBytes(blockSize)
				if err != nil {
					return fmt.Errorf("bench encode: --block-size: %w", err)
				}
				cfg.BlockSizes = []int{int(bs)}
			}
			n, err := bench.ParseBytes(size)
			if err != nil {
				return fmt.Errorf("bench encode: --size: %w", err)
			}
			cfg.Size = n
			stderr := cmd.ErrOrStderr()
			if !quiet {
				cfg.Progress = func(p bench.EncodeProgress) {
					l := p.Last
					fmt.Fprintf(stderr, "\r\033[K[%d/%d] %d+%d %s procs %d %-15s %6.2f GB/s",
						p.Done, p.Total, l.K, l.M, bench.FormatBytes(int64(l.BlockSize)), l.Procs, l.Path, l.GBps)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			ms, err := bench.Encode(ctx, cfg)
			if !quiet {
				fmt.Fprint(stderr, "\r\033[K")
			}
			if err != nil {
				return fmt.Errorf("bench encode: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, ms)
			}
			return printEncodeTable(out, ms)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&k, "k", 0, "data shards (with --m: measure only this coding; default: 4+2, 8+3, 10+4, 12+4)")
	fl.IntVar(&m, "m", 0, "parity shards (with --k)")
	fl.StringVar(&blockSize, "block-size", "", "block size per shard, e.g. 256KiB (default: 64KiB, 256KiB, 1MiB; the codec default is "+
		bench.FormatBytes(erasure.DefaultBlockSize)+")")
	fl.StringVar(&size, "size", "64MiB", "object size per run")
	fl.IntVar(&runs, "runs", 5, "runs per measurement (the median is reported)")
	fl.IntSliceVar(&procs, "procs", nil, fmt.Sprintf("GOMAXPROCS values to measure at (default 1,%d)", runtime.NumCPU()))
	fl.StringSliceVar(&paths, "paths", nil, "paths to measure (default all: raw, pipeline, decode, decode_degraded, memcpy)")
	fl.BoolVar(&asJSON, "json", false, "print a JSON array, one object per measurement (k, m, block_size, procs, path, gbps, samples, size_bytes)")
	fl.BoolVar(&quiet, "quiet", false, "no progress line on stderr")
	return cmd
}

// printEncodeTable prints the CPU and the table of measurements.
func printEncodeTable(w io.Writer, ms []bench.Measurement) error {
	fmt.Fprintf(w, "cpu: %s, %d logical CPUs, %s/%s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	return bench.WriteEncodeTable(w, ms)
}

// cpuModel is the "model name" line of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if key, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
