package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/placement"
)

func init() { commands = append(commands, newPlacementCmd) }

// placementConfig is what `shale placement` is asked.
type placementConfig struct {
	Topology   string // YAML/JSON topology file; or
	Meta       string // address of a running meta service, with
	SecretFile string // the cluster secret for it; or
	Data       string // a dev cluster's data dir
	Object     string // object id to place (e.g. bucket/key)
	K, M       int    // data and parity shards
	Min        int    // > 0: place degraded, filling at least Min shards
	JSON       bool
}

func newPlacementCmd() *cobra.Command {
	var cfg placementConfig
	cmd := &cobra.Command{
		Use:   "placement (--topology FILE | --meta ADDR --secret-file F) --object ID [--k 4 --m 2] [--json]",
		Short: "Show which nodes hold an object's shards and what that placement survives",
		Long: `placement computes where shale puts the k+m shards of an object on a cluster
map — from a topology file (YAML or JSON: a list of nodes with id, addr, zone,
rack, host, capacity, state, or {epoch, nodes}) or from a running cluster —
and says what the placement survives: any m nodes, a host, a rack, a zone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlacement(cmd.Context(), cmd.OutOrStdout(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Topology, "topology", "", "topology file (YAML or JSON)")
	f.StringVar(&cfg.Meta, "meta", "", "addresses of a running meta service's replicas, host:port[,host:port…] (instead of --topology)")
	f.StringVar(&cfg.SecretFile, "secret-file", "", "file holding the cluster secret (with --meta)")
	f.StringVar(&cfg.Data, "data", "", "a dev cluster's data dir (instead of --topology or --meta)")
	f.StringVar(&cfg.Object, "object", "", "object id to place, e.g. bucket/key")
	f.IntVar(&cfg.K, "k", 4, "data shards")
	f.IntVar(&cfg.M, "m", 2, "parity shards")
	f.IntVar(&cfg.Min, "min", 0, "place degraded: accept too few Up nodes if at least this many shards can be placed")
	f.BoolVar(&cfg.JSON, "json", false, "print JSON instead of a table")
	return cmd
}

// placementReport is the --json output; the table shows the same.
type placementReport struct {
	Object   string             `json:"object"`
	K        int                `json:"k"`
	M        int                `json:"m"`
	Epoch    uint64             `json:"epoch"`
	Nodes    int                `json:"nodes"`
	Up       int                `json:"up"`
	Caps     placement.Caps     `json:"caps"`
	Shards   []placementShard   `json:"shards"`
	Survives placement.Survival `json:"survives"`
}

type placementShard struct {
	Index int    `json:"index"`
	Kind  string `json:"kind"` // data or parity
	Node  string `json:"node"` // "" when a degraded placement left it empty
	Zone  string `json:"zone"`
	Rack  string `json:"rack"`
	Host  string `json:"host"`
	State string `json:"state"`
}

func runPlacement(ctx context.Context, w io.Writer, cfg placementConfig) error {
	if cfg.Object == "" {
		return errors.New("placement: --object is required")
	}
	m, err := loadPlacementMap(ctx, cfg)
	if err != nil {
		return err
	}
	p := placement.NewPlanner(m)
	var ids []cluster.NodeID
	if cfg.Min > 0 {
		ids, err = p.PlaceDegraded(cfg.Object, cfg.K, cfg.M, cfg.Min)
	} else {
		ids, err = p.Place(cfg.Object, cfg.K, cfg.M)
	}
	if errors.Is(err, placement.ErrTooFewNodes) && cfg.Min == 0 {
		return fmt.Errorf("%w (--min N places degraded)", err)
	}
	if err != nil {
		return err
	}
	rep := placementReport{
		Object: cfg.Object, K: cfg.K, M: cfg.M, Epoch: m.Epoch(), Nodes: m.Len(), Up: p.Eligible(),
		Caps: p.Caps(cfg.K + cfg.M), Survives: p.Survives(ids, cfg.K, cfg.M),
	}
	for i, id := range ids {
		row := placementShard{Index: i, Kind: "data", Node: string(id)}
		if i >= cfg.K {
			row.Kind = "parity"
		}
		if n, ok := m.Node(id); ok {
			row.Zone, row.Rack, row.Host, row.State = n.Domain.Zone, n.Domain.Rack, n.Domain.Host, n.State.String()
		}
		rep.Shards = append(rep.Shards, row)
	}
	if cfg.JSON {
		return printJSON(w, rep)
	}
	return printPlacement(w, rep)
}

func loadPlacementMap(ctx context.Context, cfg placementConfig) (*cluster.Map, error) {
	switch {
	case cfg.Topology != "" && cfg.Meta != "":
		return nil, errors.New("placement: give --topology or --meta, not both")
	case cfg.Topology != "":
		data, err := os.ReadFile(cfg.Topology)
		if err != nil {
			return nil, fmt.Errorf("placement: read topology: %w", err)
		}
		m, err := cluster.ParseTopology(data)
		if err != nil {
			return nil, fmt.Errorf("placement: topology %s: %w", cfg.Topology, err)
		}
		return m, nil
	case cfg.Meta != "" || cfg.Data != "":
		return fetchClusterMap(ctx, clusterTarget{data: cfg.Data, metaAddr: cfg.Meta, secretFile: cfg.SecretFile})
	}
	return nil, errors.New("placement: --topology, --meta or --data is required")
}

func printPlacement(w io.Writer, r placementReport) error {
	fmt.Fprintf(w, "object %s, %d+%d, map epoch %d: %d nodes, %d up; at most %d shards per zone, %d per rack, %d per host\n\n",
		r.Object, r.K, r.M, r.Epoch, r.Nodes, r.Up, r.Caps.Zone, r.Caps.Rack, r.Caps.Host)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SHARD\tKIND\tNODE\tZONE\tRACK\tHOST")
	for _, s := range r.Shards {
		node := s.Node
		if node == "" {
			node = "(none)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.Index, s.Kind, node, s.Zone, s.Rack, s.Host)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.Survives
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(w, "\nsurvives: any %d nodes; a host: %s; a rack: %s; a zone: %s\n",
		s.AnyNodes, yes(s.Host), yes(s.Rack), yes(s.Zone))
	fmt.Fprintf(w, "spread: %d shards over %d zones, %d racks, %d hosts; most in one zone %d, rack %d, host %d (a domain may lose %d)\n",
		s.Shards, s.Zones, s.Racks, s.Hosts, s.MaxPerZone, s.MaxPerRack, s.MaxPerHost, max(s.Shards-r.K, 0))
	if missing := r.K + r.M - s.Shards; missing > 0 {
		fmt.Fprintf(w, "degraded: %d of %d shards have no node; repair will place them\n", missing, r.K+r.M)
	}
	return nil
}
