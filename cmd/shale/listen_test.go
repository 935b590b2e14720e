package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/serve"
	"github.com/shale-store/shale/internal/serve/servetest"
)

// testServe is the listener limits the role tests start with: low enough
// to reach, a header timeout long enough to observe on a loaded machine.
var testServe = serve.Config{MaxConns: 2, ReadHeaderTimeout: 1500 * time.Millisecond}

// startRole runs run in a goroutine until the test ends and returns the
// address from the first line it writes that starts with prefix.
func startRole(t *testing.T, prefix string, run func(ctx context.Context, stdout io.Writer) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, pw)
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", prefix, err)
		}
	})
	br := bufio.NewReader(pr)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading lines for %q…: %v", prefix, err)
		}
		if addr, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			go func() { _, _ = io.Copy(io.Discard, br) }()
			return addr
		}
	}
}

// TestEveryRoleListenerIsLimited: the S3 gateway, meta and its metrics
// listener, a node and the
// pprof endpoint each queue connections past their --max-conns and cut a
// client that is slow to send its headers (slowloris) after
// --read-header-timeout.
func TestEveryRoleListenerIsLimited(t *testing.T) {
	t.Run("gateway", func(t *testing.T) {
		t.Setenv("SHALE_ACCESS_KEY", "AK")
		t.Setenv("SHALE_SECRET_KEY", "SK")
		f := gatewayFlags{listen: "127.0.0.1:0", metaAddr: "127.0.0.1:1", region: "us-east-1", secretFile: filepath.Join(t.TempDir(), "secret"), serve: testServe}
		addr := startRole(t, "gateway listening on http://", func(ctx context.Context, w io.Writer) error { return runGateway(ctx, w, f) })
		servetest.CheckLimits(t, addr, testServe.MaxConns, testServe.ReadHeaderTimeout)
	})
	t.Run("meta", func(t *testing.T) {
		dir := t.TempDir()
		f := metaFlags{data: filepath.Join(dir, "meta"), listen: "127.0.0.1:0", secretFile: filepath.Join(dir, "secret"),
			downAfter: 5 * time.Second, outAfter: 10 * time.Minute, serve: testServe}
		addr := startRole(t, "meta listening on ", func(ctx context.Context, w io.Writer) error { return runMeta(ctx, w, f) })
		servetest.CheckLimits(t, addr, testServe.MaxConns, testServe.ReadHeaderTimeout)
	})
	t.Run("meta metrics", func(t *testing.T) {
		dir := t.TempDir()
		f := metaFlags{data: filepath.Join(dir, "meta"), listen: "127.0.0.1:0", secretFile: filepath.Join(dir, "secret"),
			downAfter: 5 * time.Second, outAfter: 10 * time.Minute, metricsListen: "127.0.0.1:0", metricsServe: testServe}
		addr := startRole(t, "meta metrics on ", func(ctx context.Context, w io.Writer) error { return runMeta(ctx, w, f) })
		servetest.CheckLimits(t, addr, testServe.MaxConns, testServe.ReadHeaderTimeout)
	})
	t.Run("node", func(t *testing.T) {
		f := nodeFlags{data: t.TempDir(), listen: "127.0.0.1:0", id: "n1", heartbeat: time.Hour, scrubInterval: time.Hour, capacity: 1 << 30, serve: testServe}
		secret := bytes.Repeat([]byte{3}, 32)
		addr := startRole(t, "node n1 listening on ", func(ctx context.Context, w io.Writer) error {
			return runNode(ctx, w, io.Discard, f, secret, &fakeMeta{ch: make(chan struct{}, 1)})
		})
		servetest.CheckLimits(t, addr, testServe.MaxConns, testServe.ReadHeaderTimeout)
	})
	t.Run("pprof", func(t *testing.T) {
		addr := startRole(t, "pprof listening on ", func(ctx context.Context, w io.Writer) error {
			stop, err := startPprof(ctx, "127.0.0.1:0", testServe, w)
			if err != nil {
				return err
			}
			<-ctx.Done()
			stop()
			return nil
		})
		servetest.CheckLimits(t, addr, testServe.MaxConns, testServe.ReadHeaderTimeout)
	})
}
