package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

func init() { commands = append(commands, newAdminCmd) }

// clusterTarget is how an operator command finds meta: a dev cluster's data
// dir, or a meta address with the cluster secret.
type clusterTarget struct {
	data, metaAddr, secretFile string
	itls                       internalTLSFlags
}

func (t *clusterTarget) flags(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&t.data, "data", "", "a dev cluster's data dir (reads DATA/cluster.json)")
	cmd.PersistentFlags().StringVar(&t.metaAddr, "meta", "", "meta replicas' addresses, host:port[,host:port…]")
	cmd.PersistentFlags().StringVar(&t.secretFile, "secret-file", "", "cluster secret file (with --meta)")
	t.itls.register(cmd.PersistentFlags())
}

// resolvedTarget is where meta is and how to speak to it.
type resolvedTarget struct {
	addrs  string // the replicas' API addresses, comma-separated
	secret []byte
	inet   *internalNet
	cf     *devcluster.File // a dev cluster's file; nil with --meta
}

// resolve reads --meta with --secret-file, or else a dev cluster's file.
func (t clusterTarget) resolve() (resolvedTarget, error) {
	if t.metaAddr != "" {
		if t.secretFile == "" {
			return resolvedTarget{}, errors.New("--meta needs --secret-file")
		}
		secret, err := loadSecretFlag(t.secretFile)
		if err != nil {
			return resolvedTarget{}, err
		}
		inet, err := t.itls.load()
		return resolvedTarget{addrs: t.metaAddr, secret: secret, inet: inet}, err
	}
	data := t.data
	if data == "" {
		data = "./shale-data"
	}
	cf, err := devcluster.Read(data)
	if err != nil {
		return resolvedTarget{}, err
	}
	secret, err := loadSecretFlag(cf.SecretFile)
	if err != nil {
		return resolvedTarget{}, err
	}
	inet, err := devNet(cf)
	return resolvedTarget{addrs: cf.Meta, secret: secret, inet: inet, cf: &cf}, err
}

// client opens a meta client (over every replica) and, for dev clusters,
// returns the cluster file (for pids).
func (t clusterTarget) client() (*metaremote.Client, *devcluster.File, error) {
	r, err := t.resolve()
	if err != nil {
		return nil, nil, err
	}
	return newMetaClient(r.addrs, r.secret, r.inet), r.cf, nil
}

