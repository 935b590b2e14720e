package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// replicaRow is one meta replica as `shale admin status` shows it: its own
// answer, or "down" with the error of asking it.
type replicaRow struct {
	meta.ReplicaStatus
	PID   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// adminStatus is `shale admin status --json`: meta's status with the meta
// replicas beside it.
type adminStatus struct {
	meta.Status
	MetaReplicas []replicaRow `json:"meta_replicas"`
}

// replicaTarget is one replica to ask: its API address, and its record in
// a dev cluster's file when there is one.
type replicaTarget struct {
	id, addr, zone string
	pid            int
}

// replicaTargets lists the replicas an operator command can ask directly:
// a dev cluster's metas, or the addresses given to --meta.
func replicaTargets(r resolvedTarget) []replicaTarget {
	var out []replicaTarget
	if r.cf != nil {
		for _, m := range r.cf.Metas {
			out = append(out, replicaTarget{id: m.ID, addr: m.Addr, zone: m.Zone, pid: m.PID})
		}
		if len(out) > 0 {
			return out
		}
	}
	for _, a := range splitAddrs(r.addrs) { // --meta, or a cluster file from before replicas
		out = append(out, replicaTarget{addr: a})
	}
	return out
}

// replicaRows asks every target for its status at once, each bounded by
// per: a replica that does not answer in time is down.
func replicaRows(ctx context.Context, r resolvedTarget, per time.Duration) []replicaRow {
	targets := replicaTargets(r)
	rows := make([]replicaRow, len(targets))
	var wg sync.WaitGroup
	for i, rt := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := replicaClient(rt.addr, r.secret, r.inet, per)
			cctx, cancel := context.WithTimeout(ctx, per)
			defer cancel()
			st, err := c.ReplicaStatus(cctx)
			row := replicaRow{ReplicaStatus: st, PID: rt.pid}
			if err != nil {
				row.ReplicaStatus = meta.ReplicaStatus{ID: rt.id, Zone: rt.zone, State: "down"}
				row.Error = err.Error()
			}
			if row.ID == "" {
				row.ID = rt.id
			}
			row.Addr = rt.addr
			rows[i] = row
		}()
	}
	wg.Wait()
	return rows
}

// replicaClient is a client of the one replica at addr, which answers for
// itself: one attempt, bounded by per.
func replicaClient(addr string, secret []byte, inet *internalNet, per time.Duration) *metaremote.Client {
	return metaremote.New(metaremote.Config{Addrs: []string{inet.url(addr)}, Secret: secret,
		HTTP: &http.Client{Transport: inet.transport()}, RetryFor: time.Millisecond, AttemptTimeout: per})
}

// joinReplica adds replica rec, started with --join, to the group that c
// reaches (target is rec's own client): it refuses a replica that holds
// another group's state, adds it as a non-voter, waits (bounded by ctx)
// until it has applied everything it knows committed, then promotes it to
// voter, so the group's quorum never waits for a replica still copying.
// Progress goes to progress.
func joinReplica(ctx context.Context, c, target *metaremote.Client, rec meta.Replica, progress io.Writer) error {
	group, err := c.ReplicaStatus(ctx)
	if err != nil {
		return fmt.Errorf("the group does not answer: %w", err)
	}
	st, err := target.ReplicaStatus(ctx)
	if err != nil {
		return fmt.Errorf("replica %s at %s does not answer (start it with --join first): %w", rec.ID, rec.Addr, err)
	}
	if st.ID != rec.ID {
		return fmt.Errorf("the replica at %s is %q, not %s", rec.Addr, st.ID, rec.ID)
	}
	member := slices.ContainsFunc(group.Servers, func(s meta.ReplicaServer) bool { return s.ID == rec.ID })
	if !member && (len(st.Servers) > 0 || st.LastIndex > 0) {
		return fmt.Errorf("replica %s holds state of another group (a log to index %d, members %v): start it with --join on an empty --data", rec.ID, st.LastIndex, st.Servers)
	}
	if err := c.AddMember(ctx, rec, false); err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err = target.ReplicaStatus(ctx)
		if err == nil && st.CommitIndex > 0 && st.AppliedIndex >= st.CommitIndex {
			break
		}
		if err == nil {
			fmt.Fprintf(progress, "\r%s catching up: applied %d of %d ", rec.ID, st.AppliedIndex, st.CommitIndex)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not catch up: %w (last: %v)", rec.ID, ctx.Err(), err)
		case <-tick.C:
		}
	}
	fmt.Fprintf(progress, "\r%s caught up at index %d; promoting it to voter\n", rec.ID, st.AppliedIndex)
	return c.AddMember(ctx, rec, true)
}

