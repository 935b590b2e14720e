package replicated_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

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
		cfg.Bootstrap = nil // m0 adopts and leads alone; m1 and m2 wait to be added
		if cfg.ID != "m0" {
			return
		}
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
		if err := lead.AddMember(ctx, meta.Replica{ID: id, Addr: id + ":7000", Raft: id}); err != nil {
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
