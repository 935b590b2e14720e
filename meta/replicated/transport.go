package replicated

import (
	"sync"

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
}

// guardedPreVote is a guardedTransport over a transport that supports
// pre-vote: raft asks the transport it is given whether it does.
type guardedPreVote struct{ *guardedTransport }

func (g guardedPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// guard returns the transport to give raft and the guard to stop.
func guard(t raft.Transport) (raft.Transport, *guardedTransport) {
	g := &guardedTransport{Transport: t}
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

// stop waits for the heartbeats in progress and refuses later ones.
func (g *guardedTransport) stop() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
