package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/durability"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/object"
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

	// Small objects: segments up to replicateMax bytes stored as m+1
	// copies (the gateway's --replicate-max; ≤ 0: none), smallStripes of
	// them (0: --stripes), replicateSource where replicateMax came from.
	replicateMax    int64
	smallStripes    int
	replicateSource string
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
zones come from DATA/cluster.json.

Small objects: the gateway stores every object or part of at most
--replicate-max bytes (default 64 KiB; 0: none) as m+1 full copies, coded
1+m, placed across the failure domains like k+m shards. Each model gives them
a row of their own beside k+m's (--small-stripes of them, default --stripes),
with the overhead of each (m+1 against (k+m)/k); the combined figure counts
either class lost, and the last line says which class — k+m, the copies or
the metadata — is the weakest. With --data, --replicate-max is the gateway's,
from its arguments in DATA/cluster.json.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.data != "" || f.metaAddr != "" {
				if err := durabilityMetaFromCluster(cmd, &f); err != nil {
					return err
				}
				if err := durabilityReplicateFromCluster(cmd, &f); err != nil {
					return err
				}
				if err := durabilityDefaultsFromCluster(cmd.Context(), cmd, &f); err != nil {
					return err
				}
			}
			if f.replicateSource == "" {
				f.replicateSource = "--replicate-max"
				if !cmd.Flags().Changed("replicate-max") {
					f.replicateSource = "the default --replicate-max"
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
	fl.Int64Var(&f.replicateMax, "replicate-max", object.DefaultReplicateMax, "objects and parts up to this many bytes are stored as m+1 copies (the gateway's --replicate-max): their figures beside k+m's (0: none; with --data: the gateway's, from cluster.json)")
	fl.IntVar(&f.smallStripes, "small-stripes", 0, "small objects and parts stored as copies, one stripe each (cluster and Monte Carlo models; default: --stripes)")
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

// durabilityReplicateFromCluster sets --replicate-max, when the operator
// did not, from the cluster: with --data, the gateway's flag in
// DATA/cluster.json's gateway args, else the gateway's default (what a
// gateway started without the flag uses); with --meta alone, which names
// no gateway, the default.
func durabilityReplicateFromCluster(cmd *cobra.Command, f *durabilityFlags) error {
	if cmd.Flags().Changed("replicate-max") {
		f.replicateSource = "--replicate-max"
		return nil
	}
	if f.data == "" {
		f.replicateSource = "the default --replicate-max: --meta does not say the gateway's"
		return nil
	}
	cf, err := devcluster.Read(f.data)
	if err != nil {
		return err
	}
	v, ok, err := replicateMaxOf(cf.GatewayArgs)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(f.data, devcluster.FileName), err)
	}
	if !ok {
		f.replicateMax = object.DefaultReplicateMax
		f.replicateSource = "the gateway's default: " + devcluster.FileName + " does not set --replicate-max"
		return nil
	}
	f.replicateMax = v
	f.replicateSource = "the gateway's --replicate-max in " + devcluster.FileName
	return nil
}

// replicateMaxOf finds the gateway's --replicate-max in its arguments
// ("--replicate-max N" or "--replicate-max=N", the last one wins as with
// the flag parser).
func replicateMaxOf(args []string) (v int64, ok bool, err error) {
	for i := 0; i < len(args); i++ {
		var val string
		switch a := args[i]; {
		case a == "--replicate-max" || a == "-replicate-max":
			if i+1 >= len(args) {
				return 0, false, fmt.Errorf("gateway argument %s has no value", a)
			}
			i++
			val = args[i]
		case strings.HasPrefix(a, "--replicate-max="), strings.HasPrefix(a, "-replicate-max="):
			val = a[strings.IndexByte(a, '=')+1:]
		default:
			continue
		}
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("gateway argument --replicate-max %q: %w", val, err)
		}
		v, ok = n, true
	}
	return v, ok, nil
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

// dataClass is one kind of data the cluster holds and its figure per model:
// k+m segments, or small segments as m+1 copies.
type dataClass struct {
	key     string // "erasure" or "copies", the JSON's word
	name    string // "4+2", "1+2 copies"
	p       durability.Params
	results []durability.Result // one per model, in the models' order
}

// classFigure is a data class's figure by the model that gives it the most
// loss.
type classFigure struct {
	name  string
	p     float64
	model string
	bound bool // only a simulation's upper bound: ranks nothing below it
}

