package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/bench"
)

func init() { benchCommands = append(benchCommands, newBenchS3Cmd) }

// benchS3Flags are the flags of `shale bench s3`.
type benchS3Flags struct {
	cfg           bench.S3Config
	size          string
	asJSON, quiet bool
}

func newBenchS3Cmd() *cobra.Command {
	var f benchS3Flags
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "Load an S3 endpoint: PUT, GET or mixed, and report MB/s, ops/s, latency percentiles and errors",
		Long: `Runs --concurrency workers, each issuing S3 requests back to back through
aws-sdk-go-v2 (path-style, SigV4), until --duration has passed or --count
requests have started; requests in flight then finish. Ops are not retried:
a SlowDown or a timeout counts as an error of its kind.

  put    PutObject of --size bytes to a new key each time
  get    GetObject of one of --keys objects uploaded first, read to the end
  mixed  --get-percent gets, the rest puts

The bucket is created when missing. Afterwards every key the run wrote is
deleted (and the bucket, if the run created it) unless --keep.

--checksum when_supported (the SDK default) makes the SDK compute a CRC32 of
every PUT body and validate GET checksums the server returns; when_required
skips both, which saves client CPU on large objects.

MB/s is 10^6 bytes per second of the run's wall time; latency is time to
last byte of successful ops (percentiles within 1%).

Credentials default to AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else
SHALE_ACCESS_KEY/SHALE_SECRET_KEY.`,
		Example: `  shale bench s3 --endpoint http://127.0.0.1:9000 --access AK --secret SK --op put --size 1MiB --concurrency 8 --duration 10s
  shale bench s3 --endpoint https://127.0.0.1:9443 --insecure --op get --size 16MiB --keys 8 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchS3(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Endpoint, "endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:9000 (required)")
	fl.StringVar(&f.cfg.AccessKey, "access", envFirst("AWS_ACCESS_KEY_ID", "SHALE_ACCESS_KEY"), "access key")
	fl.StringVar(&f.cfg.SecretKey, "secret", envFirst("AWS_SECRET_ACCESS_KEY", "SHALE_SECRET_KEY"), "secret key")
	fl.StringVar(&f.cfg.Region, "region", "us-east-1", "region of the signature scope")
	fl.StringVar(&f.cfg.Bucket, "bucket", "shale-bench", "bucket (created if missing)")
	fl.StringVar(&f.cfg.Op, "op", bench.S3OpPut, "workload: put, get or mixed")
	fl.StringVar(&f.size, "size", "1MiB", "object size, e.g. 4KiB, 1MiB, 16MiB")
	fl.IntVar(&f.cfg.Concurrency, "concurrency", 8, "workers (requests in flight)")
	fl.DurationVar(&f.cfg.Duration, "duration", 10*time.Second, "run time: no request starts after it")
	fl.Int64Var(&f.cfg.Count, "count", 0, "at most this many requests (0: bounded by --duration only)")
	fl.IntVar(&f.cfg.Keys, "keys", 32, "distinct objects that get and mixed read, uploaded before the run")
	fl.IntVar(&f.cfg.GetPercent, "get-percent", 50, "share of gets in mixed, 1-100")
	fl.StringVar(&f.cfg.Prefix, "prefix", "shale-bench/", "key prefix (each run adds its own run id)")
	fl.BoolVar(&f.cfg.Insecure, "insecure", false, "skip TLS certificate verification (self-signed endpoints)")
	fl.StringVar(&f.cfg.Checksum, "checksum", bench.S3ChecksumWhenSupported,
		"SDK request checksums: when_supported (SDK default: CRC32 on every PUT) or when_required (none for PUT/GET)")
	fl.BoolVar(&f.cfg.UnsignedPayload, "unsigned-payload", false, "send PUT bodies as UNSIGNED-PAYLOAD (no payload SHA-256 on either side; what the CPU accounting of issue 13 measures)")
	fl.DurationVar(&f.cfg.OpTimeout, "timeout", time.Minute, "per-request timeout (counted as error kind timeout)")
	fl.BoolVar(&f.cfg.Keep, "keep", false, "keep the written objects (and a created bucket) instead of deleting them")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object (op, size, concurrency, duration_s, ops, bytes, mbps, ops_per_s, p50_ms, p90_ms, p99_ms, max_ms, errors{kind: count}, errors_total, …)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress line on stderr")
	return cmd
}

// envFirst is the first non-empty value of the named environment variables.
func envFirst(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func runBenchS3(cmd *cobra.Command, f benchS3Flags) error {
	cfg := f.cfg
	if cfg.Endpoint == "" {
		return errors.New("bench s3: --endpoint is required")
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return errors.New("bench s3: --access and --secret are required (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
	}
	size, err := bench.ParseBytes(f.size)
	if err != nil {
		return fmt.Errorf("bench s3: --size: %w", err)
	}
	if size <= 0 {
		return fmt.Errorf("bench s3: --size must be at least 1 byte")
	}
	cfg.Size = size
	// Zero means "default" in S3Config; on the command line it is a mistake.
	if cfg.Concurrency <= 0 || cfg.Duration <= 0 || cfg.Keys <= 0 || cfg.GetPercent <= 0 || cfg.OpTimeout <= 0 {
		return errors.New("bench s3: --concurrency, --duration, --keys, --get-percent and --timeout must be positive")
	}
	stderr := cmd.ErrOrStderr()
	if !f.quiet {
		cfg.Progress = func(p bench.S3Progress) {
			fmt.Fprint(stderr, "\r\033[K"+benchS3ProgressLine(p))
			if p.Final && p.Phase != bench.S3PhaseRun {
				fmt.Fprintln(stderr)
			}
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	res, err := bench.S3(ctx, cfg)
	if !f.quiet {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil && res.Op == "" { // nothing was measured
		return fmt.Errorf("bench s3: %w", err)
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		if perr := printJSON(out, res); perr != nil {
			return perr
		}
	} else {
		check := "sdk default (when_supported)"
		if res.Checksum == bench.S3ChecksumWhenRequired {
			check = "when_required"
		}
		fmt.Fprintf(out, "endpoint %s, bucket %s, checksum %s", cfg.Endpoint, cfg.Bucket, check)
		if res.Keys > 0 {
			fmt.Fprintf(out, ", %d keys", res.Keys)
		}
		fmt.Fprintln(out)
		if perr := bench.WriteS3Table(out, res); perr != nil {
			return perr
		}
	}
	if err != nil {
		return fmt.Errorf("bench s3: stopped early: %w", err)
	}
	return nil
}

// benchS3ProgressLine is the one-line status of a phase.
func benchS3ProgressLine(p bench.S3Progress) string {
	secs := p.Elapsed.Seconds()
	switch p.Phase {
	case bench.S3PhasePrepare:
		return fmt.Sprintf("prepare: uploaded %d/%d objects, %.1f MB/s, %.1fs", p.Ops, p.Total, p.MBps(), secs)
	case bench.S3PhaseCleanup:
		s := fmt.Sprintf("cleanup: deleted %d/%d keys, %.1fs", p.Ops, p.Total, secs)
		if p.Errors > 0 {
			s += fmt.Sprintf(", %d failed", p.Errors)
		}
		return s
	}
	ops := 0.0
	if secs > 0 {
		ops = float64(p.Ops) / secs
	}
	s := fmt.Sprintf("run: %.1fs  %d ops  %.1f MB/s  %.1f ops/s", secs, p.Ops, p.MBps(), ops)
	if p.Errors > 0 {
		s += fmt.Sprintf("  %d errors", p.Errors)
	}
	return s
}
