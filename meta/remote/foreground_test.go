package remote_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/remote"
)

// The foreground counter counts the S3 path's calls (bucket, object and
// upload methods), not heartbeats, status, the repair loop's methods or
// requests refused by verification.
func TestForegroundCounter(t *testing.T) {
	ctx := context.Background()
	var fg atomic.Uint64
	srv := httptest.NewServer(remote.NewHandler(openStore(t), secret, remote.HandlerConfig{Foreground: &fg}))
	t.Cleanup(srv.Close)
	c := remote.NewClient(srv.URL, secret, srv.Client())

	if err := c.Heartbeat(ctx, meta.NodeReport{ID: "n1", Addr: "127.0.0.1:1", Capacity: 1 << 30, Free: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Map(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Degraded(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if n := fg.Load(); n != 0 {
		t.Fatalf("background calls counted: %d", n)
	}

	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "b", "missing"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("get: %v", err)
	}
	if _, err := c.List(ctx, "b", meta.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := fg.Load(); n != 3 {
		t.Fatalf("3 foreground calls counted %d", n)
	}

	bad := remote.NewClient(srv.URL, bytes.Repeat([]byte("x"), 40), srv.Client())
	if _, err := bad.Get(ctx, "b", "k"); !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
	if n := fg.Load(); n != 3 {
		t.Fatalf("a refused request counted: %d", n)
	}
}