// worst is the class's figure by its most pessimistic model; a simulation
// that saw no loss only bounds it, so it counts only when nothing else does.
func (c dataClass) worst() classFigure {
	var w *classFigure
	for _, r := range c.results {
		if r.AnnualLossProbability == 0 && r.Interval != nil {
			continue
		}
		if w == nil || r.AnnualLossProbability > w.p {
			w = &classFigure{name: c.name, p: r.AnnualLossProbability, model: r.Model}
		}
	}
	if w != nil {
		return *w
	}
	r := c.results[0]
	return classFigure{name: c.name, p: r.Interval[1], model: r.Model, bound: true}
}

// figure is a result's probability for combining: the model's, or a
// simulation's 95% upper bound when it saw no loss.
func figure(r durability.Result) (float64, bool) {
	if r.AnnualLossProbability == 0 && r.Interval != nil {
		return r.Interval[1], true
	}
	return r.AnnualLossProbability, false
}

// copiesScheme says whether and why the gateway stores small segments as
// copies beside k+m (object.Config.scheme): only with m > 0, a positive
// --replicate-max, and k > 1 (1+m already is copies).
func copiesScheme(p durability.Params, replicateMax int64) (bool, string) {
	switch {
	case replicateMax <= 0:
		return false, "none stored as copies: replicate-max is 0"
	case p.M == 0:
		return false, "none stored as copies: with m = 0 copies would add nothing"
	case p.K == 1:
		return false, fmt.Sprintf("1+%d is already %d copies: every object is", p.M, p.M+1)
	}
	return true, ""
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
	if f.smallStripes < 0 {
		return fmt.Errorf("%w: --small-stripes must not be negative (got %d)", durability.ErrInvalidParams, f.smallStripes)
	}
	large := dataClass{key: "erasure", name: fmt.Sprintf("%d+%d", p.K, p.M), p: p}
	var small *dataClass
	withCopies, copiesWhy := copiesScheme(p, f.replicateMax)
	if withCopies {
		cp := p.Copies(int64(f.smallStripes))
		if err := cp.Validate(); err != nil {
			return fmt.Errorf("copies: %w", err)
		}
		small = &dataClass{key: "copies", name: fmt.Sprintf("1+%d copies", p.M), p: cp}
	}
	var results, smallResults []any
	var rows [][]string
	var combined []combinedFigure
	for _, name := range models {
		var r, rs durability.Result
		var extra, smallExtra string
		var anyClass *durability.Result // the simulation's years with either class lost
		analytic := map[string]func(durability.Params) (durability.Result, error){
			"markov": durability.Markov, "cluster": durability.Cluster, "binomial": durability.Binomial}[name]
		switch {
		case analytic != nil:
			res, err := analytic(p)
			if err != nil {
				return err
			}
			r = res
			results = append(results, res)
			if small != nil {
				if rs, err = analytic(small.p); err != nil {
					return err
				}
				smallResults = append(smallResults, rs)
			}
		case name == "montecarlo":
			cfg := durability.MonteCarloConfig{
				Params: p, Zones: f.zones, RacksPerZone: f.racks, StripeCount: f.stripes,
				Trials: f.trials, WeibullShape: f.weibull, RackRate: f.rackRate,
				DataPerNode: f.dataPerNode, RepairBandwidth: f.bandwidth, Seed: f.seed,
			}
			if small != nil {
				cfg.Classes = []durability.StripeClass{{K: small.p.K, M: small.p.M, Count: int(small.p.Stripes)}}
			}
			res, err := runMonteCarlo(ctx, progress, cfg, f.timeLimit)
			if err != nil {
				return err
			}
			r = res.Result
			results = append(results, res)
			extra = fmt.Sprintf("%d years, %d node failures, %.3g lost/stripe/yr", res.Trials, res.NodeFailures, res.LossPerStripe)
			if small != nil {
				c := res.Classes[0]
				rs, anyClass = c.Result, res.Any
				smallResults = append(smallResults, c)
				smallExtra = fmt.Sprintf("%d stripes, %.3g lost/stripe/yr", c.Stripes, c.LossPerStripe)
			}
		default:
			return fmt.Errorf("unknown model %q (markov, cluster, binomial, montecarlo or all)", name)
		}
		large.results = append(large.results, r)
		cf := combinedFigure{Model: r.Model}
		cf.Erasure, cf.ErasureBound = figure(r)
		cf.Data, cf.Bound = cf.Erasure, cf.ErasureBound
		if small != nil {
			small.results = append(small.results, rs)
			pc, bound := figure(rs)
			cf.Copies, cf.CopiesBound = &pc, bound
			switch {
			case anyClass != nil:
				// one simulation: the years in which either class lost data
				cf.Data, cf.Bound = figure(*anyClass)
			default:
				// separate models of one cluster's classes, combined as if
				// independent; losses share node failures, so the true
				// union is no larger: this errs high
				cf.Data = durability.Combine(cf.Erasure, pc)
			}
		}
		cf.AnnualLossProbability = durability.Combine(cf.Data, mres.AnnualLossProbability)
		cf.Nines = durability.Nines(cf.AnnualLossProbability)
		combined = append(combined, cf)
		lt, ge := "", ""
		if cf.Bound {
			lt, ge = "< ", "≥ "
		}
		rows = append(rows, resultRow(r.Model, large.name, p.Overhead(), r, extra,
			fmt.Sprintf("%s%.3g", lt, cf.AnnualLossProbability), fmt.Sprintf("%s%.2f", ge, cf.Nines)))
		if small != nil {
			rows = append(rows, resultRow("", small.name, small.p.Overhead(), rs, smallExtra, "", ""))
		}
	}
	summary, dominant, weakest, err := durabilitySummary(mp, mres, combined, large, small, max(f.zones, len(mp.PerDomain)))
	if err != nil {
		return err
	}
	if f.json {
		doc := map[string]any{"params": p, "overhead": p.Overhead(), "results": results,
			"replicate_max": max(f.replicateMax, 0), "replicate_max_from": f.replicateSource,
			"meta_params": mp, "meta": mres, "combined": combined, "dominant": dominant, "weakest": weakest, "summary": summary}
		if small != nil {
			doc["copies"] = map[string]any{"params": small.p, "overhead": small.p.Overhead(), "results": smallResults}
		} else {
			doc["copies_note"] = copiesWhy
		}
		return printJSON(out, doc)
	}
	mnote := mres.Note
	if mres.LostAt < mp.Replicas {
		mnote += fmt.Sprintf("; all %d lost: %.3g (%.2f nines)", mp.Replicas, mres.AllLost, mres.AllLostNines)
	}
	rows = append(rows, []string{mres.Model, fmt.Sprintf("%d replica%s", mp.Replicas, plural(mp.Replicas)), "-", fmt.Sprintf("%.3g", mres.AnnualLossProbability),
		fmt.Sprintf("%.2f", mres.Nines), fmt.Sprintf("%.3g", mres.MTTDLYears), "-", "-", mnote})

	fmt.Fprintf(out, "%d+%d on %d nodes, AFR %.3g%%, repair %s (%s), overhead %.2fx\n",
		p.K, p.M, p.Nodes, p.AFR*100, p.Repair, map[bool]string{true: "parallel", false: "serial"}[p.Parallel], p.Overhead())
	if small != nil {
		fmt.Fprintf(out, "small objects: objects and parts up to %s (%s) as %s, overhead %.2fx, %d of them\n",
			sizeName(f.replicateMax), f.replicateSource, small.name, small.p.Overhead(), small.p.Stripes)
	} else {
		if f.replicateMax <= 0 {
			copiesWhy += " (" + f.replicateSource + ")"
		}
		fmt.Fprintf(out, "small objects: %s\n", copiesWhy)
	}
	rebuild := ""
	if mp.Rebuilds() {
		rebuild = fmt.Sprintf(", rebuild %s", mp.Rebuild)
	}
	fmt.Fprintf(out, "metadata: %s%s; counted lost when %s\n\n", metaGroup(mp, f.metaSource), rebuild, metaEvent(mp))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tCODING\tOVERHEAD\tANNUAL LOSS\tNINES\tMTTDL (years)\tCOMBINED LOSS\tCOMBINED NINES\tNOTE")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	legend := "COMBINED = data or metadata lost: 1-(1-P_data)(1-P_meta)."
	if small != nil {
		legend = fmt.Sprintf("COMBINED = data (%s or %s) or metadata lost, per model: 1-(1-P_%s)(1-P_copies)(1-P_meta),\n"+
			"as if the classes failed independently; they fail with the same nodes, so this errs high\n"+
			"(Monte Carlo counts the years either class lost data, in one simulation).", large.name, small.name, large.name)
	}
	_, err = fmt.Fprintf(out, "\n%s\n%s\n", legend, summary)
	return err
}

