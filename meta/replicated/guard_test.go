package replicated

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestGuardWaitsForHeartbeats: stop (which Node.Close calls between raft's
// Shutdown and closing the stores) waits for a fast-path heartbeat in
// progress, and later heartbeats are refused without reaching raft. Raft's
// Shutdown does not stop the transport's connection handlers, and one that
// had passed raft's shutdown check wrote the term to the closed log store
// ("pebble: closed" panic seen with the network transport under -race).
func TestGuardWaitsForHeartbeats(t *testing.T) {
	_, inner := raft.NewInmemTransport("m0")
	wrapped, g := guard(inner)
	if _, ok := wrapped.(raft.WithPreVote); !ok {
		t.Fatal("the guard hides the transport's pre-vote")
	}
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	wrapped.SetHeartbeatHandler(func(rpc raft.RPC) {
		calls++
		close(entered)
		<-release
		rpc.Respond(nil, nil)
	})
	hb := g.installed // what the inner transport calls
	first := make(chan raft.RPCResponse, 1)
	go hb(raft.RPC{Command: &raft.AppendEntriesRequest{}, RespChan: first})
	<-entered
	stopped := make(chan struct{})
	go func() { g.stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned while a heartbeat was in progress")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-stopped
	if r := <-first; r.Error != nil {
		t.Fatalf("heartbeat in progress: %v", r.Error)
	}
	later := make(chan raft.RPCResponse, 1)
	hb(raft.RPC{Command: &raft.AppendEntriesRequest{}, RespChan: later})
	if r := <-later; !errors.Is(r.Error, raft.ErrRaftShutdown) || calls != 1 {
		t.Fatalf("heartbeat after stop: %v, raft called %d times", r.Error, calls)
	}
}
