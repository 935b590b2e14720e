package devctl

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
)

// ErrInvalid: a request the dev refuses as it stands — a missing or oddly
// spelled zone, rack or host, an unsafe node id, a node data dir that is
// relative or among the dev's own files, a negative capacity.
var ErrInvalid = errors.New("invalid request")

// ErrTaken: the node id, or the data dir, of the request belongs to a node
// or process the cluster has already.
var ErrTaken = errors.New("already in use")

// AddNode asks a running dev for one more storage node. Zone is required;
// every other field has a default.
type AddNode struct {
	// ID is the node id; empty: the lowest node-N that no node of the
	// cluster file or of meta's map has.
	ID   string `json:"id,omitempty"`
	Zone string `json:"zone"`
	// Rack defaults to Zone+"-rack-1"; Host to "host-N" for node-N (and
	// "host-"+ID for another id), as `shale dev` names its own nodes.
	Rack string `json:"rack,omitempty"`
	Host string `json:"host,omitempty"`
	// Data is the node's data dir, an absolute path; empty:
	// DATA/nodes/ID.
	Data string `json:"data,omitempty"`
	// Capacity is the node's --capacity in bytes; 0: its disk's free
	// space.
	Capacity int64 `json:"capacity,omitempty"`
}

// reservedIDs are the names of the dev's other processes: a node id is also
// the name of its log (DATA/logs/ID.log) and of its internal TLS
// certificate, which must not be another process's.
var reservedIDs = []string{"dev", "gateway", "admin"}

// Plan decides the node an AddNode request starts in the dev cluster whose
// data dir is data (absolute) and whose cluster file is f; known are the
// node ids meta's map holds (a node started by hand is in the map, not in
// the file). The node it returns has ID, Zone, Rack, Host, Data and
// Capacity set; Addr, PID and Args are the starter's. Errors wrap
// ErrInvalid or ErrTaken. Plan does no I/O: whether the data dir already
// holds something is the caller's to check.
func Plan(data string, f devcluster.File, known []string, r AddNode) (devcluster.Node, error) {
	taken := map[string]bool{}
	for _, id := range known {
		taken[id] = true
	}
	for _, n := range f.Nodes {
		taken[n.ID] = true
	}
	if r.Zone == "" {
		return devcluster.Node{}, fmt.Errorf("%w: a zone is required", ErrInvalid)
	}
	for _, l := range []struct{ what, v string }{{"zone", r.Zone}, {"rack", r.Rack}, {"host", r.Host}} {
		if l.v != "" && !validLabel(l.v) {
			return devcluster.Node{}, fmt.Errorf("%w: %s %q: want 1-64 of [A-Za-z0-9._-], not starting with a dot", ErrInvalid, l.what, l.v)
		}
	}
	if r.Capacity < 0 {
		return devcluster.Node{}, fmt.Errorf("%w: capacity %d is negative", ErrInvalid, r.Capacity)
	}
	id := r.ID
	if id == "" {
		id = nextID(taken)
	} else if err := checkID(id, f, taken); err != nil {
		return devcluster.Node{}, err
	}
	n := devcluster.Node{ID: id, Zone: r.Zone, Rack: r.Rack, Host: r.Host, Data: r.Data, Capacity: r.Capacity}
	if n.Rack == "" {
		n.Rack = n.Zone + "-rack-1"
	}
	if n.Host == "" {
		n.Host = "host-" + strings.TrimPrefix(id, "node-")
	}
	if err := checkData(data, &n, f); err != nil {
		return devcluster.Node{}, err
	}
	return n, nil
}

// nextID is the lowest node-N (N ≥ 1) not taken.
func nextID(taken map[string]bool) string {
	for i := 1; ; i++ {
		if id := "node-" + strconv.Itoa(i); !taken[id] {
			return id
		}
	}
}

func checkID(id string, f devcluster.File, taken map[string]bool) error {
	if err := cluster.ValidateNodeID(cluster.NodeID(id)); err != nil {
		return fmt.Errorf("%w: id: %v", ErrInvalid, err)
	}
	if taken[id] {
		return fmt.Errorf("%w: node id %s: the cluster has a node %s", ErrTaken, id, id)
	}
	// meta-N may name a meta replica `shale admin meta add` makes later.
	if strings.HasPrefix(id, "meta-") {
		return fmt.Errorf("%w: node id %s: meta-N names the meta replicas", ErrTaken, id)
	}
	for _, m := range f.Metas {
		if m.ID == id {
			return fmt.Errorf("%w: node id %s: a meta replica is %s", ErrTaken, id, id)
		}
	}
	for _, r := range reservedIDs {
		if r == id {
			return fmt.Errorf("%w: node id %s: the dev cluster's %s process has that name", ErrTaken, id, r)
		}
	}
	return nil
}

// checkData fills n.Data's default and checks it: absolute, not the dev's
// own files (inside DATA only under DATA/nodes), and apart from every other
// node's and meta replica's data dir.
func checkData(data string, n *devcluster.Node, f devcluster.File) error {
	nodes := filepath.Join(data, "nodes")
	if n.Data == "" {
		n.Data = filepath.Join(nodes, n.ID)
	}
	if !filepath.IsAbs(n.Data) {
		return fmt.Errorf("%w: data dir %q is not an absolute path", ErrInvalid, n.Data)
	}
	n.Data = filepath.Clean(n.Data)
	if within(data, n.Data) && !(within(nodes, n.Data) && n.Data != nodes) {
		return fmt.Errorf("%w: data dir %s: inside %s, a node's data goes under %s", ErrInvalid, n.Data, data, nodes)
	}
	if within(n.Data, data) {
		return fmt.Errorf("%w: data dir %s holds the whole dev cluster (%s)", ErrInvalid, n.Data, data)
	}
	for _, o := range f.Nodes {
		if o.Data != "" && (within(o.Data, n.Data) || within(n.Data, o.Data)) {
			return fmt.Errorf("%w: data dir %s: node %s keeps its data in %s", ErrTaken, n.Data, o.ID, o.Data)
		}
	}
	for _, m := range f.Metas {
		if m.Data != "" && (within(m.Data, n.Data) || within(n.Data, m.Data)) {
			return fmt.Errorf("%w: data dir %s: meta replica %s keeps its data in %s", ErrTaken, n.Data, m.ID, m.Data)
		}
	}
	return nil
}

// within reports whether path is dir or inside it (both clean and
// absolute).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// validLabel accepts what a failure-domain label may be: 1-64 of
// [A-Za-z0-9._-], not starting with a dot (so it is safe in a flag, a file
// name and a zone/rack/host path).
func validLabel(s string) bool {
	return cluster.ValidateNodeID(cluster.NodeID(s)) == nil
}