// resultRow is a data class's row of the table.
func resultRow(model, coding string, overhead float64, r durability.Result, extra, closs, cnines string) []string {
	mttdl := "-"
	if r.MTTDLYears > 0 {
		mttdl = fmt.Sprintf("%.3g", r.MTTDLYears)
	}
	ci := ""
	if r.Interval != nil {
		ci = fmt.Sprintf(" [%.2g, %.2g]", r.Interval[0], r.Interval[1])
	}
	note := strings.TrimSpace(strings.Join([]string{extra, r.Note}, " "))
	return []string{model, coding, fmt.Sprintf("%.2fx", overhead), fmt.Sprintf("%.3g%s", r.AnnualLossProbability, ci),
		fmt.Sprintf("%.2f", r.Nines), mttdl, closs, cnines, note}
}

// runMonteCarlo runs the simulation under --time-limit with a progress line.
func runMonteCarlo(ctx context.Context, progress io.Writer, cfg durability.MonteCarloConfig, limit time.Duration) (durability.MonteCarloResult, error) {
	deadline := time.Now().Add(limit)
	last := time.Time{}
	cfg.Stop = func() bool { return time.Now().After(deadline) || ctx.Err() != nil }
	cfg.Progress = func(done, total int) {
		if time.Since(last) > 200*time.Millisecond || done == total {
			last = time.Now()
			fmt.Fprintf(progress, "\rmonte carlo: %d/%d simulated years ", done, total)
			if done == total {
				fmt.Fprintln(progress)
			}
		}
	}
	return durability.MonteCarlo(cfg)
}

