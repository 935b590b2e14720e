package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/shale-store/shale/cluster"
	storageremote "github.com/shale-store/shale/storage/remote"
	"github.com/shale-store/shale/storage/storetest"
)

// startNodeTLS runs a node in-process with internal TLS and returns its address.
func startNodeTLS(t *testing.T, id string, secret []byte, itls internalTLSFlags) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := nodeFlags{data: t.TempDir(), listen: "127.0.0.1:0", id: id, itls: itls}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runNode(ctx, pw, io.Discard, f, secret, &fakeMeta{ch: make(chan struct{}, 1)})
		pw.Close()
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", id, err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("node %s: %v", id, err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
}

// recordingTransport keeps a copy of every request it sends.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(req.Context()))
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// Two real nodes (runNode, as `shale node` runs them) with internal TLS:
// shards go in and out through the gateway's dialer over mutual TLS; a
// plain-HTTP client gets nothing; and a request captured on its way to
// node-1, replayed to node-2 with node-1's Host header by a holder of a
// cluster certificate, gets 401.
func TestNodesOverInternalTLSRefuseReplayToAnotherNode(t *testing.T) {
	secret := bytes.Repeat([]byte{5}, 32)
	certs, err := devInternalTLS(t.TempDir(), []string{"node-1", "node-2", "gateway"})
	if err != nil {
		t.Fatal(err)
	}
	a1 := startNodeTLS(t, "node-1", secret, certs["node-1"])
	a2 := startNodeTLS(t, "node-2", secret, certs["node-2"])
	inet, err := certs["gateway"].load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	st, err := newNodeDialer(secret, inet).Store(cluster.Node{ID: "node-1", Addr: a1})
	if err != nil {
		t.Fatal(err)
	}
	sh := storetest.Stream(t, 1, 2)
	if _, err := st.Put(ctx, "obj.0", bytes.NewReader(sh)); err != nil {
		t.Fatalf("put over internal TLS: %v", err)
	}
	if _, err := storageremote.NewClient("http://"+a1, "node-1", secret, nil).Stat(ctx, "obj.0"); err == nil {
		t.Fatal("a TLS node answered plain HTTP")
	}

	// Both nodes hold a shard of that id; a DELETE meant for node-1 is
	// captured on the way.
	c2 := storageremote.NewClient(inet.url(a2), "node-2", secret, &http.Client{Transport: inet.transport()})
	if _, err := c2.Put(ctx, "obj.0", bytes.NewReader(sh)); err != nil {
		t.Fatal(err)
	}
	rec := &recordingTransport{base: inet.transport()}
	c1 := storageremote.NewClient(inet.url(a1), "node-1", secret, &http.Client{Transport: rec})
	if err := c1.Delete(ctx, "obj.0"); err != nil {
		t.Fatal(err)
	}
	captured := rec.reqs[0]
	replay, err := http.NewRequestWithContext(ctx, captured.Method, inet.url(a2)+captured.URL.RequestURI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	replay.Header = captured.Header.Clone()
	replay.Host = a1
	resp, err := (&http.Client{Transport: inet.transport()}).Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replay to node-2: %d, want 401", resp.StatusCode)
	}
	if _, err := c2.Stat(ctx, "obj.0"); err != nil {
		t.Fatalf("node-2 lost its shard to a replayed request: %v", err)
	}
}
