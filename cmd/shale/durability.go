package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/durability"
	"github.com/shale-store/shale/internal/devcluster"
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

	// The metadata's raft group: replicas, the time to rebuild one from a
	// snapshot, and (from a cluster file) how many replicas each zone holds
	// (nil: spread over --zones).
	metaReplicas  int
	metaRebuild   time.Duration
	metaPerDomain []int
	metaSource    string // where metaReplicas came from, for the header
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
from a running cluster (its k+m, nodes, zones and measured repair rate).

Every object needs its metadata, so the figures include the metadata's raft
group: --meta-replicas voters, spread over the zones (one per zone while there
are enough), each failing at the node AFR (and with --domain-rate, all those
in a zone at once), each rebuilt from a snapshot in --meta-rebuild while a
majority lives. The metadata counts as lost when a majority — floor(r/2)+1 of
r — is lost before a replacement is rebuilt: raft acknowledges a write once a
majority holds it, so that is the event that can lose acknowledged metadata
(the group also stops until an operator recovers it); losing all r loses every
object. The table shows the group's figure and, beside each data model, the
combined chance 1-(1-P_data)(1-P_meta). With --data the replicas and their
zones come from DATA/cluster.json.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.data != "" || f.metaAddr != "" {
				if err := durabilityMetaFromCluster(cmd, &f); err != nil {
					return err
				}
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
	fl.StringVar(&f.metaAddr, "meta", "", "meta replicas' addresses (comma-separated): take defaults from the running cluster")
	fl.StringVar(&f.secretFile, "secret-file", "", "cluster secret (with --meta)")
	fl.IntVar(&f.metaReplicas, "meta-replicas", 3, "meta raft replicas (default with --data: the cluster file's; with --meta: the addresses given)")
	fl.DurationVar(&f.metaRebuild, "meta-rebuild", time.Hour, "time to rebuild a lost meta replica: detection, adding a voter and restoring the leader's snapshot")
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

// metaParams is the metadata group the flags describe: replicas spread as
// evenly as they go over --zones unless a cluster file said where they are.
func (f durabilityFlags) metaParams() durability.MetaParams {
	per := f.metaPerDomain
	if per == nil {
		per = spreadReplicas(f.metaReplicas, f.zones)
	}
	return durability.MetaParams{
		Replicas: f.metaReplicas, PerDomain: per, AFR: f.afr, Rebuild: f.metaRebuild,
		Parallel: !f.serial, DomainRate: f.domainRate,
	}
}

// spreadReplicas spreads r replicas as evenly as they go over zones: one per
// zone while there are enough. The counts per zone that hold any.
func spreadReplicas(r, zones int) []int {
	if r < 1 {
		return nil
	}
	zones = min(max(zones, 1), r)
	per := make([]int, zones)
	for i := range per {
		per[i] = r / zones
		if i < r%zones {
			per[i]++
		}
	}
	return per
}

// durabilityMetaFromCluster sets the meta replicas the operator did not give
// from the cluster: with --data, DATA/cluster.json's replicas and their zones
// (a file from before replicas, with only a meta address, is one replica);
// with --meta, the addresses given.
func durabilityMetaFromCluster(cmd *cobra.Command, f *durabilityFlags) error {
	if cmd.Flags().Changed("meta-replicas") {
		f.metaSource = "--meta-replicas"
		return nil
	}
	if f.data != "" && f.metaAddr == "" {
		cf, err := devcluster.Read(f.data)
		if err != nil {
			return err
		}
		f.metaReplicas, f.metaPerDomain = metaReplicasOf(cf)
		if f.metaReplicas == 0 {
			return fmt.Errorf("%s names no meta replica: give --meta-replicas", filepath.Join(f.data, devcluster.FileName))
		}
		f.metaSource = devcluster.FileName
		return nil
	}
	f.metaReplicas = len(splitAddrs(f.metaAddr))
	f.metaSource = "--meta addresses"
	return nil
}

// metaReplicasOf counts a cluster file's meta replicas and how many each
// zone holds; a replica without a zone is a domain of its own.
func metaReplicasOf(cf devcluster.File) (int, []int) {
	if len(cf.Metas) == 0 {
		if cf.Meta == "" {
			return 0, nil
		}
		return 1, []int{1}
	}
	var per []int
	at := map[string]int{}
	for _, m := range cf.Metas {
		i, ok := at[m.Zone]
		if !ok || m.Zone == "" {
			at[m.Zone] = len(per)
			per = append(per, 1)
			continue
		}
		per[i]++
	}
	return len(cf.Metas), per
}

func runDurability(ctx context.Context, out, progress io.Writer, f durabilityFlags) error {
	p := f.params()
	if err := p.Validate(); err != nil {
		return err
	}
	mp := f.metaParams()
	if err := mp.Validate(); err != nil {
		return err
	}
	mres, err := durability.Meta(mp)
	if err != nil {
		return err
	}
	models := strings.Split(f.model, ",")
	if f.model == "all" {
		models = []string{"markov", "cluster", "binomial", "montecarlo"}
	}
	var results []any
	var rows [][]string
	var combined []combinedFigure
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
		// A simulation that saw no loss only bounds the probability: combine
		// the bound, as its nines do.
		pd := r.AnnualLossProbability
		bound := pd == 0 && r.Interval != nil
		if bound {
			pd = r.Interval[1]
		}
		pc := durability.Combine(pd, mres.AnnualLossProbability)
		combined = append(combined, combinedFigure{Model: r.Model, Data: pd, Bound: bound, AnnualLossProbability: pc, Nines: durability.Nines(pc)})
		lt, ge := "", ""
		if bound {
			lt, ge = "< ", "≥ "
		}
		rows = append(rows, []string{r.Model, fmt.Sprintf("%.3g%s", r.AnnualLossProbability, ci), fmt.Sprintf("%.2f", r.Nines), mttdl,
			fmt.Sprintf("%s%.3g", lt, pc), fmt.Sprintf("%s%.2f", ge, durability.Nines(pc)), note})
	}
	summary, dominant, err := metaSummary(mp, mres, combined, max(f.zones, len(mp.PerDomain)))
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(out, map[string]any{"params": p, "results": results,
			"meta_params": mp, "meta": mres, "combined": combined, "dominant": dominant, "summary": summary})
	}
	mnote := mres.Note
	if mres.LostAt < mp.Replicas {
		mnote += fmt.Sprintf("; all %d lost: %.3g (%.2f nines)", mp.Replicas, mres.AllLost, mres.AllLostNines)
	}
	rows = append(rows, []string{mres.Model, fmt.Sprintf("%.3g", mres.AnnualLossProbability), fmt.Sprintf("%.2f", mres.Nines),
		fmt.Sprintf("%.3g", mres.MTTDLYears), "-", "-", mnote})

	fmt.Fprintf(out, "%d+%d on %d nodes, AFR %.3g%%, repair %s (%s), overhead %.2fx\n",
		p.K, p.M, p.Nodes, p.AFR*100, p.Repair, map[bool]string{true: "parallel", false: "serial"}[p.Parallel], float64(p.K+p.M)/float64(p.K))
	rebuild := ""
	if mp.Rebuilds() {
		rebuild = fmt.Sprintf(", rebuild %s", mp.Rebuild)
	}
	fmt.Fprintf(out, "metadata: %s%s; counted lost when %s\n\n", metaGroup(mp, f.metaSource), rebuild, metaEvent(mp))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tANNUAL LOSS\tNINES\tMTTDL (years)\tCOMBINED LOSS\tCOMBINED NINES\tNOTE")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "\nCOMBINED = data or metadata lost: 1-(1-P_data)(1-P_meta).\n%s\n", summary)
	return err
}

