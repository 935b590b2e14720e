package meta

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// A store written before the garbage queue was indexed by node gets the
// index built when it opens.
func TestOpenIndexesOldGarbageByNode(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	s, err := Open(Config{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	// Write the queue as an old store did: g/ keys only, no marker.
	b := s.db.NewBatch()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		g := Garbage{Node: "n1", ShardID: fmt.Sprintf("s%d", i), NotBefore: t0.Add(time.Duration(i) * time.Second)}
		_ = b.Set(garbageKey(g), mustJSON(g), nil)
	}
	_ = b.Delete(keyGarbageByNode, nil)
	if err := s.commit(b); err != nil {
		t.Fatal(err)
	}
	if nodes, _ := s.GarbageNodes(ctx); len(nodes) != 0 {
		t.Fatalf("test setup: gn/ already holds %v", nodes)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Config{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nodes, err := s.GarbageNodes(ctx)
	if err != nil || fmt.Sprint(nodes) != "[n1]" {
		t.Fatalf("GarbageNodes after open = %v, %v", nodes, err)
	}
	gs, err := s.ListGarbagePage(ctx, GarbageQuery{Node: "n1", DueBy: t0.Add(2 * time.Second)})
	if err != nil || len(gs) != 3 || gs[2].ShardID != "s2" {
		t.Fatalf("n1's due entries = %+v, %v", gs, err)
	}
	if err := s.RemoveGarbage(ctx, gs); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.ListGarbage(ctx, 10); len(all) != 2 {
		t.Fatalf("queue after removal = %+v", all)
	}
}
