package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// TestMetaServeAndStop runs `shale meta` in process: it announces its
// address, serves signed requests, stops when its context ends, and a second
// run on the same data dir finds what the first stored.
func TestMetaServeAndStop(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	f := metaFlags{data: filepath.Join(dir, "meta"), listen: "127.0.0.1:0", secretFile: secretFile,
		downAfter: 5 * time.Second, outAfter: 10 * time.Minute}

	run := func(t *testing.T, check func(c *metaremote.Client)) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		addr, done := startTestMeta(t, ctx, f)
		secret, err := peerauth.LoadSecret(secretFile)
		if err != nil {
			t.Fatal(err)
		}
		check(metaremote.NewClient("http://"+addr, secret, &http.Client{}))
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("runMeta: %v", err)
		}
	}
	ctx := context.Background()
	run(t, func(c *metaremote.Client) {
		if err := c.CreateBucket(ctx, "b", ""); err != nil {
			t.Fatal(err)
		}
		if err := c.Heartbeat(ctx, meta.NodeReport{ID: "n1", Addr: "127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
	})
	run(t, func(c *metaremote.Client) {
		if _, err := c.HeadBucket(ctx, "b"); err != nil {
			t.Fatalf("bucket after restart: %v", err)
		}
		m, err := c.Map(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := m.Node("n1"); !ok || n.State != cluster.Up {
			t.Fatalf("node after restart: %+v", m.Nodes())
		}
	})
}

// startTestMeta runs runMeta(ctx, f) in a goroutine and returns the address
// from its listening line, and the channel its result arrives on.
func startTestMeta(t *testing.T, ctx context.Context, f metaFlags) (string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runMeta(ctx, pw, f)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v (run: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "meta listening on ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	return addr, done
}
