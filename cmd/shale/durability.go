package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/durability"
)

func init() { commands = append(commands, newDurabilityCmd) }

type durabilityFlags struct {
	k, m, nodes        int
	afr                float64
	repair             time.Duration
	model              string
	serial             bool
	domainRate         float64
	domains, perDomain int
	stripes            int
	zones, racks       int
	trials             int
	weibull            float64
	rackRate           float64
	dataPerNode        float64
	bandwidth          float64
	seed               uint64
	timeLimit          time.Duration
	json               bool
	data, metaAddr     string
	secretFile         string
}

func newDurabilityCmd() *cobra.Command {
	var f durabilityFlags
	cmd := &cobra.Command{
		Use:   "durability",
		Short: "Expected annual data loss (and its nines) for a coding, a cluster and a repair time",
		Long: `durability turns a coding k+m, the cluster's nodes and domains, a node's annual
failure rate (AFR) and the repair time into the probability of losing data in a
year, by several models: an exact Markov chain per stripe, the chain scaled to
the whole cluster, Backblaze's binomial model, and a Monte Carlo simulation of
the cluster with the real placement. With --data or --meta the defaults come
from a running cluster (its k+m, nodes, zones and measured repair rate).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.data != "" || f.metaAddr != "" {
				if err := durabilityDefaultsFromCluster(cmd.Context(), cmd, &f); err != nil {
					return err
				}
			}
			return runDurability(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.k, "k", 4, "data shards per stripe")
	fl.IntVar(&f.m, "m", 2, "parity shards per stripe")
	fl.IntVar(&f.nodes, "nodes", 12, "nodes in the cluster")
	fl.Float64Var(&f.afr, "afr", 0.02, "annual failure rate of one node, a fraction in (0,1)")
	fl.DurationVar(&f.repair, "repair", 24*time.Hour, "time to repair a failed node: detection plus rebuild")
	fl.StringVar(&f.model, "model", "all", "markov, cluster, binomial, montecarlo or all")
	fl.BoolVar(&f.serial, "serial", false, "repair one shard of a stripe at a time (default: in parallel)")
	fl.Float64Var(&f.domainRate, "domain-rate", 0, "correlated failures: whole-domain failures per domain per year")
	fl.IntVar(&f.domains, "domains", 0, "failure domains (racks) for --domain-rate (default: --zones × --racks)")
	fl.IntVar(&f.perDomain, "per-domain", 0, "most shards of a stripe in one domain (default: from k+m and --domains)")
	fl.IntVar(&f.stripes, "stripes", 100_000, "stripes in the cluster (cluster and Monte Carlo models)")
	fl.IntVar(&f.zones, "zones", 3, "zones (Monte Carlo topology)")
	fl.IntVar(&f.racks, "racks", 2, "racks per zone (Monte Carlo topology)")
	fl.IntVar(&f.trials, "trials", 2000, "simulated years (Monte Carlo)")
	fl.Float64Var(&f.weibull, "weibull", 0, "Weibull shape of node lifetimes (0 or 1: exponential)")
	fl.Float64Var(&f.rackRate, "rack-rate", 0, "Monte Carlo bursts: failures per rack per year taking all its nodes down")
	fl.Float64Var(&f.dataPerNode, "data-per-node", 0, "bytes per node; with --repair-bandwidth makes Monte Carlo repair bandwidth-limited")
	fl.Float64Var(&f.bandwidth, "repair-bandwidth", 0, "cluster-wide repair bandwidth, bytes/s")
	fl.Uint64Var(&f.seed, "seed", 1, "Monte Carlo seed")
	fl.DurationVar(&f.timeLimit, "time-limit", 60*time.Second, "stop the Monte Carlo simulation after this long")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	fl.StringVar(&f.data, "data", "", "a dev cluster's data dir: take defaults from the running cluster")
	fl.StringVar(&f.metaAddr, "meta", "", "a meta address: take defaults from the running cluster")
	fl.StringVar(&f.secretFile, "secret-file", "", "cluster secret (with --meta)")
	cmd.AddCommand(newDurabilityTableCmd())
	return cmd
}

func (f durabilityFlags) params() durability.Params {
	domains := f.domains
	if domains == 0 {
		domains = f.zones * f.racks
	}
	return durability.Params{
		K: f.k, M: f.m, Nodes: f.nodes, AFR: f.afr, Repair: f.repair,
		Parallel: !f.serial, Stripes: int64(f.stripes),
		DomainRate: f.domainRate, Domains: domains, PerDomain: f.perDomain,
	}
}

func runDurability(ctx context.Context, out, progress io.Writer, f durabilityFlags) error {
	p := f.params()
	if err := p.Validate(); err != nil {
		return err
	}
	models := strings.Split(f.model, ",")
	if f.model == "all" {
		models = []string{"markov", "cluster", "binomial", "montecarlo"}
	}
	var results []any
	var rows [][]string
	for _, name := range models {
		var r durability.Result
		var extra string
		switch name {
		case "markov":
			res, err := durability.Markov(p)
			if err != nil {
				return err
			}
			r = res
			results = append(results, res)
		case "cluster":
			res, err := durability.Cluster(p)
			if err != nil {
				return err
			}
			r = res
			results = append(results, res)
		case "binomial":
			res, err := durability.Binomial(p)
			if err != nil {
				return err
			}
			r = res
			results = append(results, res)
		case "montecarlo":
			deadline := time.Now().Add(f.timeLimit)
			last := time.Time{}
			res, err := durability.MonteCarlo(durability.MonteCarloConfig{
				Params: p, Zones: f.zones, RacksPerZone: f.racks, StripeCount: f.stripes,
				Trials: f.trials, WeibullShape: f.weibull, RackRate: f.rackRate,
				DataPerNode: f.dataPerNode, RepairBandwidth: f.bandwidth, Seed: f.seed,
				Stop: func() bool { return time.Now().After(deadline) || ctx.Err() != nil },
				Progress: func(done, total int) {
					if time.Since(last) > 200*time.Millisecond || done == total {
						last = time.Now()
						fmt.Fprintf(progress, "\rmonte carlo: %d/%d simulated years ", done, total)
						if done == total {
							fmt.Fprintln(progress)
						}
					}
				},
			})
			if err != nil {
				return err
			}
			r = res.Result
			results = append(results, res)
			extra = fmt.Sprintf("%d years, %d node failures, %.3g lost/stripe/yr", res.Trials, res.NodeFailures, res.LossPerStripe)
		default:
			return fmt.Errorf("unknown model %q (markov, cluster, binomial, montecarlo or all)", name)
		}
		mttdl := "-"
		if r.MTTDLYears > 0 {
			mttdl = fmt.Sprintf("%.3g", r.MTTDLYears)
		}
		ci := ""
		if r.Interval != nil {
			ci = fmt.Sprintf(" [%.2g, %.2g]", r.Interval[0], r.Interval[1])
		}
		note := strings.TrimSpace(strings.Join([]string{extra, r.Note}, " "))
		rows = append(rows, []string{r.Model, fmt.Sprintf("%.3g%s", r.AnnualLossProbability, ci), fmt.Sprintf("%.2f", r.Nines), mttdl, note})
	}
	if f.json {
		return printJSON(out, map[string]any{"params": p, "results": results})
	}
	fmt.Fprintf(out, "%d+%d on %d nodes, AFR %.3g%%, repair %s (%s), overhead %.2fx\n\n",
		p.K, p.M, p.Nodes, p.AFR*100, p.Repair, map[bool]string{true: "parallel", false: "serial"}[p.Parallel], float64(p.K+p.M)/float64(p.K))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tANNUAL LOSS\tNINES\tMTTDL (years)\tNOTE")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// newDurabilityTableCmd prints the comparison table of docs/DURABILITY.md.
func newDurabilityTableCmd() *cobra.Command {
	var nodes int
	return &cobra.Command{
		Use:   "table",
		Short: "Print the markdown table of codings × AFR × repair time used in docs/DURABILITY.md",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return durabilityTable(cmd.OutOrStdout(), nodes)
		},
	}
}

func durabilityTable(w io.Writer, nodes int) error {
	if nodes == 0 {
		nodes = 100
	}
	codings := [][2]int{{1, 2}, {4, 2}, {8, 3}, {10, 4}, {17, 3}}
	repairs := []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	for _, corr := range []bool{false, true} {
		title := "Independent failures"
		if corr {
			title = "With correlated rack failures (10 racks, each failing whole 0.05×/year)"
		}
		fmt.Fprintf(w, "\n### %s — nines per stripe (Markov, parallel repair)\n\n", title)
		fmt.Fprint(w, "| coding | overhead |")
		for _, afr := range []float64{0.01, 0.02, 0.04} {
			for _, r := range repairs {
				fmt.Fprintf(w, " AFR %g%%, %s |", afr*100, shortDur(r))
			}
		}
		fmt.Fprint(w, "\n|---|---|")
		for i := 0; i < 9; i++ {
			fmt.Fprint(w, "---|")
		}
		fmt.Fprintln(w)
		for _, c := range codings {
			name := fmt.Sprintf("%d+%d", c[0], c[1])
			if c[0] == 1 {
				name = "3-way replication"
			}
			fmt.Fprintf(w, "| %s | %.2fx |", name, float64(c[0]+c[1])/float64(c[0]))
			for _, afr := range []float64{0.01, 0.02, 0.04} {
				for _, r := range repairs {
					p := durability.Params{K: c[0], M: c[1], AFR: afr, Repair: r, Parallel: true, Nodes: nodes}
					if corr {
						p.DomainRate, p.Domains = 0.05, 10
					}
					res, err := durability.Markov(p)
					if err != nil {
						return err
					}
					fmt.Fprintf(w, " %.1f |", res.Nines)
				}
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

func shortDur(d time.Duration) string {
	switch {
	case d%(7*24*time.Hour) == 0:
		return fmt.Sprintf("%dw", d/(7*24*time.Hour))
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	default:
		return d.String()
	}
}

// durabilityDefaultsFromCluster is replaced when the cluster commands land.
var _ = os.Stderr
