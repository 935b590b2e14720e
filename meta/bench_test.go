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
	s, commit := benchStore(b, meta.Config{Dir: "/db", FS: vfs.NewMem()})
	for i := range 40_000 {
		commit(fmt.Sprintf("fill/%08d", i*7919%40_000), i)
	}
	b.Run("commit-new", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			commit(fmt.Sprintf("new/%09d", i), i)
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

// BenchmarkCommit measures synced commits of small manifests on disk.
func BenchmarkCommit(b *testing.B) {
	_, commit := benchStore(b, meta.Config{Dir: b.TempDir()})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		commit(fmt.Sprintf("k%09d", i), i)
	}
}

// benchStore opens a store with bucket "b" and returns a func committing a
// 4+2 manifest under key whose shard ids carry n.
func benchStore(b *testing.B, cfg meta.Config) (*meta.Store, func(key string, n int)) {
	s, err := meta.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		b.Fatal(err)
	}
	return s, func(key string, n int) {
		seg := meta.Segment{Number: 1, K: 4, M: 2}
		for j := range 6 {
			seg.Shards = append(seg.Shards, meta.ShardRef{Index: j, Node: cluster.NodeID(fmt.Sprintf("n%d", j)), ID: fmt.Sprintf("s%d-%d", n, j)})
		}
		if _, err := s.Commit(ctx, meta.Manifest{Bucket: "b", Key: key, Segments: []meta.Segment{seg}}); err != nil {
			b.Fatal(err)
		}
	}
}