// combinedFigure is one data model's figure joined with the metadata's.
type combinedFigure struct {
	Model string `json:"model"`
	// Data is every data class's probability: k+m's and the copies'
	// combined (as if independent, which errs high; one simulation counts
	// the years either lost data), or a simulation's 95% upper bound when it
	// saw no loss (Bound).
	Data  float64 `json:"data_annual_loss_probability"`
	Bound bool    `json:"data_is_upper_bound,omitempty"`
	// Erasure is the k+m segments' figure; Copies the small segments' as
	// m+1 copies (absent when none are stored so).
	Erasure      float64  `json:"erasure_annual_loss_probability"`
	ErasureBound bool     `json:"erasure_is_upper_bound,omitempty"`
	Copies       *float64 `json:"copies_annual_loss_probability,omitempty"`
	CopiesBound  bool     `json:"copies_is_upper_bound,omitempty"`
	// AnnualLossProbability: data or metadata lost.
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

// durabilitySummary is the table's last line: whether the metadata or the
// data decides the combined figure (metaSummary), and, when small objects
// are stored as copies, which data class is the weaker by its most
// pessimistic model. weakest names the weakest of the classes — "erasure"
// (k+m), "copies", "metadata" — several when they tie, none when the
// figures cannot rank them (a simulation that saw no loss only bounds).
func durabilitySummary(mp durability.MetaParams, mres durability.MetaResult, combined []combinedFigure,
	large dataClass, small *dataClass, zones int) (summary, dominant string, weakest []string, err error) {
	summary, dominant, err = metaSummary(mp, mres, combined, zones)
	if err != nil {
		return "", "", nil, err
	}
	switch {
	case dominant == "metadata":
		weakest = []string{"metadata"}
	case dominant == "data" && small == nil:
		weakest = []string{large.key}
	}
	if small == nil {
		return summary, dominant, weakest, nil
	}
	lw, sw := large.worst(), small.worst()
	var clause string
	switch {
	case lw.bound && sw.bound:
		clause = fmt.Sprintf("neither class can be ranked: %s saw no loss of either (%s ≥ %.2f nines, %s ≥ %.2f)",
			lw.model, lw.name, durability.Nines(lw.p), sw.name, durability.Nines(sw.p))
		if dominant == "data" {
			weakest = nil
		}
	case lw.bound && lw.p >= sw.p, sw.bound && sw.p >= lw.p:
		known, bound := lw, sw
		if lw.bound {
			known, bound = sw, lw
		}
		clause = fmt.Sprintf("%s %s %.2f nines (%s); %s saw no loss of %s, only ≥ %.2f: which is weaker cannot be told",
			known.name, have(known.name), durability.Nines(known.p), known.model, bound.model, bound.name, durability.Nines(bound.p))
		if dominant == "data" {
			weakest = nil
		}
	case !lw.bound && !sw.bound && sameFigure(lw.p, sw.p):
		clause = fmt.Sprintf("%s and %s are equally weak: %.2f nines (%s), %.2f (%s)",
			lw.name, sw.name, durability.Nines(lw.p), lw.model, durability.Nines(sw.p), sw.model)
		if lw.model == sw.model {
			clause = fmt.Sprintf("%s and %s are equally weak: %.2f nines (%s)", lw.name, sw.name, durability.Nines(lw.p), lw.model)
		}
		if dominant == "data" {
			weakest = []string{large.key, small.key}
		}
	default:
		weak, strong, key := lw, sw, large.key
		if sw.p > lw.p {
			weak, strong, key = sw, lw, small.key
		}
		ge := ""
		if strong.bound {
			ge = "≥ " // a simulation that saw no loss of it, below the other's figure
		}
		clause = fmt.Sprintf("%s %s the weaker class: %.2f nines (%s) against %s %s%.2f (%s)",
			weak.name, be(weak.name), durability.Nines(weak.p), weak.model, possessive(strong.name), ge, durability.Nines(strong.p), strong.model)
		if dominant == "data" {
			weakest = []string{key}
			if !weak.bound && mres.AnnualLossProbability > weak.p {
				// the classes together outweigh the metadata; neither alone does
				weakest = []string{"metadata"}
				clause += fmt.Sprintf(", though the metadata alone (%.2f) is weaker than either; together they decide", mres.Nines)
			}
		}
	}
	return summary + ". Of the data, " + clause, dominant, weakest, nil
}

// sameFigure: two probabilities the table's two-decimal nines cannot tell
// apart.
func sameFigure(a, b float64) bool {
	return math.Abs(durability.Nines(a)-durability.Nines(b)) < 0.005
}

// sizeName is a byte count as the flags are usually given: "64 KiB".
func sizeName(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	if n >= 1<<10 {
		return humanBytes(n)
	}
	return fmt.Sprintf("%d bytes", n)
}

// be and have agree with a class name: "1+2 copies are", "4+2 is".
func be(name string) string {
	if strings.HasSuffix(name, "copies") {
		return "are"
	}
	return "is"
}

func possessive(name string) string {
	if strings.HasSuffix(name, "s") {
		return name + "'"
	}
	return name + "'s"
}

func have(name string) string {
	if strings.HasSuffix(name, "copies") {
		return "have"
	}
	return "has"
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
		Long: `table prints the per-stripe Markov chain's nines (parallel repair) for common
codings over AFR × repair time, with independent and with correlated rack
failures. Beside each parity count m it shows 1+m: the m+1 full copies the
gateway stores small objects as (--replicate-max) beside a k+m coding, so the
rows of one m compare what small and large objects of one cluster get per
stripe, and what each costs (m+1 against (k+m)/k). 1+2 is 3-way replication.
Per stripe, copies always lose less than k+m with the same m; the cluster's
figure depends on how many of each it holds: see shale durability.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return durabilityTable(cmd.OutOrStdout(), nodes)
		},
	}
}

// tableCodings are the table's rows, grouped by parity count: the copies
// (1+m) that small objects get beside the k+m codings after them.
var tableCodings = [][2]int{{1, 2}, {4, 2}, {1, 3}, {8, 3}, {17, 3}, {1, 4}, {10, 4}}

// codingName is a coding as the table names it.
func codingName(k, m int) string {
	if k > 1 {
		return fmt.Sprintf("%d+%d", k, m)
	}
	var beside []string
	for _, c := range tableCodings {
		if c[0] > 1 && c[1] == m {
			beside = append(beside, fmt.Sprintf("%d+%d", c[0], c[1]))
		}
	}
	name := fmt.Sprintf("1+%d: %d copies", m, m+1)
	if m == 2 {
		name += " (3-way replication)"
	}
	return name + ", small objects beside " + strings.Join(beside, ", ")
}

func durabilityTable(w io.Writer, nodes int) error {
	if nodes == 0 {
		nodes = 100
	}
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
		for _, c := range tableCodings {
			fmt.Fprintf(w, "| %s | %.2fx |", codingName(c[0], c[1]), float64(c[0]+c[1])/float64(c[0]))
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
