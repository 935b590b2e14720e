package repair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/repair"
	"github.com/shale-store/shale/storage"
)

// The loop aborts a multipart upload once it is AbortUploadsAfter old: the
// upload is gone and its parts' shards are queued as garbage, as an S3
// AbortMultipartUpload leaves them. A younger upload stays; a negative
// setting keeps every upload.
func TestLoopAbortsStaleUploads(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	md, err := meta.Open(meta.Config{FS: vfs.NewMem(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	nodes := memNodes{}
	for i := range 6 {
		id := cluster.NodeID(fmt.Sprintf("node-%d", i))
		nodes[id] = storage.NewMem(storage.MemConfig{})
		if err := md.Heartbeat(ctx, meta.NodeReport{ID: id, Addr: string(id), Domain: cluster.Domain{Zone: fmt.Sprintf("z%d", i), Rack: "r", Host: string(id)}, Capacity: 1 << 40, Free: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	co, err := object.New(object.Config{K: 4, M: 2, BlockSize: 4096, ReplicateMax: -1, MapRefresh: time.Nanosecond, Now: clk.Now}, md, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if err := md.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	old, err := co.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "old"})
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 10_000)
	part, err := co.UploadPart(ctx, old.ID, 1, object.PutInput{Bucket: "b", Key: "old", Body: bytes.NewReader(body), Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	young, err := co.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "young"})
	if err != nil {
		t.Fatal(err)
	}

	never := repair.NewLoop(repair.Config{Now: clk.Now, AbortUploadsAfter: -1}, md, co)
	loop := repair.NewLoop(repair.Config{Now: clk.Now}, md, co) // the default: 7 days
	pass := func(l *repair.Loop) repair.PassResult {
		t.Helper()
		res, err := l.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	exists := func(u meta.Upload) bool {
		t.Helper()
		_, err := md.GetUpload(ctx, u.Bucket, u.Key, u.ID)
		if err != nil && !errors.Is(err, meta.ErrNoSuchUpload) {
			t.Fatal(err)
		}
		return err == nil
	}

	clk.Advance(repair.DefaultAbortUploadsAfter - time.Hour) // old is exactly 7 days old: not yet
	if res := pass(loop); res.StaleUploads != 0 || !exists(old) || !exists(young) {
		t.Fatalf("at 7 days: aborted %d, old %v young %v", res.StaleUploads, exists(old), exists(young))
	}
	clk.Advance(time.Second)
	if res := pass(never); res.StaleUploads != 0 || !exists(old) {
		t.Fatalf("AbortUploadsAfter < 0 aborted %d", res.StaleUploads)
	}
	if res := pass(loop); res.StaleUploads != 1 || exists(old) || !exists(young) {
		t.Fatalf("past 7 days: aborted %d, old %v young %v", res.StaleUploads, exists(old), exists(young))
	}
	gs, err := md.ListGarbage(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	queued := map[string]bool{}
	for _, g := range gs {
		queued[string(g.Node)+"/"+g.ShardID] = true
	}
	for _, sh := range part.Segment.Shards {
		if sh.Node != "" && !queued[string(sh.Node)+"/"+sh.ID] {
			t.Fatalf("part shard %s on %s not queued as garbage (queue %v)", sh.ID, sh.Node, queued)
		}
	}
	clk.Advance(time.Hour)
	if res := pass(loop); res.StaleUploads != 1 || exists(young) {
		t.Fatalf("young past 7 days: aborted %d, exists %v", res.StaleUploads, exists(young))
	}
}
