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
	wrapped, g := guard(inner, 0)
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

// TestGuardQuietPeriod: in the quiet period vote requests are refused and
// everything else reaches raft; after it, votes do too.
func TestGuardQuietPeriod(t *testing.T) {
	for _, tc := range []struct {
		quiet  time.Duration
		refuse bool
	}{{time.Hour, true}, {time.Nanosecond, false}} {
		_, inner := raft.NewInmemTransport("m0")
		wrapped, g := guard(inner, tc.quiet)
		_, cand := raft.NewInmemTransport("c")
		cand.Connect("m0", inner)
		got := make(chan any, 2)
		go func() {
			for rpc := range wrapped.Consumer() {
				got <- rpc.Command
				switch rpc.Command.(type) {
				case *raft.RequestVoteRequest:
					rpc.Respond(&raft.RequestVoteResponse{Granted: true}, nil)
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
				}
			}
		}()
		time.Sleep(time.Millisecond) // past the short quiet period
		var vr raft.RequestVoteResponse
		verr := cand.RequestVote("m0", "m0", &raft.RequestVoteRequest{Term: 5}, &vr)
		var ar raft.AppendEntriesResponse
		aerr := cand.AppendEntries("m0", "m0", &raft.AppendEntriesRequest{Term: 5, Entries: []*raft.Log{{Index: 1}}}, &ar)
		if aerr != nil || !ar.Success {
			t.Fatalf("quiet %v: append entries: %v, %+v", tc.quiet, aerr, ar)
		}
		if tc.refuse && (verr == nil || vr.Granted) {
			t.Fatalf("quiet %v: vote went through (%v, %+v)", tc.quiet, verr, vr)
		}
		if !tc.refuse && (verr != nil || !vr.Granted) {
			t.Fatalf("quiet %v: vote refused after the quiet period: %v", tc.quiet, verr)
		}
		g.stop()
	}
}
