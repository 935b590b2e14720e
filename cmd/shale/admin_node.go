package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/devctl"
)

// nodeAddFlags are the flags of `shale admin node add`.
type nodeAddFlags struct {
	id, zone, rack, host string
	nodeData, capacity   string
	timeout              time.Duration
	asJSON               bool
}

func newAdminNodeCmd(t *clusterTarget) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Storage nodes of a dev cluster: add one while it runs"}
	var f nodeAddFlags
	add := &cobra.Command{
		Use:   "add",
		Short: "Start one more storage node under the running shale dev of --data, and wait until it is up",
		Long: `add asks the shale dev serving --data (through DATA/control) to start another
storage node as its own child, with the flags of its other nodes: it is
stopped with the cluster, its exit is reported like theirs, DATA/cluster.json
records it and a restarted dev starts it again. The command waits until meta's
map has the node up, then prints its id, address, pid and domain.

Outside a dev cluster, start shale node yourself (README, "Growing a cluster").`,
		Example: `  shale admin node add --data ./shale-data --zone zone-1
  shale admin node add --data ./shale-data --zone zone-4 --rack r1 --id big-1 --capacity 4TiB --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runNodeAdd(cmd.Context(), cmd.OutOrStdout(), *t, f)
		},
	}
	fl := add.Flags()
	fl.StringVar(&f.zone, "zone", "", "the node's zone (required)")
	fl.StringVar(&f.rack, "rack", "", "its rack (default: ZONE-rack-1)")
	fl.StringVar(&f.host, "host", "", "its host (default: host-N for node-N)")
	fl.StringVar(&f.id, "id", "", "its node id (default: the lowest free node-N)")
	fl.StringVar(&f.nodeData, "node-data", "", "its data dir (default: DATA/nodes/ID)")
	fl.StringVar(&f.capacity, "capacity", "", "bytes of shard data it may hold, e.g. 200GiB (default: its disk's free space); placement weighs it by this")
	fl.DurationVar(&f.timeout, "timeout", time.Minute, "how long to wait for dev to start the node and for meta to show it up")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	_ = add.MarkFlagRequired("zone")
	cmd.AddCommand(add)
	return cmd
}

// nodeAdded is what `node add` prints.
type nodeAdded struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	PID      int    `json:"pid"`
	Zone     string `json:"zone"`
	Rack     string `json:"rack"`
	Host     string `json:"host"`
	Data     string `json:"data"`
	Capacity int64  `json:"capacity,omitempty"`
	Log      string `json:"log"`
	State    string `json:"state"`
	Epoch    uint64 `json:"epoch"` // the map epoch at which it was seen up
}

func runNodeAdd(ctx context.Context, out io.Writer, t clusterTarget, f nodeAddFlags) error {
	if t.metaAddr != "" {
		return errors.New("node add starts the node under a running shale dev: give its --data, not --meta (outside dev, start shale node yourself: README, \"Growing a cluster\")")
	}
	req := devctl.AddNode{ID: f.id, Zone: f.zone, Rack: f.rack, Host: f.host}
	if f.capacity != "" {
		c, err := cluster.ParseBytes(f.capacity)
		if err != nil || c < 0 {
			return fmt.Errorf("--capacity %q: want bytes such as 200GiB", f.capacity)
		}
		req.Capacity = c
	}
	if f.nodeData != "" {
		d, err := filepath.Abs(f.nodeData)
		if err != nil {
			return err
		}
		req.Data = d
	}
	data := t.data
	if data == "" {
		data = "./shale-data"
	}
	data, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	cf, err := devcluster.Read(data)
	if err != nil {
		return fmt.Errorf("node add: %w %s: %v", devctl.ErrNoDev, data, err)
	}
	if f.timeout <= 0 {
		f.timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	n, err := devctl.Submit(ctx, data, devctl.Request{AddNode: &req}, 100*time.Millisecond,
		func() error { return devctl.DevAlive(data, cf) })
	if err != nil {
		return fmt.Errorf("node add: %w", err)
	}
	res := nodeAdded{ID: n.ID, Addr: n.Addr, PID: n.PID, Zone: n.Zone, Rack: n.Rack, Host: n.Host, Data: n.Data,
		Capacity: n.Capacity, Log: filepath.Join(data, "logs", n.ID+".log")}
	if res.Epoch, err = waitNodeUp(ctx, t, n, res.Log); err != nil {
		return err
	}
	res.State = cluster.Up.String()
	if f.asJSON {
		return printJSON(out, res)
	}
	capacity := "its disk's free space"
	if n.Capacity > 0 {
		capacity = humanBytes(n.Capacity)
	}
	fmt.Fprintf(out, "node %s added: %s, pid %d, zone %s (%s/%s/%s), up at map epoch %d\n  data %s, capacity %s, log %s\n",
		res.ID, res.Addr, res.PID, res.Zone, res.Zone, res.Rack, res.Host, res.Epoch, res.Data, capacity, res.Log)
	return nil
}

// waitNodeUp waits until meta's map has node n up and returns the map's
// epoch; it gives up when n's process exits or ctx ends.
func waitNodeUp(ctx context.Context, t clusterTarget, n devcluster.Node, logPath string) (uint64, error) {
	mc, _, err := t.client()
	if err != nil {
		return 0, err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "not in meta's map yet"
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := mc.Map(cctx)
		cancel()
		switch {
		case err != nil:
			last = "meta: " + err.Error()
		default:
			if got, ok := m.Node(cluster.NodeID(n.ID)); ok {
				if got.State == cluster.Up {
					return m.Epoch(), nil
				}
				last = "state " + got.State.String()
			}
		}
		if !procRunning(n.PID) {
			return 0, fmt.Errorf("node add: %s (pid %d) exited before it was up (%s); see %s", n.ID, n.PID, last, logPath)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("node add: %s (pid %d) started but is not up in meta's map (%s): %w; see %s", n.ID, n.PID, last, ctx.Err(), logPath)
		case <-tick.C:
		}
	}
}

// procRunning reports whether pid is a running process (not a zombie).
func procRunning(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
