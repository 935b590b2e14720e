package meta_test

import (
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/meta"
)

// A bad report against a shard of an upload's part is recorded with the
// part's coordinates (part number, upload id). Once the upload completes,
// repair looks for the shard by manifest segment index and generation, so
// the report must be re-addressed to them, or repair never matches it and
// resolving the queue entry forgets it.
func TestBadPartReportFollowsCompletion(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for n, tag := range map[int]string{1: "p1", 2: "p2"} {
		if err := s.PutPart(ctx, "b", "k", meta.Part{UploadID: u.ID, Segment: oneSegment(n, tag)}); err != nil {
			t.Fatal(err)
		}
	}
	// A scrubber finds shard 1 of part 2 corrupt while the upload runs.
	if err := s.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: "n1", ShardID: "p2-1"}, Reason: "corrupt"}); err != nil {
		t.Fatal(err)
	}
	m := meta.Manifest{Bucket: "b", Key: "k", VersionID: "v", Size: 400, ETag: "x-2",
		Segments: []meta.Segment{oneSegment(1, "p1"), oneSegment(2, "p2")}}
	out, err := s.CompleteUpload(ctx, u.ID, m)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.BadReports(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("bad reports after completion = %+v, want 1", rs)
	}
	want := meta.ShardKey{Bucket: "b", Key: "k", Generation: out.Generation, Segment: 1, Index: 1, Node: "n1", ShardID: "p2-1"}
	if rs[0].ShardKey != want || rs[0].Reason != "corrupt" {
		t.Fatalf("bad report after completion = %+v, want %+v", rs[0], want)
	}
	q, err := s.Degraded(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Generation != out.Generation {
		t.Fatalf("repair queue after completion = %+v", q)
	}
}
