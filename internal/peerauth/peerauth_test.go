package peerauth

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var testSecret = bytes.Repeat([]byte("k"), 32)

// fixture is a verifying server on a fake clock with a handler that counts
// its calls and echoes the body.
type fixture struct {
	srv   *httptest.Server
	now   time.Time
	calls atomic.Int64
	got   atomic.Value // last body the handler saw
}

// testTarget is the identity fixtures answer for unless told otherwise.
const testTarget = "node/n1"

// fixtureTime is the fixtures' clock; their verifiers were created
// fixtureAge before it.
var fixtureTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const fixtureAge = 10 * time.Minute

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{now: fixtureTime.Add(-fixtureAge)}
	cfg.Now = func() time.Time { return f.now }
	if cfg.Identities == nil {
		cfg.Identities = []string{testTarget}
	}
	v := NewVerifier(testSecret, cfg)
	f.now = fixtureTime
	f.srv = httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		f.got.Store(string(b))
		w.WriteHeader(http.StatusNoContent)
	})))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) request(t *testing.T, method, path, body string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func do(t *testing.T, r *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestValidRequestsPass(t *testing.T) {
	f := newFixture(t, Config{})
	s := NewSigner(testSecret, testTarget)
	for _, body := range []string{"", "hello", strings.Repeat("x", 100000)} {
		r := f.request(t, "PUT", "/v1/shards/a%2Fb?off=0&n=10&n=2&z=%20", body)
		s.SignAt(r, BodySHA256([]byte(body)), f.now.Add(-time.Minute))
		if code, msg := do(t, r); code != http.StatusNoContent {
			t.Fatalf("body %d bytes: status %d %q", len(body), code, msg)
		}
		if got := f.got.Load().(string); got != body {
			t.Fatalf("handler saw %d bytes, want %d", len(got), len(body))
		}
	}
	// Streaming bodies pass through unhashed.
	r := f.request(t, "POST", "/x", "streamed")
	s.SignAt(r, Streaming, f.now)
	if code, msg := do(t, r); code != http.StatusNoContent || f.got.Load().(string) != "streamed" {
		t.Fatalf("streaming: status %d %q", code, msg)
	}
	if n := f.calls.Load(); n != 4 {
		t.Fatalf("handler called %d times, want 4", n)
	}
}

// TestRejections: each tampering gets 401 (or the documented status) and the
// handler never runs.
func TestRejections(t *testing.T) {
	other := NewSigner(bytes.Repeat([]byte("z"), 32), testTarget)
	cases := []struct {
		name   string
		status int
		build  func(f *fixture, s *Signer) []*http.Request
	}{
		{"no headers", 401, func(f *fixture, s *Signer) []*http.Request {
			return []*http.Request{f.request(t, "GET", "/a", "")}
		}},
		{"wrong secret", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			other.SignAt(r, EmptySHA256, f.now)
			return []*http.Request{r}
		}},
		{"method", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.Method = "DELETE"
			return []*http.Request{r}
		}},
		{"path", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/v1/shards/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.URL.Path = "/v1/shards/b"
			return []*http.Request{r}
		}},
		{"query", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a?off=0&n=10", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.URL.RawQuery = "off=0&n=11"
			return []*http.Request{r}
		}},
		{"query added", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.URL.RawQuery = "limit=1"
			return []*http.Request{r}
		}},
		{"body", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "PUT", "/a", "evil")
			s.SignAt(r, BodySHA256([]byte("good")), f.now)
			return []*http.Request{r}
		}},
		{"body hash header swapped to streaming", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "PUT", "/a", "evil")
			s.SignAt(r, BodySHA256([]byte("evil")), f.now)
			r.Header.Set(HeaderBodyHash, Streaming)
			return []*http.Request{r}
		}},
		{"date altered", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.Header.Set(HeaderDate, f.now.Add(time.Second).Format(DateFormat))
			return []*http.Request{r}
		}},
		{"too old", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now.Add(-6*time.Minute))
			return []*http.Request{r}
		}},
		{"too new", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now.Add(6*time.Minute))
			return []*http.Request{r}
		}},
		{"target altered", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.Header.Set(HeaderTarget, "node/n2")
			return []*http.Request{r}
		}},
		{"signed for another target", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			NewSigner(testSecret, "node/n2").SignAt(r, EmptySHA256, f.now)
			return []*http.Request{r}
		}},
		{"no target", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.Header.Del(HeaderTarget)
			return []*http.Request{r}
		}},
		{"dated before the verifier started", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now.Add(-fixtureAge-time.Millisecond))
			return []*http.Request{r}
		}},
		{"malformed signature", 401, func(f *fixture, s *Signer) []*http.Request {
			r := f.request(t, "GET", "/a", "")
			s.SignAt(r, EmptySHA256, f.now)
			r.Header.Set(HeaderSignature, strings.ToUpper(r.Header.Get(HeaderSignature)))
			return []*http.Request{r}
		}},
		{"hashed body too large", 413, func(f *fixture, s *Signer) []*http.Request {
			body := strings.Repeat("b", 2000)
			r := f.request(t, "PUT", "/a", body)
			s.SignAt(r, BodySHA256([]byte(body)), f.now)
			return []*http.Request{r}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{MaxBody: 1000})
			for _, r := range c.build(f, NewSigner(testSecret, testTarget)) {
				if code, msg := do(t, r); code != c.status {
					t.Fatalf("status %d (%q), want %d", code, msg, c.status)
				}
			}
			if n := f.calls.Load(); n != 0 {
				t.Fatalf("handler called %d times", n)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t, Config{})
	s := NewSigner(testSecret, testTarget)
	r := f.request(t, "DELETE", "/v1/shards/x", "")
	s.SignAt(r, EmptySHA256, f.now)
	if code, _ := do(t, r); code != http.StatusNoContent {
		t.Fatalf("first: %d", code)
	}
	r2 := f.request(t, "DELETE", "/v1/shards/x", "")
	for k, v := range r.Header {
		r2.Header[k] = v
	}
	f.now = f.now.Add(4 * time.Minute) // still inside the window
	if code, msg := do(t, r2); code != http.StatusUnauthorized || !strings.Contains(msg, "replay") {
		t.Fatalf("replay: %d %q", code, msg)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("handler called %d times, want 1", n)
	}
}

