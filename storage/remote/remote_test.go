package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/storage"
)

var secret = bytes.Repeat([]byte{7}, 32)

// testNode is the id the test handlers serve.
const testNode = "n1"

// fakeStore is an unverifying in-memory storage.Store that records the ids
// it was asked about and can inject errors.
type fakeStore struct {
	mu     sync.Mutex
	shards map[string][]byte
	seen   []string
	calls  int
	// getErr, when set, makes Get's reader fail with it after failAfter bytes.
	getErr    error
	failAfter int
	// opErr, when set, is returned by every operation.
	opErr error
}

func newFake() *fakeStore { return &fakeStore{shards: map[string][]byte{}} }

func (f *fakeStore) note(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.seen = append(f.seen, id)
	return f.opErr
}

func (f *fakeStore) Put(ctx context.Context, id string, r io.Reader) (storage.Info, error) {
	if err := f.note(id); err != nil {
		return storage.Info{}, err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return storage.Info{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shards[id] = b
	return storage.Info{ID: id, Size: int64(len(b)), Checksum: 42, Created: time.Unix(1700000000, 5).UTC()}, nil
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func (f *fakeStore) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if err := f.note(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.shards[id]
	if !ok {
		return nil, storage.ErrNotFound
	}
	if off < 0 || off > int64(len(b)) || n >= 0 && off+n > int64(len(b)) {
		return nil, storage.ErrRange
	}
	b = b[off:]
	if n >= 0 {
		b = b[:n]
	}
	if f.getErr != nil {
		return io.NopCloser(&failingReader{r: bytes.NewReader(b[:f.failAfter]), err: f.getErr}), nil
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeStore) Stat(ctx context.Context, id string) (storage.Info, error) {
	if err := f.note(id); err != nil {
		return storage.Info{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.shards[id]
	if !ok {
		return storage.Info{}, storage.ErrNotFound
	}
	return storage.Info{ID: id, Size: int64(len(b)), Checksum: 42, Created: time.Unix(1700000000, 5).UTC()}, nil
}

func (f *fakeStore) Delete(ctx context.Context, id string) error {
	if err := f.note(id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.shards, id)
	return nil
}

func (f *fakeStore) List(ctx context.Context, prefix, after string, limit int) ([]storage.Info, error) {
	if err := f.note(prefix); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.shards {
		if strings.HasPrefix(id, prefix) && id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []storage.Info
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		out = append(out, storage.Info{ID: id, Size: int64(len(f.shards[id]))})
	}
	return out, nil
}

func (f *fakeStore) Usage(ctx context.Context) (storage.Usage, error) {
	if err := f.note(""); err != nil {
		return storage.Usage{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := storage.Usage{Free: 1 << 30}
	for _, b := range f.shards {
		u.Shards++
		u.Used += int64(len(b))
	}
	return u, nil
}

func serve(t testing.TB, s storage.Store, cfg HandlerConfig) *httptest.Server {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	if cfg.Node == "" {
		cfg.Node = testNode
	}
	srv := httptest.NewServer(NewHandler(s, cfg))
	t.Cleanup(srv.Close)
	return srv
}

func payload(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestRoundTrip(t *testing.T) {
	fs := newFake()
	srv := serve(t, fs, HandlerConfig{BufferSize: 4096})
	c := NewClient(srv.URL+"/", testNode, secret, nil)
	ctx := t.Context()
	data := payload(300_000, 1)
	info, err := c.Put(ctx, "obj.1-a_b", bytes.NewReader(data))
	if err != nil || info.Size != int64(len(data)) || info.Checksum != 42 {
		t.Fatalf("Put = %+v, %v", info, err)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {1000, 5000}, {299_999, -1}, {300_000, 0}} {
		rc, err := c.Get(ctx, "obj.1-a_b", r[0], r[1])
		if err != nil {
			t.Fatalf("Get%v: %v", r, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		want := data[r[0]:]
		if r[1] >= 0 {
			want = want[:r[1]]
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get%v: %d bytes, err %v; want %d bytes", r, len(got), err, len(want))
		}
	}
	st, err := c.Stat(ctx, "obj.1-a_b")
	if err != nil || st != info {
		t.Fatalf("Stat = %+v, %v; want %+v", st, err, info)
	}
	if _, err := c.Put(ctx, "obj.2", bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	l, err := c.List(ctx, "obj", "obj.1-a_b", 10)
	if err != nil || len(l) != 1 || l[0].ID != "obj.2" {
		t.Fatalf("List = %+v, %v", l, err)
	}
	if l, err := c.List(ctx, "zzz", "", 10); err != nil || l != nil {
		t.Fatalf("empty List = %+v, %v", l, err)
	}
	u, err := c.Usage(ctx)
	if err != nil || u.Shards != 2 || u.Used != int64(len(data)) {
		t.Fatalf("Usage = %+v, %v", u, err)
	}
	if err := c.Delete(ctx, "obj.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat(ctx, "obj.2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat after delete: %v", err)
	}
}

// TestOddIDsReachTheStore: ids the store must judge arrive unchanged.
func TestOddIDsReachTheStore(t *testing.T) {
	fs := newFake()
	srv := serve(t, fs, HandlerConfig{})
	c := NewClient(srv.URL, testNode, secret, nil)
	ids := []string{".", "..", "../x", "a/b", "/abs", `a\b`, ".hidden", "sp ace", "nul\x00", "new\nline", "ünï", "a:b", "a%2Fb", "q?x=1", "h#f"}
	for _, id := range ids {
		if _, err := c.Stat(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q): %v", id, err)
		}
	}
	if strings.Join(fs.seen, "|") != strings.Join(ids, "|") {
		t.Fatalf("store saw %q, want %q", fs.seen, ids)
	}
	if _, err := c.Put(t.Context(), "", strings.NewReader("x")); !errors.Is(err, storage.ErrInvalidID) {
		t.Fatalf("empty id: %v", err)
	}
}

// TestErrorsCrossTheWire: every store error comes back as itself.
func TestErrorsCrossTheWire(t *testing.T) {
	cs := &erasure.ChecksumError{Shard: 3, Stripe: 9, Err: erasure.ErrCorruptRecord}
	cases := []error{
		storage.ErrNotFound, storage.ErrInvalidID, storage.ErrFull, storage.ErrRange,
		storage.ErrClosed, storage.ErrFormat,
		fmt.Errorf("wrapped: %w", storage.ErrFull),
		&storage.CorruptError{ID: "x", Err: cs},
		&storage.CorruptError{ID: "y", Err: &erasure.ChecksumError{Shard: -1, Stripe: 2, Err: io.ErrUnexpectedEOF}},
		errors.New("disk on fire"),
	}
	for _, want := range cases {
		fs := newFake()
		fs.shards["x"] = []byte("data")
		fs.opErr = want
		c := NewClient(serve(t, fs, HandlerConfig{}).URL, testNode, secret, nil)
		ctx := t.Context()
		_, e1 := c.Put(ctx, "x", strings.NewReader("abc"))
		_, e2 := c.Get(ctx, "x", 0, -1)
		_, e3 := c.Stat(ctx, "x")
		e4 := c.Delete(ctx, "x")
		_, e5 := c.List(ctx, "", "", 1)
		_, e6 := c.Usage(ctx)
		for i, got := range []error{e1, e2, e3, e4, e5, e6} {
			var wantCE, gotCE *storage.CorruptError
			switch {
			case errors.As(want, &wantCE):
				if !errors.As(got, &gotCE) || gotCE.ID != wantCE.ID {
					t.Fatalf("op %d: %v (%T), want %v", i, got, got, want)
				}
				var a, b *erasure.ChecksumError
				errors.As(wantCE, &a)
				if !errors.As(gotCE, &b) || a.Shard != b.Shard || a.Stripe != b.Stripe || !errors.Is(b, a.Err) {
					t.Fatalf("op %d: checksum error %v, want %v", i, b, a)
				}
			case want.Error() == "disk on fire":
				var re *Error
				if !errors.As(got, &re) || re.Status != 500 || !strings.Contains(re.Message, "disk on fire") {
					t.Fatalf("op %d: %v (%T)", i, got, got)
				}
			default:
				if !errors.Is(got, errors.Unwrap(want)) && !errors.Is(got, want) {
					t.Fatalf("op %d: %v, want %v", i, got, want)
				}
			}
		}
	}
}

// TestCorruptionMidStream: the node finds a bad record after the status
// line went out; the client must not see a clean short body.
func TestCorruptionMidStream(t *testing.T) {
	for _, failAfter := range []int{0, 1, 5000, 99_999} {
		fs := newFake()
		data := payload(100_000, 2)
		fs.shards["s"] = data
		fs.getErr = &storage.CorruptError{ID: "s", Err: &erasure.ChecksumError{Shard: 2, Stripe: 7, Err: erasure.ErrCorruptRecord}}
		fs.failAfter = failAfter
		c := NewClient(serve(t, fs, HandlerConfig{BufferSize: 1024}).URL, testNode, secret, nil)
		rc, err := c.Get(t.Context(), "s", 0, -1)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(rc)
			rc.Close()
		}
		var ce *storage.CorruptError
		var cs *erasure.ChecksumError
		if !errors.As(err, &ce) || ce.ID != "s" || !errors.As(err, &cs) || cs.Stripe != 7 || !errors.Is(err, erasure.ErrCorruptRecord) {
			t.Fatalf("failAfter %d: err = %v (%T), want CorruptError", failAfter, err, err)
		}
		if !bytes.Equal(got, data[:len(got)]) || len(got) > failAfter {
			t.Fatalf("failAfter %d: got %d wrong bytes", failAfter, len(got))
		}
	}
}

// TestTruncatedStream: a body that ends without the success trailer is an
// error, not EOF.
func TestTruncatedStream(t *testing.T) {
	for _, trailer := range []string{"", "5", "x"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", trailerBytes)
			w.WriteHeader(200)
			_, _ = w.Write([]byte("abc"))
			if trailer != "" {
				w.Header().Set(trailerBytes, trailer)
			}
		}))
		c := NewClient(srv.URL, testNode, secret, nil)
		rc, err := c.Get(t.Context(), "s", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		srv.Close()
		if string(got) != "abc" || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("trailer %q: %q, %v; want abc, ErrUnexpectedEOF", trailer, got, err)
		}
	}
}

// TestAuthFailures: unauthenticated requests touch nothing.
func TestAuthFailures(t *testing.T) {
	now := time.Now()
	fs := newFake()
	srv := serve(t, fs, HandlerConfig{Auth: peerauth.Config{Now: func() time.Time { return now }}})
	ctx := t.Context()
	body := strings.NewReader("shard")

	// No signature at all.
	req, _ := http.NewRequestWithContext(ctx, "PUT", srv.URL+"/v1/shards/a", body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unsigned: %d", resp.StatusCode)
	}

	// Wrong secret.
	bad := NewClient(srv.URL, testNode, bytes.Repeat([]byte{8}, 32), nil)
	if _, err := bad.Put(ctx, "a", strings.NewReader("shard")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong secret Put: %v", err)
	}
	if _, err := bad.Stat(ctx, "a"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong secret Stat: %v", err)
	}

	// Old timestamp.
	s := peerauth.NewSigner(secret, NodeIdentity(testNode))
	req, _ = http.NewRequestWithContext(ctx, "PUT", srv.URL+"/v1/shards/a", strings.NewReader("shard"))
	s.SignAt(req, peerauth.Streaming, now.Add(-time.Hour))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("old: %d", resp.StatusCode)
	}

	// Replay of a request that worked once (a delete) must not run again.
	req, _ = http.NewRequestWithContext(ctx, "DELETE", srv.URL+"/v1/shards/a", nil)
	s.SignAt(req, peerauth.EmptySHA256, now)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || fs.calls != 1 {
		t.Fatalf("first delete: %d, %d calls", resp.StatusCode, fs.calls)
	}
	req2, _ := http.NewRequestWithContext(ctx, "DELETE", srv.URL+"/v1/shards/a", nil)
	req2.Header = req.Header.Clone()
	resp, err = http.DefaultClient.Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
	// Replayed signature on a different path.
	req3, _ := http.NewRequestWithContext(ctx, "DELETE", srv.URL+"/v1/shards/b", nil)
	req3.Header = req.Header.Clone()
	req3.Header.Set(peerauth.HeaderNonce, "fresh")
	resp, err = http.DefaultClient.Do(req3)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("moved signature: %d", resp.StatusCode)
	}

	if fs.calls != 1 || len(fs.shards) != 0 {
		t.Fatalf("store touched by rejected requests: %d calls, %d shards", fs.calls, len(fs.shards))
	}
}

func TestContextCancelsGet(t *testing.T) {
	fs := newFake()
	fs.shards["big"] = payload(4<<20, 3)
	c := NewClient(serve(t, fs, HandlerConfig{}).URL, testNode, secret, nil)
	ctx, cancel := context.WithCancel(t.Context())
	rc, err := c.Get(ctx, "big", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
}

func FuzzWireError(f *testing.F) {
	f.Add([]byte(`{"code":"corrupt","id":"x","shard":1,"stripe":2,"cause":"truncated"}`), 200)
	f.Add([]byte(`{"code":"not_found"}`), 404)
	f.Add([]byte(`not json`), 401)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		if err := readError(resp); err == nil {
			t.Fatal("readError returned nil")
		}
	})
}
