package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/storage"
)

// fakeRebuilder records the rebuilds it is asked for; block, when set,
// holds each one until it is closed (or the request's ctx ends).
type fakeRebuilder struct {
	mu      sync.Mutex
	calls   []RebuildRequest
	ids     []string
	started chan struct{} // one send per rebuild begun, when set
	block   chan struct{}
	deaf    bool // block ignores ctx
}

func (f *fakeRebuilder) Rebuild(ctx context.Context, id string, req RebuildRequest) (storage.Info, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	f.ids = append(f.ids, id)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil && f.deaf {
		<-f.block
	} else if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return storage.Info{}, ctx.Err()
		}
	}
	return storage.Info{ID: id, Size: 1234, Checksum: 99}, nil
}

func (f *fakeRebuilder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func validRebuild() RebuildRequest {
	req := RebuildRequest{K: 2, M: 1, BlockSize: 4096, Size: 10_000, Index: 2}
	req.Sources = []RebuildSource{
		{Node: "n2", Addr: "127.0.0.1:1", ID: "v.1.0", Checksum: 1},
		{Node: "n3", Addr: "127.0.0.1:2", ID: "v.1.1", Checksum: 2},
		{}, // the shard to rebuild
	}
	return req
}

func TestRebuildRoundTrip(t *testing.T) {
	rb := &fakeRebuilder{}
	srv := serve(t, newFake(), HandlerConfig{Rebuilder: rb})
	c := NewClient(srv.URL, testNode, secret, nil)
	want := validRebuild()
	info, err := c.Rebuild(t.Context(), "v.1.2.rX", want)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "v.1.2.rX" || info.Size != 1234 || info.Checksum != 99 {
		t.Fatalf("info %+v", info)
	}
	if rb.count() != 1 || rb.ids[0] != "v.1.2.rX" {
		t.Fatalf("rebuilder saw %v %v", rb.ids, rb.calls)
	}
	got, _ := json.Marshal(rb.calls[0])
	exp, _ := json.Marshal(want)
	if !bytes.Equal(got, exp) {
		t.Fatalf("rebuilder got %s, sent %s", got, exp)
	}
}

// Unauthenticated, forged, tampered and misaddressed rebuild requests are
// refused before the rebuilder is reached.
func TestRebuildRefusesUnauthenticated(t *testing.T) {
	rb := &fakeRebuilder{}
	srv := serve(t, newFake(), HandlerConfig{Rebuilder: rb})
	ctx := t.Context()
	body, _ := json.Marshal(validRebuild())
	post := func(name string, sign func(*http.Request), b []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/rebuild/v.1.2.rX", bytes.NewReader(b))
		if sign != nil {
			sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, resp.StatusCode)
		}
	}
	post("unsigned", nil, body)
	post("wrong secret", func(r *http.Request) {
		peerauth.NewSigner(bytes.Repeat([]byte{8}, 32), NodeIdentity(testNode)).Sign(r, peerauth.BodySHA256(body))
	}, body)
	post("signed for another node", func(r *http.Request) {
		peerauth.NewSigner(secret, NodeIdentity("n2")).Sign(r, peerauth.BodySHA256(body))
	}, body)
	// A captured request whose body is swapped for another (say, other
	// sources): the signature covers the body's hash.
	other := validRebuild()
	other.Sources[0].Addr = "10.9.9.9:80"
	forged, _ := json.Marshal(other)
	post("body swapped", func(r *http.Request) {
		peerauth.NewSigner(secret, NodeIdentity(testNode)).Sign(r, peerauth.BodySHA256(body))
	}, forged)
	post("stale date", func(r *http.Request) {
		peerauth.NewSigner(secret, NodeIdentity(testNode)).SignAt(r, peerauth.BodySHA256(body), time.Now().Add(-time.Hour))
	}, body)

	bad := NewClient(srv.URL, testNode, bytes.Repeat([]byte{8}, 32), nil)
	if _, err := bad.Rebuild(ctx, "v.1.2.rX", validRebuild()); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong-secret client: %v, want ErrUnauthorized", err)
	}
	if n := rb.count(); n != 0 {
		t.Fatalf("the rebuilder was reached %d times", n)
	}
}

