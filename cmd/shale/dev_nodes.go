package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/devctl"
	metaremote "github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/storage"
)

// devProcs are the processes a dev supervises. Each one's exit is reported
// on stderr (an operator's kill -9 is a node failure to watch, not something
// to hide by restarting) until the cluster stops.
type devProcs struct {
	ctx context.Context // the dev's: done when the cluster stops
	log io.Writer

	mu       sync.Mutex
	children []*child
	stopping bool
}

// add supervises c.
func (p *devProcs) add(c *child) {
	p.mu.Lock()
	p.children = append(p.children, c)
	p.mu.Unlock()
	go func() { // ends with c, which stopAll ends at the latest
		select {
		case <-c.done:
			p.mu.Lock()
			stopping := p.stopping
			p.mu.Unlock()
			if !stopping && p.ctx.Err() == nil {
				fmt.Fprintf(p.log, "shale dev: %s (pid %d) exited: %v\n", c.name, c.cmd.Process.Pid, c.err)
			}
		case <-p.ctx.Done():
		}
	}()
}

// stopAll stops every child (SIGTERM, SIGKILL after grace), all at once.
func (p *devProcs) stopAll(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	children := slices.Clone(p.children)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop(grace) }()
	}
	wg.Wait()
}

// devNodeSpecs are the storage nodes a dev cluster runs: node-1…node-N
// spread over the zones as the flags say, then every other node the
// previous cluster file records (those `shale admin node add` added), with
// the zone, rack, host, data dir and capacity it records. Addr is the
// address each had, for the port picker to keep.
func devNodeSpecs(data string, f devFlags, prev devcluster.File) []devcluster.Node {
	prevByID := map[string]devcluster.Node{}
	for _, n := range prev.Nodes {
		prevByID[n.ID] = n
	}
	var out []devcluster.Node
	ours := map[string]bool{}
	for i := 1; i <= f.nodes; i++ {
		id := fmt.Sprintf("node-%d", i)
		zone := fmt.Sprintf("zone-%d", (i-1)%f.zones+1)
		out = append(out, devcluster.Node{ID: id, Zone: zone, Rack: zone + "-rack-1", Host: "host-" + strconv.Itoa(i),
			Data: filepath.Join(data, "nodes", id), Addr: prevByID[id].Addr})
		ours[id] = true
	}
	for _, n := range prev.Nodes {
		if ours[n.ID] {
			continue
		}
		out = append(out, devcluster.Node{ID: n.ID, Zone: n.Zone, Rack: n.Rack, Host: n.Host, Data: n.Data,
			Capacity: n.Capacity, Addr: n.Addr})
	}
	return out
}

// devNodeStarter starts a dev cluster's storage nodes, all with the same
// flags: the ones dev starts with the cluster, the ones it restarts from
// the cluster file, and the ones `shale admin node add` adds.
type devNodeStarter struct {
	exe, data  string
	meta       string // the meta replicas' addresses
	secretFile string
	f          devFlags
}

// args are node n's arguments when it listens on listen.
func (s devNodeStarter) args(n devcluster.Node, listen string, itls internalTLSFlags) []string {
	f := s.f
	args := []string{"node", "--data", n.Data, "--listen", listen, "--id", n.ID, "--zone", n.Zone,
		"--rack", n.Rack, "--host", n.Host, "--secret-file", s.secretFile, "--meta", s.meta}
	if n.Capacity > 0 {
		args = append(args, "--capacity", strconv.FormatInt(n.Capacity, 10))
	}
	if f.scrubRate > 0 {
		args = append(args, "--scrub-rate", strconv.FormatInt(f.scrubRate, 10))
	}
	if f.scrubInterval > 0 {
		args = append(args, "--scrub-interval", f.scrubInterval.String())
	}
	if f.inlineMax != storage.DefaultInlineMax {
		args = append(args, "--inline-max", strconv.Itoa(f.inlineMax))
	}
	args = append(args, "--procs", strconv.Itoa(f.procsEach()))
	return append(args, itls.args()...)
}

// start runs node n on listen (another free port should that one be taken
// meanwhile) and returns its record — Args, Addr and PID set — and the
// process.
func (s devNodeStarter) start(ctx context.Context, n devcluster.Node, listen string, itls internalTLSFlags) (devcluster.Node, *child, error) {
	args := s.args(n, listen, itls)
	c, addr, err := startChildOnPort(ctx, n.ID, s.exe, args, slices.Index(args, "--listen")+1,
		filepath.Join(s.data, "logs", n.ID+".log"), "listening on ")
	if err != nil {
		return n, nil, err
	}
	n.Args = c.cmd.Args[1:]
	n.Addr, n.PID = addr, c.cmd.Process.Pid
	return n, c, nil
}

// devNodeAdder is the dev's handler of the control channel: it adds a
// storage node to the running cluster. devctl.Serve calls it one request at
// a time; it reads the cluster file afresh for each and writes it back with
// the node added.
type devNodeAdder struct {
	start devNodeStarter
	procs *devProcs
	meta  *metaremote.Client
	avoid []string // addresses no node may take (the S3 gateway's)
	tlsOn bool     // --internal-tls: the node gets a certificate of the dev CA
	log   io.Writer
	data  string // DATA, absolute
}

func (a *devNodeAdder) handle(ctx context.Context, r devctl.Request) (devcluster.Node, error) {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	m, err := a.meta.Map(mctx)
	cancel()
	if err != nil {
		return devcluster.Node{}, fmt.Errorf("add node: meta's map: %w", err)
	}
	var known []string
	for _, n := range m.Nodes() {
		known = append(known, string(n.ID))
	}
	cf, err := devcluster.Read(a.data)
	if err != nil {
		return devcluster.Node{}, fmt.Errorf("add node: %w", err)
	}
	n, err := devctl.Plan(a.data, cf, known, *r.AddNode)
	if err != nil {
		return devcluster.Node{}, err
	}
	if ents, err := os.ReadDir(n.Data); err == nil && len(ents) > 0 {
		return devcluster.Node{}, fmt.Errorf("add node %s: %w: data dir %s holds files already (restart the node whose store it is, or give another --node-data)", n.ID, devctl.ErrTaken, n.Data)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return devcluster.Node{}, fmt.Errorf("add node %s: data dir: %w", n.ID, err)
	}
	var itls internalTLSFlags
	if a.tlsOn {
		certs, err := devInternalTLS(a.data, []string{n.ID})
		if err != nil {
			return devcluster.Node{}, fmt.Errorf("add node %s: certificate: %w", n.ID, err)
		}
		itls = certs[n.ID]
	}
	pp := newPorts(a.avoid...)
	listen, err := pp.pick("")
	pp.release()
	if err != nil {
		return devcluster.Node{}, fmt.Errorf("add node %s: %w", n.ID, err)
	}
	n, c, err := a.start.start(ctx, n, listen, itls)
	if err != nil {
		return devcluster.Node{}, fmt.Errorf("add node %s: %w", n.ID, err)
	}
	cf.Nodes = append(cf.Nodes, n)
	if err := devcluster.Write(a.data, cf); err != nil {
		c.stop(5 * time.Second) // not on record: it must not outlive the request
		return devcluster.Node{}, fmt.Errorf("add node %s: record it: %w", n.ID, err)
	}
	a.procs.add(c)
	fmt.Fprintf(a.log, "shale dev: added %s (pid %d) on %s in %s/%s/%s\n", n.ID, n.PID, n.Addr, n.Zone, n.Rack, n.Host)
	return n, nil
}