func newAdminCmd() *cobra.Command {
	var t clusterTarget
	cmd := &cobra.Command{Use: "admin", Short: "Operate a running cluster: status, taking nodes out, in, draining or removing them, weights, and the meta replicas"}
	t.flags(cmd)
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Nodes, objects by healthy shards, and repair progress",
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := t.resolve()
			if err != nil {
				return err
			}
			c, cf := newMetaClient(r.addrs, r.secret, r.inet), r.cf
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			rows := replicaRows(ctx, r, 3*time.Second)
			st, err := c.Status(ctx)
			if err != nil {
				if !asJSON {
					_ = printReplicas(cmd.OutOrStdout(), rows)
				}
				return fmt.Errorf("status: %w", err)
			}
			if cf != nil {
				pids := map[cluster.NodeID]int{}
				for _, n := range cf.Nodes {
					pids[cluster.NodeID(n.ID)] = n.PID
				}
				for i := range st.Nodes {
					if st.Nodes[i].PID == 0 {
						st.Nodes[i].PID = pids[st.Nodes[i].ID]
					}
				}
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), adminStatus{Status: st, MetaReplicas: rows})
			}
			if err := printStatus(cmd.OutOrStdout(), st); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return printReplicas(cmd.OutOrStdout(), rows)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(status, newAdminMetaCmd(&t), newAdminNodeCmd(&t))
	for _, a := range []struct {
		action meta.AdminAction
		short  string
	}{
		{meta.ActionOut, "Mark a node out: its shards are re-created elsewhere"},
		{meta.ActionIn, "Bring a node back in (its stale shards are collected)"},
		{meta.ActionDrain, "Drain a node: copy its shards away, then mark it out"},
		{meta.ActionRemove, "Forget a node that is out, stopped (no heartbeat) and holds no shard — after a drain (the garbage collector then forgets its queued garbage)"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   string(a.action) + " NODE",
			Short: a.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, _, err := t.client()
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
				defer cancel()
				if err := c.Admin(ctx, cluster.NodeID(args[0]), a.action); err != nil {
					return fmt.Errorf("%s %s: %w", a.action, args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "node %s: %s\n", args[0], a.action)
				return nil
			},
		})
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "weight NODE BYTES",
		Short: "Set a node's placement weight (e.g. 4TiB; 0: back to its capacity): placement gives it shards in proportion",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := cluster.ParseBytes(args[1])
			if err != nil || w < 0 {
				return fmt.Errorf("weight %q: want bytes such as 4TiB, or 0 for the node's capacity", args[1])
			}
			c, _, err := t.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			if err := c.SetWeight(ctx, cluster.NodeID(args[0]), w); err != nil {
				return fmt.Errorf("weight %s: %w", args[0], err)
			}
			if w == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "node %s: weight back to its capacity\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "node %s: weight %s\n", args[0], humanBytes(w))
			}
			return nil
		},
	})
	return cmd
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func printStatus(w io.Writer, st meta.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\tADDRESS\tZONE/RACK/HOST\tSTATE\tUSED\tFREE\tWEIGHT\tPID\n")
	for _, n := range st.Nodes {
		pid := "-"
		if n.PID > 0 {
			pid = strconv.Itoa(n.PID)
		}
		state := n.State.String()
		if n.Damaged {
			state += " (damaged store)"
		}
		if !n.Since.IsZero() {
			state += " since " + n.Since.UTC().Format(time.RFC3339)
		}
		weight := humanBytes(int64(n.Weight()))
		if n.Weighted > 0 {
			weight += " (set)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Addr, n.Domain, state, humanBytes(n.Used), humanBytes(n.Free), weight, pid)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nmap epoch %d; %d objects\n", st.Epoch, st.Objects)
	var counts []int
	for c := range st.ObjectsBySpareShards {
		counts = append(counts, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	if len(counts) > 0 {
		fmt.Fprintln(w, "\nobjects by further shard losses they survive (healthy shards beyond k; small objects are 1+m copies):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range counts {
			what := fmt.Sprintf("  %d more", c)
			switch {
			case c == 0:
				what = "  0 more (at k: repaired first)"
			case c < 0:
				what = fmt.Sprintf("  unreadable (%d short of k)", -c)
			}
			fmt.Fprintf(tw, "%s\t%d\n", what, st.ObjectsBySpareShards[c])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nrepair queue: %s   garbage: %d\n", statusQueue(st), st.Garbage)
	if extra := statusRepairLine(st); extra != "" {
		fmt.Fprintln(w, extra)
	}
	if extra := statusRebalanceLine(st); extra != "" {
		fmt.Fprintln(w, extra)
	}
	return nil
}

// statusRebalanceLine formats the rebalancer's figures when meta reports
// them: what is left to move in the round, the rate and ETA, and the
// totals.
func statusRebalanceLine(st meta.Status) string {
	if st.Repair == nil || st.Repair.Rebalance.State == "" {
		return ""
	}
	r := st.Repair.Rebalance
	parts := []string{"rebalance " + r.State}
	switch r.State {
	case "planning":
		parts[0] += fmt.Sprintf(" (%d objects examined, %d to move so far, %s)", r.Planned, r.ObjectsToMove, humanBytes(r.BytesToMove))
	case "moving":
		parts[0] += fmt.Sprintf(": %d objects (%s) to move", r.ObjectsToMove, humanBytes(r.BytesToMove))
		parts = append(parts, fmt.Sprintf("%.1f MB/s", r.RateBytesPerSec/1e6))
		if r.ETASeconds > 0 {
			parts = append(parts, "ETA "+max(time.Duration(r.ETASeconds*float64(time.Second)).Round(time.Second), time.Second).String())
		}
	}
	parts = append(parts, fmt.Sprintf("moved %d shards of %d objects (%s)", r.ShardsMoved, r.ObjectsMoved, humanBytes(r.BytesMoved)))
	if r.Conflicts+r.Failures+r.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d conflicts, %d failures, %d left for a later round", r.Conflicts, r.Failures, r.Skipped))
	}
	if r.LastRoundSeconds > 0 {
		parts = append(parts, fmt.Sprintf("last round %.1fs", r.LastRoundSeconds))
	}
	return strings.Join(parts, ", ")
}

// statusQueue formats the repair queue: the objects waiting, and where they
// were found — meta's degraded queue (degraded writes, bad-shard reports)
// and the repair loop's candidates, which also count the objects with
// shards on out or draining nodes.
func statusQueue(st meta.Status) string {
	q := fmt.Sprintf("%d objects", st.RepairQueue)
	if r := st.Repair; r != nil && (st.RepairQueue > 0 || r.QueueObjects > 0) {
		q += fmt.Sprintf(" (degraded queue %d, repair loop's candidates %d", st.DegradedQueue, r.QueueObjects)
		if r.QueueBytes > 0 {
			q += ", " + humanBytes(r.QueueBytes) + " to re-create"
		}
		q += ")"
	}
	return q
}

// statusRepairLine formats the repair loop's figures when meta reports them.
func statusRepairLine(st meta.Status) string {
	r := st.Repair
	if r == nil {
		return ""
	}
	parts := []string{fmt.Sprintf("repair rate %.1f MB/s", r.RateBytesPerSec/1e6)}
	if r.ETASeconds > 0 {
		parts = append(parts, fmt.Sprintf("ETA %s", max(time.Duration(r.ETASeconds*float64(time.Second)).Round(time.Second), time.Second).String()))
	}
	if !r.EpisodeStart.IsZero() {
		parts = append(parts, "repairing since "+r.EpisodeStart.UTC().Format(time.RFC3339))
	}
	parts = append(parts, fmt.Sprintf("repaired %d shards (%s)", r.ShardsRepaired, humanBytes(r.BytesRepaired)))
	if r.LastTimeToRepairSeconds > 0 {
		parts = append(parts, fmt.Sprintf("last time-to-repair %.1fs", r.LastTimeToRepairSeconds))
	}
	if t := r.Throttle; t.State != "" {
		parts = append(parts, fmt.Sprintf("throttle %s: %d/%d in flight (%s)", t.State, t.InFlight, t.Limit, t.Reason))
	}
	return strings.Join(parts, ", ")
}

// durabilityDefaultsFromCluster fills the durability flags the operator did
// not set from a running cluster: its coding (dev clusters), its nodes and
// zones, and — when the repair loop has measured one — the repair time a
// node's worth of data takes at the measured repair rate, plus out-after.
func durabilityDefaultsFromCluster(ctx context.Context, cmd *cobra.Command, f *durabilityFlags) error {
	t := clusterTarget{data: f.data, metaAddr: f.metaAddr, secretFile: f.secretFile}
	c, cf, err := t.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	changed := cmd.Flags().Changed
	if cf != nil {
		if !changed("k") {
			f.k = cf.K
		}
		if !changed("m") {
			f.m = cf.M
		}
	}
	var live []cluster.Node
	var used int64
	for _, n := range st.Nodes {
		if n.State != cluster.Out {
			live = append(live, n)
			used += n.Used
		}
	}
	if !changed("nodes") && len(live) > 0 {
		f.nodes = len(live)
	}
	if !changed("zones") && len(live) > 0 {
		f.zones = cluster.Domains(live, cluster.LevelZone)
		f.racks = max(1, cluster.Domains(live, cluster.LevelRack)/f.zones)
	}
	if !changed("repair") && st.Repair != nil && st.Repair.RateBytesPerSec > 0 && len(live) > 0 {
		perNode := float64(used) / float64(len(live))
		f.repair = 10*time.Minute + time.Duration(perNode/st.Repair.RateBytesPerSec*float64(time.Second))
		fmt.Fprintf(cmd.ErrOrStderr(), "repair time from the cluster: 10m detection + %s of data per node at the measured %.1f MB/s = %s\n",
			humanBytes(int64(perNode)), st.Repair.RateBytesPerSec/1e6, f.repair.Round(time.Second))
	}
	return nil
}