// Requests that do not describe a segment are refused with 400 and never
// reach the rebuilder; a node without a rebuilder does not serve the route.
func TestRebuildValidatesAndIsOptional(t *testing.T) {
	rb := &fakeRebuilder{}
	srv := serve(t, newFake(), HandlerConfig{Rebuilder: rb})
	c := NewClient(srv.URL, testNode, secret, nil)
	ctx := t.Context()
	for name, mut := range map[string]func(*RebuildRequest){
		"k 0":            func(r *RebuildRequest) { r.K = 0 },
		"too wide":       func(r *RebuildRequest) { r.M = 300 },
		"block size":     func(r *RebuildRequest) { r.BlockSize = 0 },
		"negative size":  func(r *RebuildRequest) { r.Size = -1 },
		"index":          func(r *RebuildRequest) { r.Index = 3 },
		"sources":        func(r *RebuildRequest) { r.Sources = r.Sources[:2] },
		"too few":        func(r *RebuildRequest) { r.Sources[1] = RebuildSource{} },
		"no address":     func(r *RebuildRequest) { r.Sources[0].Addr = "" },
		"address path":   func(r *RebuildRequest) { r.Sources[0].Addr = "10.0.0.1:80/admin" },
		"address port":   func(r *RebuildRequest) { r.Sources[0].Addr = "10.0.0.1:http" },
		"huge size":      func(r *RebuildRequest) { r.Size = 1 << 62 },
		"only the index": func(r *RebuildRequest) { r.Index = 0 },
		"copy without its source": func(r *RebuildRequest) {
			r.Copy = true // Index 2 has no source: a copy reads only its own
		},
		"copy source address": func(r *RebuildRequest) {
			r.Copy, r.Index = true, 0
			r.Sources[0].Addr = "10.0.0.1:80/admin"
		},
	} {
		req := validRebuild()
		mut(&req)
		var e *Error
		if _, err := c.Rebuild(ctx, "x", req); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
			t.Errorf("%s: %v, want a 400", name, err)
		}
	}
	// A copy needs only its own source, however few others there are.
	cp := validRebuild()
	cp.Copy, cp.Index = true, 0
	cp.Sources[1] = RebuildSource{}
	if err := cp.Validate(); err != nil {
		t.Errorf("a copy with its source: %v", err)
	}
	// Over the size bound (signed, so it reaches the handler).
	big := validRebuild()
	big.Sources[0].ID = strings.Repeat("a", maxRebuildRequest)
	var e *Error
	if _, err := c.Rebuild(ctx, "x", big); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("oversized request: %v, want a 400", err)
	}
	if n := rb.count(); n != 0 {
		t.Fatalf("the rebuilder was reached %d times", n)
	}

	plain := serve(t, newFake(), HandlerConfig{})
	pc := NewClient(plain.URL, testNode, secret, nil)
	if _, err := pc.Rebuild(ctx, "x", validRebuild()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("node without a rebuilder: %v, want a 404", err)
	}
}

// MaxRebuilds run at once; one more waits for a slot and, when its
// RebuildTimeout passes first, fails without reaching the rebuilder.
func TestRebuildConcurrencyIsBounded(t *testing.T) {
	rb := &fakeRebuilder{started: make(chan struct{}, 4), block: make(chan struct{}), deaf: true}
	srv := serve(t, newFake(), HandlerConfig{Rebuilder: rb, MaxRebuilds: 1, RebuildTimeout: 200 * time.Millisecond})
	c := NewClient(srv.URL, testNode, secret, nil)
	ctx := t.Context()
	first := make(chan error, 1)
	go func() {
		_, err := c.Rebuild(ctx, "first", validRebuild())
		first <- err
	}()
	<-rb.started // the first holds the only slot
	if _, err := c.Rebuild(ctx, "second", validRebuild()); err == nil {
		t.Fatal("a second rebuild ran while the only slot was held")
	}
	if n := rb.count(); n != 1 {
		t.Fatalf("the rebuilder was reached %d times, want 1", n)
	}
	close(rb.block)
	if err := <-first; err != nil {
		t.Fatalf("the first rebuild: %v", err)
	}
}

// FuzzRebuildRequest: the rebuild endpoint's body parser never panics, and
// whatever it accepts is within the bounds the node relies on: a layout of
// at most 256 shards, one source per shard, an index among them, a size
// at most S3's largest object, sources at host:port.
func FuzzRebuildRequest(f *testing.F) {
	good, _ := json.Marshal(validRebuild())
	f.Add(good)
	f.Add([]byte(`{"k":1,"m":255,"block_size":64,"size":0,"index":0,"sources":[]}`))
	f.Add([]byte(`{"k":2,"m":1,"block_size":4096,"size":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req RebuildRequest
		if json.Unmarshal(b, &req) != nil || req.Validate() != nil {
			return
		}
		n := req.K + req.M
		if req.K < 1 || req.M < 0 || n > 256 || len(req.Sources) != n || req.Index < 0 || req.Index >= n ||
			req.Size < 0 || req.Size > maxRebuildSize || req.BlockSize <= 0 {
			t.Fatalf("accepted %+v", req)
		}
		for i, s := range req.Sources {
			if s.Node == "" || i == req.Index {
				continue
			}
			if _, _, err := net.SplitHostPort(s.Addr); err != nil || s.ID == "" {
				t.Fatalf("accepted source %d %+v", i, s)
			}
		}
	})
}
