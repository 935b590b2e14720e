package replicated

import (
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// guardedTransport wraps the caller's transport so that the heartbeats
// raft handles on the transport's own goroutines (its fast path, which
// may write the term to the stable store) are finished before Close closes
// the stores, and refused after: raft's Shutdown stops its goroutines but
// not the transport's connection handlers, so without the guard a
// heartbeat that passed raft's shutdown check could write to a closed
// store (a panic).
type guardedTransport struct {
	raft.Transport
	mu     sync.RWMutex // held for reading by each fast-path heartbeat
	closed bool
	// installed is the guarded handler given to the transport (tests).
	installed func(raft.RPC)

	// With a quiet period (see Config.ReadLease), RPCs reach raft through
	// out, forwarded by forward, which refuses vote requests until
	// quietUntil.
	quietUntil time.Time
	out        chan raft.RPC
	done       chan struct{}
	stopOnce   sync.Once
}

// errQuiet refuses a vote in the quiet period after start.
var errQuiet = errors.New("meta replica: no votes in the first heartbeat timeout after start (read leases rely on it)")

// guardedPreVote is a guardedTransport over a transport that supports
// pre-vote: raft asks the transport it is given whether it does.
type guardedPreVote struct{ *guardedTransport }

func (g guardedPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// guard returns the transport to give raft and the guard to stop. With
// quiet > 0 the replica refuses every vote for that long after start.
func guard(t raft.Transport, quiet time.Duration) (raft.Transport, *guardedTransport) {
	g := &guardedTransport{Transport: t, done: make(chan struct{})}
	if quiet > 0 {
		g.quietUntil = time.Now().Add(quiet)
		g.out = make(chan raft.RPC)
		go g.forward(t.Consumer())
	}
	if _, ok := t.(raft.WithPreVote); ok {
		return guardedPreVote{g}, g
	}
	return g, g
}

func (g *guardedTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.Transport.SetHeartbeatHandler(nil)
		return
	}
	g.installed = func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.closed {
			rpc.Respond(nil, raft.ErrRaftShutdown)
			return
		}
		cb(rpc)
	}
	g.Transport.SetHeartbeatHandler(g.installed)
}

// Close closes the wrapped transport if it can be (raft's Shutdown calls
// it, as it would the transport itself).
func (g *guardedTransport) Close() error {
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// Consumer implements raft.Transport.
func (g *guardedTransport) Consumer() <-chan raft.RPC {
	if g.out != nil {
		return g.out
	}
	return g.Transport.Consumer()
}

// forward hands in's RPCs to raft, refusing vote requests in the quiet
// period, until stop.
func (g *guardedTransport) forward(in <-chan raft.RPC) {
	for {
		select {
		case rpc := <-in:
			if _, vote := rpc.Command.(*raft.RequestVoteRequest); vote && time.Now().Before(g.quietUntil) {
				rpc.Respond(nil, errQuiet)
				continue
			}
			select {
			case g.out <- rpc:
			case <-g.done:
				return // unanswered, as raft leaves the RPCs it has not taken at shutdown
			}
		case <-g.done:
			return
		}
	}
}

// stop waits for the heartbeats in progress and refuses later ones.
func (g *guardedTransport) stop() {
	g.stopOnce.Do(func() { close(g.done) })
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
