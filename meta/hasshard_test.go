package meta_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// oneSegment is a 2+1 segment whose shard i is "<tag>-<i>" on node "n<i>".
func oneSegment(number int, tag string) meta.Segment {
	seg := meta.Segment{Number: number, Size: 200, ETag: "e-" + tag, K: 2, M: 1, BlockSize: 4096}
	for i := range 3 {
		seg.Shards = append(seg.Shards, meta.ShardRef{
			Index: i, Node: cluster.NodeID(fmt.Sprintf("n%d", i)), ID: fmt.Sprintf("%s-%d", tag, i), Size: 100, Checksum: 1,
		})
	}
	return seg
}

func TestHasShard(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	has := func(node cluster.NodeID, id string) bool {
		t.Helper()
		ok, err := s.HasShard(ctx, node, id)
		if err != nil {
			t.Fatalf("HasShard(%s, %s): %v", node, id, err)
		}
		return ok
	}
	m := meta.Manifest{Bucket: "b", Key: "k", VersionID: "v1", Size: 200, ETag: "x", Created: time.Now(), Segments: []meta.Segment{oneSegment(1, "obj")}}
	if _, err := s.Commit(ctx, m); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPart(ctx, "b", "mp", meta.Part{UploadID: u.ID, Segment: oneSegment(1, "part")}); err != nil {
		t.Fatal(err)
	}
	if !has("n0", "obj-0") || !has("n2", "obj-2") {
		t.Fatal("a committed object's shard is not held")
	}
	if !has("n1", "part-1") {
		t.Fatal("a shard of a part of an upload in progress is not held")
	}
	if has("n1", "obj-0") || has("n0", "obj-00") || has("n0", "obj-") || has("n9", "orphan") {
		t.Fatal("HasShard holds a shard the index does not")
	}
	if _, err := s.Delete(ctx, "b", "k"); err != nil {
		t.Fatal(err)
	}
	if has("n0", "obj-0") {
		t.Fatal("a deleted object's shard is still held")
	}
	if err := s.AbortUpload(ctx, "b", "mp", u.ID); err != nil {
		t.Fatal(err)
	}
	if has("n1", "part-1") {
		t.Fatal("an aborted upload's shard is still held")
	}
	for _, c := range []struct {
		node cluster.NodeID
		id   string
	}{{"bad/node", "x"}, {"n0", ""}} {
		if _, err := s.HasShard(ctx, c.node, c.id); !errors.Is(err, meta.ErrInvalidArgument) {
			t.Fatalf("HasShard(%q, %q) = %v, want ErrInvalidArgument", c.node, c.id, err)
		}
	}
}
