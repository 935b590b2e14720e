package meta

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/internal/testclock"
)

func staleIDs(t *testing.T, s *Store, before time.Time, limit int) []string {
	t.Helper()
	us, err := s.StaleUploads(context.Background(), before, limit)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	return ids
}

// StaleUploads lists the uploads initiated before a time, across buckets,
// oldest first, and forgets them once completed or aborted.
func TestStaleUploads(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := Open(Config{FS: vfs.NewMem(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, b := range []string{"b1", "b2"} {
		if err := s.CreateBucket(ctx, b, ""); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i, b := range []string{"b2", "b1", "b2", "b1"} {
		u, err := s.CreateUpload(ctx, Upload{Bucket: b, Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && u.ID <= ids[i-1] {
			t.Fatalf("upload id %s not after the earlier upload's %s", u.ID, ids[i-1])
		}
		ids = append(ids, u.ID)
		clk.Advance(time.Hour)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := staleIDs(t, s, t0, 0); len(got) != 0 {
		t.Fatalf("stale before the first: %v", got)
	}
	if got := staleIDs(t, s, t0.Add(2*time.Hour), 0); len(got) != 2 || got[0] != ids[0] || got[1] != ids[1] {
		t.Fatalf("stale before 2h: %v, want %v", got, ids[:2])
	}
	if got := staleIDs(t, s, t0.Add(10*time.Hour), 3); len(got) != 3 || got[2] != ids[2] {
		t.Fatalf("stale, limit 3: %v", got)
	}
	if err := s.AbortUpload(ctx, "b2", "k", ids[0]); err != nil {
		t.Fatal(err)
	}
	// Deleting a bucket aborts its uploads: they leave the age index too.
	if err := s.DeleteBucket(ctx, "b2"); err != nil {
		t.Fatal(err)
	}
	if got := staleIDs(t, s, t0.Add(10*time.Hour), 0); len(got) != 2 || got[0] != ids[1] || got[1] != ids[3] {
		t.Fatalf("stale after abort and bucket delete: %v, want %v", got, []string{ids[1], ids[3]})
	}
}

// A store written before uploads were indexed by age gets the index built
// when it opens.
func TestOpenIndexesOldUploadsByAge(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	clk := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := Open(Config{FS: fs, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	// Two uploads as an old store wrote them: random IDs, no ua/ entries.
	b := s.db.NewBatch()
	for i, id := range []string{"ffff", "0000"} {
		u := Upload{ID: id, Bucket: "b", Key: "k", Created: clk.Now().Add(time.Duration(i) * time.Hour)}
		_ = b.Set(uploadKey(u.ID), mustJSON(u), nil)
		_ = b.Set(uploadIndexKey(u.Bucket, u.Key, u.ID), nil, nil)
	}
	_ = b.Delete(keyUploadByAge, nil)
	if err := s.commit(b); err != nil {
		t.Fatal(err)
	}
	if got := staleIDs(t, s, clk.Now().Add(time.Hour*24), 0); len(got) != 0 {
		t.Fatalf("test setup: ua/ already holds %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Config{FS: fs, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := staleIDs(t, s, clk.Now().Add(time.Hour*24), 0); len(got) != 2 || got[0] != "ffff" || got[1] != "0000" {
		t.Fatalf("after reopen: stale %v, want [ffff 0000] (by age)", got)
	}
	// Aborting an old upload drops its age entry too.
	if err := s.AbortUpload(ctx, "b", "k", "ffff"); err != nil {
		t.Fatal(err)
	}
	if got := staleIDs(t, s, clk.Now().Add(time.Hour*24), 0); len(got) != 1 || got[0] != "0000" {
		t.Fatalf("after abort: stale %v", got)
	}
}
