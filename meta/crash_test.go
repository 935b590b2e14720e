package meta_test

import (
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/meta"
)

// A commit acknowledged by a store in a directory created on this start
// survives a crash: the directory entries naming it are synced too, not
// only the files in it.
func TestCrashAfterFirstStartKeepsCommits(t *testing.T) {
	fs := vfs.NewStrictMem()
	cfg := meta.Config{FS: fs, Dir: "/data/shale/meta"}
	s, err := meta.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	fs.SetIgnoreSyncs(true)
	_ = s.Close()
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)
	s = openT(t, cfg)
	if _, err := s.HeadBucket(ctx, "b"); err != nil {
		t.Fatalf("bucket acknowledged before the crash: %v", err)
	}
}
