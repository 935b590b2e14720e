package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/privfs"
	"github.com/shale-store/shale/storage"
)

// encodeStream returns shard 0 of a 1+0 code of size pseudo-random bytes in
// blocks of block bytes: a valid shard stream.
func encodeStream(t testing.TB, size, block int) []byte {
	t.Helper()
	c, err := erasure.New(1, 0, block)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := c.Encode(context.Background(), bytes.NewReader(payload(size, int64(size))), []io.Writer{&out}, 1)
	if err != nil || res.ShardErrs[0] != nil {
		t.Fatalf("encode: %v %v", err, res.ShardErrs)
	}
	return out.Bytes()
}

// formRecorder notes the form of every GET answer: raw (a Content-Length,
// no trailers) or chunked with trailers.
type formRecorder struct {
	mu    sync.Mutex
	forms []string
}

func (f *formRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		form := "chunked"
		if _, ok := resp.Trailer[trailerBytes]; !ok {
			form = fmt.Sprintf("raw %d", resp.ContentLength)
		}
		f.mu.Lock()
		f.forms = append(f.forms, form)
		f.mu.Unlock()
	}
	return resp, err
}

func (f *formRecorder) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forms) == 0 {
		return ""
	}
	return f.forms[len(f.forms)-1]
}

func openDisk(t testing.TB, cfg storage.DiskConfig) *storage.Disk {
	t.Helper()
	cfg.Dir = t.TempDir()
	d, err := storage.OpenDisk(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func readAll(c *Client, id string, off, n int64) ([]byte, error) {
	rc, err := c.Get(context.Background(), id, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestRawGet: a Disk's shards, file and inline, come back exact, whole and
// ranged, in the raw form (Content-Length, no trailers); with VerifyReads
// in the chunked form, with the same bytes.
func TestRawGet(t *testing.T) {
	const block = 1024
	rec := int64(erasure.RecordHeaderSize + block)
	big, small := encodeStream(t, 50*block+123, block), encodeStream(t, 2*block, block)
	d := openDisk(t, storage.DiskConfig{InlineMax: 4 * block})
	for _, verify := range []bool{false, true} {
		forms := &formRecorder{}
		c := NewClient(serve(t, d, HandlerConfig{VerifyReads: verify}).URL, testNode, secret, &http.Client{Transport: forms})
		for id, b := range map[string][]byte{"big": big, "small": small} {
			if _, err := c.Put(t.Context(), id, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			id     string
			off, n int64
			want   []byte
		}{
			{"big", 0, -1, big},
			{"big", 3 * rec, 7 * rec, big[3*rec : 10*rec]},
			{"big", 50 * rec, -1, big[50*rec:]},
			{"big", int64(len(big)), -1, nil},
			{"small", 0, -1, small},
			{"small", rec, rec, small[rec : 2*rec]},
		} {
			got, err := readAll(c, tc.id, tc.off, tc.n)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("verify %v: Get(%s, %d, %d) = %d bytes, %v; want %d bytes", verify, tc.id, tc.off, tc.n, len(got), err, len(tc.want))
			}
			want := fmt.Sprintf("raw %d", len(tc.want))
			if verify {
				want = "chunked"
			}
			if f := forms.last(); f != want {
				t.Fatalf("verify %v: Get(%s, %d, %d) answered %q, want %q", verify, tc.id, tc.off, tc.n, f, want)
			}
		}
		if _, err := readAll(c, "big", 1, -1); !errors.Is(err, storage.ErrRange) {
			t.Fatalf("verify %v: unaligned range: %v, want ErrRange", verify, err)
		}
		if _, err := readAll(c, "nope", 0, -1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("verify %v: absent shard: %v, want ErrNotFound", verify, err)
		}
	}
}

// TestRawGetTruncatedFileIsCorrupt: a shard file shorter than the node's
// index says is refused as corrupt before any byte, over the wire too.
func TestRawGetTruncatedFileIsCorrupt(t *testing.T) {
	d := openDisk(t, storage.DiskConfig{InlineMax: -1})
	c := NewClient(serve(t, d, HandlerConfig{}).URL, testNode, secret, nil)
	s := encodeStream(t, 10_000, 1024)
	if _, err := c.Put(t.Context(), "x", bytes.NewReader(s)); err != nil {
		t.Fatal(err)
	}
	path := shardFile(t, d.Dir(), "x")
	if err := os.Truncate(path, int64(len(s)/2)); err != nil {
		t.Fatal(err)
	}
	_, err := readAll(c, "x", 0, -1)
	var ce *storage.CorruptError
	if !errors.As(err, &ce) || ce.ID != "x" {
		t.Fatalf("truncated file: %v, want *storage.CorruptError", err)
	}
}

// shardFile finds id's file under dir/shards.
func shardFile(t testing.TB, dir, id string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "shards", "*", id))
	if err != nil || len(m) != 1 {
		t.Fatalf("shard file of %s: %v %v", id, m, err)
	}
	return m[0]
}

// TestRawGetCutShortMidStream: the shard file is cut short while the node
// is sending it (with sendfile: the default FS), after the status line and
// part of the body are out. The client must fail, never see a clean EOF.
// The shard is larger than loopback's socket buffers can hold, so the node
// is still sending when the test truncates the file, however the two are
// scheduled.
func TestRawGetCutShortMidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes a 64 MiB shard")
	}
	d := openDisk(t, storage.DiskConfig{})
	c := NewClient(serve(t, d, HandlerConfig{}).URL, testNode, secret, nil)
	s := encodeStream(t, 64<<20, 1<<20)
	if _, err := d.Put(t.Context(), "x", bytes.NewReader(s)); err != nil {
		t.Fatal(err)
	}
	rc, err := c.Get(t.Context(), "x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := os.Truncate(shardFile(t, d.Dir(), "x"), 1<<20); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("file cut short mid-stream: read %d of %d bytes, err %v; want an error", len(got), len(s), err)
	}
	if len(got) >= len(s) || !bytes.Equal(got, s[:len(got)]) {
		t.Fatalf("read %d bytes before the error, want a clean prefix shorter than %d", len(got), len(s))
	}
}

