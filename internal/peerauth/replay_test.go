package peerauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A request captured on its way to node n1 and replayed to node n2 — with
// the Host header n1 saw, so nothing but the receiver differs — is refused:
// the signature names its receiver and n2 answers only for itself.
func TestReplayToAnotherNodeRefused(t *testing.T) {
	n1 := newFixture(t, Config{Identities: []string{"node/n1"}})
	n2 := newFixture(t, Config{Identities: []string{"node/n2"}})
	r := n1.request(t, "DELETE", "/v1/shards/x", "")
	NewSigner(testSecret, "node/n1").SignAt(r, EmptySHA256, n1.now)

	replay := n2.request(t, "DELETE", "/v1/shards/x", "")
	replay.Host = r.URL.Host
	replay.Header = r.Header.Clone()
	if code, msg := do(t, replay); code != http.StatusUnauthorized || !strings.Contains(msg, "another peer") {
		t.Fatalf("captured request replayed to another node: %d %q, want 401", code, msg)
	}
	if n := n2.calls.Load(); n != 0 {
		t.Fatalf("other node's handler called %d times", n)
	}
	if code, msg := do(t, r); code != http.StatusNoContent {
		t.Fatalf("original: %d %q", code, msg)
	}
}

// A verifier may answer for several identities (a node by id and by name).
func TestSeveralIdentities(t *testing.T) {
	f := newFixture(t, Config{Identities: []string{"node/n1", "meta"}})
	for _, target := range []string{"node/n1", "meta"} {
		r := f.request(t, "GET", "/a", "")
		NewSigner(testSecret, target).SignAt(r, EmptySHA256, f.now)
		if code, msg := do(t, r); code != http.StatusNoContent {
			t.Fatalf("%s: %d %q", target, code, msg)
		}
	}
}

// The replay cache lives in memory; a restarted process (a new Verifier)
// must not accept a request its predecessor already executed.
func TestReplayAfterRestartRefused(t *testing.T) {
	now := fixtureTime
	clock := func() time.Time { return now }
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	cfg := Config{Identities: []string{testTarget}, Now: clock}

	before := NewVerifier(testSecret, cfg)
	r := httptest.NewRequest("DELETE", "http://n1/v1/shards/x", nil)
	NewSigner(testSecret, testTarget).SignAt(r, EmptySHA256, now)
	w := httptest.NewRecorder()
	before.Middleware(handler).ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}

	now = now.Add(20 * time.Millisecond) // the process restarts at once
	after := NewVerifier(testSecret, cfg)
	replay := httptest.NewRequest("DELETE", "http://n1/v1/shards/x", nil)
	replay.Header = r.Header.Clone()
	w = httptest.NewRecorder()
	after.Middleware(handler).ServeHTTP(w, replay)
	// Refused with 503: a request an honest client signed while the
	// process restarted is retried, re-signed, rather than failed for good.
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "before this process started") {
		t.Fatalf("replay after restart: %d %q, want 503", w.Code, w.Body)
	}

	// Requests signed from its start on pass.
	fresh := httptest.NewRequest("DELETE", "http://n1/v1/shards/x", nil)
	NewSigner(testSecret, testTarget).SignAt(fresh, EmptySHA256, now)
	w = httptest.NewRecorder()
	after.Middleware(handler).ServeHTTP(w, fresh)
	if w.Code != http.StatusNoContent {
		t.Fatalf("fresh after restart: %d %s", w.Code, w.Body)
	}
}

// TestNonceCacheBounded: the cache never holds more than max entries,
// refuses (ErrBusy) rather than forgets a live nonce, still recognises
// replays when full, and frees room as generations expire.
func TestNonceCacheBounded(t *testing.T) {
	const width = time.Second
	now := fixtureTime
	c := newNonceCache(width, 3)
	exp := now.Add(10 * time.Second)
	for _, n := range []string{"a", "b", "c"} {
		if err := c.add(n, exp, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.add("d", exp, now); !errors.Is(err, ErrBusy) {
		t.Fatalf("full cache: %v, want ErrBusy", err)
	}
	if err := c.add("a", exp, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay into a full cache: %v, want ErrReplay", err)
	}
	// Up to the expiry the nonces stay, however time moves.
	for _, at := range []time.Duration{time.Second, 5 * time.Second, 10*time.Second - time.Nanosecond} {
		if err := c.add("b", exp, now.Add(at)); !errors.Is(err, ErrReplay) {
			t.Fatalf("at +%v: %v, want ErrReplay", at, err)
		}
		if err := c.add("d", exp, now.Add(at)); !errors.Is(err, ErrBusy) {
			t.Fatalf("at +%v: %v, want ErrBusy", at, err)
		}
	}
	// Once the generation has passed, its entries go at once.
	later := exp.Add(width)
	if err := c.add("d", later.Add(10*time.Second), later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := c.len(); n != 1 {
		t.Fatalf("cache holds %d entries after expiry, want 1", n)
	}
}

// A steady load below the cache's capacity is never refused, and the cache
// stays within its bound over many windows.
func TestNonceCacheSteadyLoad(t *testing.T) {
	const window = 8 * time.Second
	const perSecond = 100
	max := perSecond * int(window/time.Second+1+window/8/time.Second+1) // R·(W + 1s + W/8), one spare second
	now := fixtureTime
	v := NewVerifier(testSecret, Config{Identities: []string{testTarget}, Window: window, MaxNonces: max, Now: func() time.Time { return now }})
	step := time.Second / perSecond
	for i := 0; i < 10*int(window/step); i++ {
		if err := v.nonces.add(strconv.Itoa(i), now.Add(window+time.Second), now); err != nil {
			t.Fatalf("request %d at +%v: %v", i, now.Sub(fixtureTime), err)
		}
		if n := v.nonces.len(); n > max {
			t.Fatalf("cache holds %d > %d", n, max)
		}
		now = now.Add(step)
	}
}

// BenchmarkNonceCache adds nonces at a steady simulated rate, given as a
// fraction of what the cache sustains: below 1 every add is accepted, above
// 1 the cache is full and the excess is refused (ErrBusy). The cost per
// request must not jump between the two.
func BenchmarkNonceCache(b *testing.B) {
	const window = 5 * time.Minute
	const max = 1_000_000
	for _, load := range []float64{0.5, 0.95, 1.5, 3} {
		b.Run(fmt.Sprintf("load=%.2f", load), func(b *testing.B) {
			rate := load * max / (window + time.Second + window/8).Seconds()
			step := time.Duration(float64(time.Second) / rate)
			now := fixtureTime
			c := newNonceCache(window/8, max)
			var busy int
			add := func(i int) {
				if err := c.add(strconv.Itoa(i), now.Add(window+time.Second), now); errors.Is(err, ErrBusy) {
					busy++
				}
				now = now.Add(step)
			}
			// Reach the steady state: more than one window of requests.
			warm := int(float64(window+window/4) / float64(step))
			for i := 0; i < warm; i++ {
				add(-1 - i)
			}
			busy = 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				add(i)
			}
			b.ReportMetric(float64(busy)/float64(b.N), "refused/op")
			b.ReportMetric(float64(c.len()), "entries")
		})
	}
}

// BenchmarkVerifyParallel is the whole check of a signed request without a
// body (headers, HMAC, replay cache) from all CPUs at once.
func BenchmarkVerifyParallel(b *testing.B) {
	v := NewVerifier(testSecret, Config{Identities: []string{testTarget}})
	s := NewSigner(testSecret, testTarget)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "http://n1/v1/shards/x?off=0&n=10", nil)
			s.Sign(r, EmptySHA256)
			if err := v.verify(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
