package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMetaMetricsNotOnAPIPort: an unauthenticated scrape of meta's API
// port finds no /metrics (404); the metrics are served on their own
// listener, loopback by default.
func TestMetaMetricsNotOnAPIPort(t *testing.T) {
	def := newMetaCmd().Flags().Lookup("metrics-listen").DefValue
	if host, _, err := net.SplitHostPort(def); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("--metrics-listen defaults to %q, want a loopback address", def)
	}

	dir := t.TempDir()
	f := metaFlags{data: filepath.Join(dir, "meta"), listen: "127.0.0.1:0", secretFile: filepath.Join(dir, "secret"),
		downAfter: 5 * time.Second, outAfter: 10 * time.Minute, metricsListen: def}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runMeta(ctx, pw, f)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runMeta: %v", err)
		}
	}()
	br := bufio.NewReader(pr)
	addrs := map[string]string{}
	for _, prefix := range []string{"meta listening on ", "meta metrics on "} {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading %q line: %v", prefix, err)
		}
		a, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		if !ok {
			t.Fatalf("line %q, want %q…", line, prefix)
		}
		addrs[prefix] = a
	}
	go func() { _, _ = io.Copy(io.Discard, br) }()
	api, metrics := addrs["meta listening on "], addrs["meta metrics on "]

	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + api + "/metrics"); code != http.StatusNotFound {
		t.Fatalf("unauthenticated GET /metrics on the API port: %d %.200s, want 404", code, body)
	}
	if code, body := get("http://" + metrics + "/metrics"); code != http.StatusOK || !strings.Contains(body, "shale_repair_bytes_total") {
		t.Fatalf("GET /metrics on the metrics listener: %d %.200s", code, body)
	}
	if host, _, _ := net.SplitHostPort(metrics); !net.ParseIP(host).IsLoopback() {
		t.Fatalf("metrics listener on %s, want loopback", metrics)
	}
}

// A metrics address that cannot be bound stops meta before it serves, with
// an error that says which listener.
func TestMetaMetricsListenBusy(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	f := metaFlags{data: filepath.Join(dir, "meta"), listen: "127.0.0.1:0", secretFile: filepath.Join(dir, "secret"),
		downAfter: 5 * time.Second, outAfter: 10 * time.Minute, metricsListen: busy.Addr().String()}
	err = runMeta(context.Background(), io.Discard, f)
	if err == nil || !strings.Contains(err.Error(), "metrics listen") {
		t.Fatalf("runMeta with a busy --metrics-listen: %v", err)
	}
}