// combinedFigure is one data model's figure joined with the metadata's.
type combinedFigure struct {
	Model string `json:"model"`
	// Data is the data's probability combined: the model's, or a simulation's
	// 95% upper bound when it saw no loss (Bound).
	Data                  float64 `json:"data_annual_loss_probability"`
	Bound                 bool    `json:"data_is_upper_bound,omitempty"`
	AnnualLossProbability float64 `json:"annual_loss_probability"`
	Nines                 float64 `json:"nines"`
}

// metaGroup describes the replicas and their zones.
func metaGroup(mp durability.MetaParams, source string) string {
	s := fmt.Sprintf("%d raft replica%s", mp.Replicas, plural(mp.Replicas))
	if mp.Replicas > 1 {
		if len(mp.PerDomain) == mp.Replicas {
			s += fmt.Sprintf(" in %d zones", len(mp.PerDomain))
		} else {
			s += fmt.Sprintf(" in %d zones (%s per zone)", len(mp.PerDomain), joinInts(mp.PerDomain))
		}
	}
	if source != "" {
		s += " (from " + source + ")"
	}
	return s
}

// metaEvent says which event the metadata's figure counts.
func metaEvent(mp durability.MetaParams) string {
	if mp.Replicas == 1 {
		return "its one replica is lost: that loses every object"
	}
	when := "before one is rebuilt"
	if !mp.Rebuilds() {
		when = "(one lost leaves no majority to rebuild from)"
	}
	if mp.Quorum() == mp.Replicas {
		return fmt.Sprintf("both are lost %s: that loses every object", when)
	}
	return fmt.Sprintf("%d of %d (a majority) are lost %s, which can lose acknowledged metadata; all %d lose every object",
		mp.Quorum(), mp.Replicas, when, mp.Replicas)
}

