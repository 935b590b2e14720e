package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/storage"
	storageremote "github.com/shale-store/shale/storage/remote"
	"github.com/shale-store/shale/storage/storetest"
)

// TestMetaCollectsOrphans runs `shale meta` in process with a short
// --orphan-grace beside a node served over HTTP: the repair loop's
// inventory lists the node through the remote client and deletes the shard
// no manifest references, and keeps the one a manifest references.
func TestMetaCollectsOrphans(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	secret, err := loadSecretFlag(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	mem := storage.NewMem(storage.MemConfig{})
	for _, id := range []string{"orphan.0", "kept.0"} {
		if _, err := mem.Put(ctx, id, bytes.NewReader(storetest.Stream(t, 1, 2))); err != nil {
			t.Fatal(err)
		}
	}
	node := httptest.NewServer(storageremote.NewHandler(mem, storageremote.HandlerConfig{Secret: secret, Node: "n1"}))
	defer node.Close()

	f := metaFlags{data: filepath.Join(dir, "meta"), listen: "127.0.0.1:0", secretFile: secretFile,
		downAfter: time.Minute, outAfter: 10 * time.Minute, garbageGrace: time.Millisecond,
		k: 1, m: 0, orphanGrace: 50 * time.Millisecond, orphanEvery: 10 * time.Millisecond}
	addr, done := startTestMeta(t, ctx, f)
	mc := metaremote.NewClient("http://"+addr, secret, &http.Client{})
	if err := mc.Heartbeat(ctx, meta.NodeReport{ID: "n1", Addr: strings.TrimPrefix(node.URL, "http://"), Capacity: 1 << 30, Free: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := mc.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	m := meta.Manifest{Bucket: "b", Key: "k", VersionID: "kept", Created: time.Now(), Segments: []meta.Segment{{
		Number: 1, K: 1, M: 0, BlockSize: 4096,
		Shards: []meta.ShardRef{{Index: 0, Node: cluster.NodeID("n1"), ID: "kept.0"}},
	}}}
	if _, err := mc.Commit(ctx, m); err != nil {
		t.Fatal(err)
	}

	// The repair loop passes every second; the orphan goes within a few.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := mem.Stat(ctx, "orphan.0")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the orphan was not collected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := mem.Stat(ctx, "kept.0"); err != nil {
		t.Fatalf("the referenced shard: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runMeta: %v", err)
	}
}
