package meta_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// BenchmarkCommitNewKeyInBigStore: commits of new keys (each looks its key
// up first, and misses) and lookups of missing keys in a store already
// holding 40,000 objects, on an in-memory file system (no syncs: the
// lookups and the memtable are what is measured).
func BenchmarkCommitNewKeyInBigStore(b *testing.B) {
	s, err := meta.Open(meta.Config{Dir: "/db", FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		b.Fatal(err)
	}
	seg := meta.Segment{Number: 1, K: 4, M: 2}
	for i := 0; i < 6; i++ {
		seg.Shards = append(seg.Shards, meta.ShardRef{Index: i, Node: cluster.NodeID(fmt.Sprintf("n%d", i)), ID: "x"})
	}
	commit := func(key string) {
		m := meta.Manifest{Bucket: "b", Key: key, Segments: []meta.Segment{seg}}
		if _, err := s.Commit(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 40_000 {
		commit(fmt.Sprintf("fill/%08d", i*7919%40_000))
	}
	b.Run("commit-new", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			commit(fmt.Sprintf("new/%09d", i))
		}
	})
	b.Run("get-missing", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Get(ctx, "b", fmt.Sprintf("fill/%08dx", i%40_000)); !errors.Is(err, meta.ErrNoSuchKey) {
				b.Fatal(err)
			}
		}
	})
}
