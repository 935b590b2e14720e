package replicated_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/replicated"
)

// TestAdoptSingleProcessStore: a replica started on the directory of a
// single-process meta (its pebble store at the top) keeps every bucket and
// object in it, leads a group of one, and replicas added later receive the
// old data (by snapshot: the log starts after it) and end byte-identical.
func TestAdoptSingleProcessStore(t *testing.T) {
	var want meta.Manifest
	c := newCluster(t, 3, func(cfg *replicated.Config) {
		// m0 adopts and leads alone; m1 and m2 wait to be added.
		if cfg.ID != "m0" {
			cfg.Bootstrap = nil
			return
		}
		cfg.Bootstrap = cfg.Bootstrap[:1]
		old, err := meta.Open(meta.Config{Dir: cfg.Dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := old.CreateBucket(ctx, "old", ""); err != nil {
			t.Fatal(err)
		}
		if want, err = old.Commit(ctx, manifest("old", "k", "v1")); err != nil {
			t.Fatal(err)
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(filepath.Join(c.cfgs[0].Dir, "meta")); err != nil {
		t.Fatalf("the old store was not moved under meta/: %v", err)
	}
	lead := c.leader()
	if c.index(lead) != 0 {
		t.Fatalf("replica %d leads; only the adopting one (0) is in the group", c.index(lead))
	}
	got, err := lead.Get(ctx, "old", "k")
	if err != nil || got.Generation != want.Generation || got.ETag != want.ETag {
		t.Fatalf("adopted object: %+v, %v; want generation %d", got, err, want.Generation)
	}
	for _, id := range []string{"m1", "m2"} {
		if err := lead.AddMember(ctx, meta.Replica{ID: id, Addr: id + ":7000", Raft: id}, true); err != nil {
			t.Fatalf("add %s: %v", id, err)
		}
	}
	if err := lead.CreateBucket(ctx, "new", ""); err != nil {
		t.Fatal(err)
	}
	c.waitApplied(lead.AppliedIndex())
	c.sameKeyspace()
	for i, n := range c.nodes {
		if _, err := n.Store().HeadBucket(ctx, "old"); err != nil {
			t.Errorf("replica %d lacks the adopted bucket: %v", i, err)
		}
	}
	// The group runs on without the adopting replica.
	c.stop(0)
	next := c.leader()
	if _, err := next.Get(ctx, "old", "k"); err != nil {
		t.Fatalf("new leader %d: %v", c.index(next), err)
	}
	if err := next.CreateBucket(ctx, "after", ""); err != nil {
		t.Fatal(err)
	}
	// A restart finds raft state and adopts nothing again.
	c.start(0)
	c.waitApplied(next.AppliedIndex())
	c.sameKeyspace()
}

// TestAdoptRefusesTwoStores: a directory holding both a single-process
// store and a replica's is refused rather than guessed at.
func TestAdoptRefusesTwoStores(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Join(dir, "meta")} {
		s, err := meta.Open(meta.Config{Dir: d})
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	}
	cfg := replicated.Config{ID: "m0", Dir: dir}
	quickConfig(&cfg)
	_, tr := newInmem("m0")
	cfg.Transport = tr
	if n, err := replicated.Open(cfg); err == nil {
		_ = n.Close()
		t.Fatal("opened a directory with two stores")
	} else if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("wrong refusal: %v", err)
	}
}

// TestAdoptRefusedWithPeers: a single-process store started as one of
// several founders (or to join a group) is refused before anything moves:
// founders with empty logs could elect a leader without the old data.
func TestAdoptRefusedWithPeers(t *testing.T) {
	dir := t.TempDir()
	old, err := meta.Open(meta.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.CreateBucket(ctx, "old", ""); err != nil {
		t.Fatal(err)
	}
	_ = old.Close()
	for _, boot := range [][]raft.Server{
		{{ID: "m0", Address: "m0"}, {ID: "m1", Address: "m1"}, {ID: "m2", Address: "m2"}},
		nil, // --join
	} {
		cfg := replicated.Config{ID: "m0", Dir: dir, Bootstrap: boot}
		quickConfig(&cfg)
		_, cfg.Transport = newInmem("m0")
		if n, err := replicated.Open(cfg); !errors.Is(err, replicated.ErrAdoptAlone) {
			if n != nil {
				_ = n.Close()
			}
			t.Fatalf("bootstrap %v: %v, want ErrAdoptAlone", boot, err)
		}
		if !replicated.IsLegacyDir(vfs.Default, dir) {
			t.Fatal("the refused adoption moved the store")
		}
	}
}

// TestLostRaftLogRefused: a replica whose store has applied entries but
// whose raft log is gone refuses to start (a new log would reuse indexes
// the store skips) rather than diverge.
func TestLostRaftLogRefused(t *testing.T) {
	c := newCluster(t, 1, nil)
	lead := c.leader()
	if err := lead.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	c.stop(0)
	if err := os.RemoveAll(filepath.Join(c.cfgs[0].Dir, "raft")); err != nil {
		t.Fatal(err)
	}
	cfg := c.cfgs[0]
	_, cfg.Transport = newInmem("m0")
	if n, err := replicated.Open(cfg); !errors.Is(err, replicated.ErrStateLost) {
		if n != nil {
			_ = n.Close()
		}
		t.Fatalf("reopened without its raft log: %v, want ErrStateLost", err)
	}
}

// TestMembershipSurvivesFailedTransfer: a leadership transfer that fails
// (its target is down) leaves the leader leading, and its membership work
// goes on ticking rather than ending until a next term that never comes.
func TestMembershipSurvivesFailedTransfer(t *testing.T) {
	c := newCluster(t, 3, nil)
	lead := c.leader()
	victim := (c.index(lead) + 1) % 3
	c.stop(victim)
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start := lead.AppliedIndex()
	go func() { done <- lead.Membership(20*time.Millisecond, slog.New(slog.DiscardHandler))(mctx) }()
	// Ticking (each tick a command): the transfer below meets ticks.
	for deadline := time.Now().Add(10 * time.Second); lead.AppliedIndex() < start+3; {
		if time.Now().After(deadline) {
			t.Fatal("no ticks applied")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
	err := lead.TransferLeadership(tctx, c.cfgs[victim].ID)
	tcancel()
	if err == nil {
		t.Fatal("leadership moved to a stopped replica")
	}
	if !lead.IsLeader() {
		t.Skip("leadership moved anyway (an election meanwhile)")
	}
	select {
	case err := <-done:
		t.Fatalf("membership work ended while its replica still leads: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}