// metaSummary says whether the metadata or the data decides the combined
// figure, comparing the metadata with the data's worst model, and what more
// replicas (spread over zones) would give when the metadata decides.
func metaSummary(mp durability.MetaParams, mres durability.MetaResult, combined []combinedFigure, zones int) (summary, dominant string, err error) {
	// The data's worst figure, from the models that estimate one: a
	// simulation that saw no loss only bounds it from above.
	var worst *combinedFigure
	for i, c := range combined {
		if !c.Bound && (worst == nil || c.Data > worst.Data) {
			worst = &combined[i]
		}
	}
	group := fmt.Sprintf("metadata (%d replica%s)", mp.Replicas, plural(mp.Replicas))
	var data string
	switch {
	case worst != nil:
		data = fmt.Sprintf("the data's worst model, %s, %.2f", worst.Model, durability.Nines(worst.Data))
		if mres.AnnualLossProbability <= worst.Data {
			return fmt.Sprintf("%s: %.2f nines, more than %s: the data's loss decides the combined figure",
				group, mres.Nines, data), "data", nil
		}
	default:
		bound := combined[0]
		data = fmt.Sprintf("the data's ≥ %.2f (%s saw no loss)", durability.Nines(bound.Data), bound.Model)
		if mres.AnnualLossProbability <= bound.Data {
			return fmt.Sprintf("%s: %.2f nines; the data's only figure is %s's bound, ≥ %.2f nines, which cannot tell which decides",
				group, mres.Nines, bound.Model, durability.Nines(bound.Data)), "unknown", nil
		}
	}
	more := mp
	more.Replicas = (mp.Replicas + 1) | 1 // the next odd group: an even one stops after as few failures as the odd one below it
	more.PerDomain = spreadReplicas(more.Replicas, zones)
	better, err := durability.Meta(more)
	if err != nil {
		return "", "", err
	}
	hint := fmt.Sprintf("%s would give %.2f nines", metaGroup(more, ""), better.Nines)
	if mp.Replicas == 1 {
		return fmt.Sprintf("metadata (1 replica) dominates: a single meta disk loses every object (%.2f nines, against %s); %s",
			mres.Nines, data, hint), "metadata", nil
	}
	when := fmt.Sprintf("within a %s rebuild", shortDur(mp.Rebuild))
	if !mp.Rebuilds() {
		when = "(one lost leaves no majority to rebuild from)"
	}
	return fmt.Sprintf("metadata (%d replicas) dominates: losing %d of them %s can lose acknowledged metadata (%.2f nines, against %s); %s, and a faster --meta-rebuild helps too",
		mp.Replicas, mres.LostAt, when, mres.Nines, data, hint), "metadata", nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, "+")
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