// faultAt fails the nth ReadAt of one path with err.
type faultAt struct {
	mu   sync.Mutex
	path string
	n    int
	err  error
	seen int
}

func (f *faultAt) MaybeError(op errorfs.Op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op != errorfs.OpFileReadAt || f.path == "" || path != f.path {
		return nil
	}
	f.seen++
	if f.seen == f.n {
		return f.err
	}
	return nil
}

// TestRawGetReadFaultMidStream: the shard file fails (EIO), or ends (EOF)
// part-way through a raw answer already under way; the client must fail.
// The node reads through an errorfs FS, so the raw path copies rather than
// sendfiles, with the same handler code around it.
func TestRawGetReadFaultMidStream(t *testing.T) {
	for _, fault := range []error{syscall.EIO, io.EOF} {
		inj := &faultAt{}
		d := openDisk(t, storage.DiskConfig{FS: errorfs.Wrap(privfs.New(), inj), InlineMax: -1})
		c := NewClient(serve(t, d, HandlerConfig{}).URL, testNode, secret, nil)
		s := encodeStream(t, 1<<20, 64<<10)
		if _, err := c.Put(t.Context(), "x", bytes.NewReader(s)); err != nil {
			t.Fatal(err)
		}
		inj.mu.Lock()
		inj.path, inj.n, inj.err = shardFile(t, d.Dir(), "x"), 3, fault
		inj.mu.Unlock()
		got, err := readAll(c, "x", 0, -1)
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("%v after 2 reads: read %d of %d bytes, err %v; want an error", fault, len(got), len(s), err)
		}
		if len(got) >= len(s) || !bytes.Equal(got, s[:len(got)]) {
			t.Fatalf("%v: read %d bytes before the error, want a clean prefix shorter than %d", fault, len(got), len(s))
		}
	}
}

// TestRawAnswerChecks: the client refuses a raw answer whose length is not
// the range asked for, one with neither a length nor trailers, and a body
// shorter than its Content-Length.
func TestRawAnswerChecks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		n       int64
	}{
		{"length differs from the range", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, _ = w.Write([]byte("abc"))
		}, 4},
		{"no length, no trailers", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write(bytes.Repeat([]byte("a"), 10000))
			w.(http.Flusher).Flush()
		}, -1},
		{"body shorter than its length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(200)
			_, _ = w.Write([]byte("abc"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, -1},
	} {
		srv := newPlainServer(t, tc.handler)
		c := NewClient(srv, testNode, secret, nil)
		got, err := readAll(c, "s", 0, tc.n)
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("%s: %q, %v; want an error", tc.name, got, err)
		}
	}
}

// newPlainServer serves h on loopback (no auth) and returns its URL.
func newPlainServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