// printReplicas writes the replicas' table.
func printReplicas(w io.Writer, rows []replicaRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "META\tADDRESS\tZONE\tSTATE\tTERM\tAPPLIED\tLEADER CHANGED\tPID\n")
	for _, r := range rows {
		pid, since, term, applied := "-", "-", "-", "-"
		if r.PID > 0 {
			pid = strconv.Itoa(r.PID)
		}
		if r.State != "down" {
			term, applied = strconv.FormatUint(r.Term, 10), strconv.FormatUint(r.AppliedIndex, 10)
			if !r.LastLeaderChange.IsZero() {
				since = r.LastLeaderChange.UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(r.ID), r.Addr, orDash(r.Zone), r.State, term, applied, since, pid)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	leaders, named := 0, ""
	listed := map[string]bool{}
	var members []meta.ReplicaServer
	for _, r := range rows {
		listed[r.ID] = true
		if r.State == "leader" {
			leaders++
		}
		if r.LeaderID != "" {
			named = r.LeaderID
		}
		if len(r.Servers) > len(members) {
			members = r.Servers
		}
	}
	for _, m := range members {
		if !listed[m.ID] {
			fmt.Fprintf(w, "also in the group, not asked: %s (raft %s)\n", m.ID, m.Raft)
		}
	}
	switch {
	case leaders == 0 && named != "":
		fmt.Fprintf(w, "the leader is %s, which was not asked\n", named)
	case leaders == 0:
		fmt.Fprintln(w, "no meta replica leads: writes wait (S3 answers 503 SlowDown) until a majority elects one")
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newAdminMetaCmd is `shale admin meta`: the meta replicas and changes to
// their group.
func newAdminMetaCmd(t *clusterTarget) *cobra.Command {
	cmd := &cobra.Command{Use: "meta", Short: "The meta replicas (one raft group): status, add, remove, transfer-leader"}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Each meta replica's state (leader, follower, down), term, applied index and last leader change",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := t.resolve()
			if err != nil {
				return err
			}
			rows := replicaRows(cmd.Context(), r, 3*time.Second)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			return printReplicas(cmd.OutOrStdout(), rows)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var rec meta.Replica
	add := &cobra.Command{
		Use:   "add ID --addr HOST:PORT --raft HOST:PORT [--zone Z]",
		Short: "Add a replica (started with --join) to the group as a voter; it catches up from the leader",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec.ID = args[0]
			return t.leaderCall(cmd, "add "+rec.ID, func(ctx context.Context, r resolvedTarget, c *metaremote.Client) error {
				return joinReplica(ctx, c, replicaClient(rec.Addr, r.secret, r.inet, 3*time.Second), rec, cmd.ErrOrStderr())
			})
		},
	}
	add.Flags().StringVar(&rec.Addr, "addr", "", "the new replica's API address (its --listen or --advertise)")
	add.Flags().StringVar(&rec.Raft, "raft", "", "the new replica's raft address (its --raft-listen or --raft-advertise)")
	add.Flags().StringVar(&rec.Zone, "zone", "", "the new replica's failure domain")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a replica from the group (stop its process afterwards)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return t.leaderCall(cmd, "remove "+args[0], func(ctx context.Context, _ resolvedTarget, c *metaremote.Client) error {
				return c.RemoveMember(ctx, args[0])
			})
		},
	}
	transfer := &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand leadership to replica ID (none: the most up-to-date follower)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return t.leaderCall(cmd, "transfer leadership", func(ctx context.Context, _ resolvedTarget, c *metaremote.Client) error {
				return c.TransferLeadership(ctx, id)
			})
		},
	}
	cmd.AddCommand(status, add, remove, transfer)
	return cmd
}

// leaderCall runs one membership change through the leader, then prints
// the replicas as they are after it.
func (t clusterTarget) leaderCall(cmd *cobra.Command, what string, call func(context.Context, resolvedTarget, *metaremote.Client) error) error {
	r, err := t.resolve()
	if err != nil {
		return err
	}
	c := newMetaClient(r.addrs, r.secret, r.inet)
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	if err := call(ctx, r, c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: done\n\n", what)
	rows := replicaRows(ctx, r, 3*time.Second)
	return printReplicas(cmd.OutOrStdout(), rows)
}