func TestTransport(t *testing.T) {
	f := newFixture(t, Config{})
	f.now = time.Now()
	hc := &http.Client{Transport: NewSigner(testSecret, testTarget).Transport(nil)}
	for _, body := range []io.Reader{nil, strings.NewReader("abc"), io.MultiReader(strings.NewReader("stream"))} {
		r, err := http.NewRequest("PUT", f.srv.URL+"/p?q=1", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if r.Header.Get(HeaderSignature) != "" {
			t.Fatal("Transport modified the caller's request")
		}
	}
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("handler called %d times", n)
	}
}

func TestCanonicalQuery(t *testing.T) {
	a := canonicalQuery("b=2&a=1&b=1&c=%7e")
	b := canonicalQuery("a=1&b=1&c=~&b=2")
	if a != b {
		t.Fatalf("%q != %q", a, b)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if _, err := LoadSecret(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	s, err := CreateSecret(p)
	if err != nil || len(s) != 32 {
		t.Fatalf("create: %v %d", err, len(s))
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if _, err := CreateSecret(p); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v", err)
	}
	s2, err := LoadSecret(p)
	if err != nil || !bytes.Equal(s, s2) {
		t.Fatalf("load: %v", err)
	}
	s3, err := LoadOrCreateSecret(p)
	if err != nil || !bytes.Equal(s, s3) {
		t.Fatalf("load-or-create existing: %v", err)
	}
	p2 := filepath.Join(dir, "new")
	s4, err := LoadOrCreateSecret(p2)
	if err != nil || len(s4) != 32 || bytes.Equal(s4, s) {
		t.Fatalf("load-or-create new: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw := strings.Repeat("r", 40)
	if got, err := LoadSecret(write("raw", raw+"\n")); err != nil || string(got) != raw {
		t.Fatalf("raw: %q %v", got, err)
	}
	if _, err := LoadSecret(write("shorthex", "  abcd\n")); !errors.Is(err, ErrShortSecret) {
		t.Fatalf("short hex: %v", err)
	}
	if _, err := LoadSecret(write("shortraw", "tiny")); !errors.Is(err, ErrShortSecret) {
		t.Fatalf("short raw: %v", err)
	}
	if _, err := LoadSecret(write("empty", "")); !errors.Is(err, ErrShortSecret) {
		t.Fatalf("empty: %v", err)
	}
}

func FuzzParseAuth(f *testing.F) {
	f.Add("2025-03-01T12:00:00.000Z", "abcdef0123", "node/n1", EmptySHA256, strings.Repeat("0", 64))
	f.Add("2025-03-01T12:00:00+01:00", "a b", "", Streaming, "zz")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, date, nonce, target, body, sig string) {
		h := http.Header{}
		h.Set(HeaderTarget, target)
		h.Set(HeaderDate, date)
		h.Set(HeaderNonce, nonce)
		h.Set(HeaderBodyHash, body)
		h.Set(HeaderSignature, sig)
		a, err := ParseAuth(h)
		if err != nil {
			if !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(a.Signature) != 32 || a.DateRaw != a.Date.UTC().Format(DateFormat) || !validNonce(a.Nonce) || !ValidTarget(a.Target) {
			t.Fatalf("accepted bad auth: %+v", a)
		}
		if a.BodyHash != Streaming && len(a.BodyHash) != 64 {
			t.Fatalf("accepted body hash %q", a.BodyHash)
		}
	})
}
