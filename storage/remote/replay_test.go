package remote

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is a RoundTripper that keeps a copy of every request it sends:
// what someone on the cluster network sees.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (c *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Clone(r.Context()))
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// A DELETE captured on its way to node n1 and replayed to node n2 (two real
// handlers; the replay keeps n1's Host header, so only the receiver differs)
// is refused with 401 and n2 keeps its shard.
func TestCapturedRequestReplayedToAnotherNode(t *testing.T) {
	s1, s2 := newFake(), newFake()
	for _, s := range []*fakeStore{s1, s2} {
		s.shards["obj.3"] = []byte("shard")
	}
	n1 := serve(t, s1, HandlerConfig{Node: "n1"})
	n2 := serve(t, s2, HandlerConfig{Node: "n2"})
	rec := &recorder{}
	c1 := NewClient(n1.URL, "n1", secret, &http.Client{Transport: rec})
	if err := c1.Delete(t.Context(), "obj.3"); err != nil {
		t.Fatal(err)
	}
	if len(rec.reqs) != 1 || len(s1.shards) != 0 {
		t.Fatalf("setup: %d requests sent, n1 holds %d shards", len(rec.reqs), len(s1.shards))
	}
	captured := rec.reqs[0]

	replay, err := http.NewRequestWithContext(t.Context(), captured.Method, n2.URL+captured.URL.RequestURI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	replay.Header = captured.Header.Clone()
	replay.Host = captured.URL.Host
	resp, err := http.DefaultClient.Do(replay)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replay to n2: status %d, want 401", resp.StatusCode)
	}
	if s2.calls != 0 || len(s2.shards) != 1 {
		t.Fatalf("n2's store was reached: %d calls, %d shards left", s2.calls, len(s2.shards))
	}

	// A client made for n1 but pointed at n2 (a stale address) is refused
	// too, and says so.
	wrong := NewClient(n2.URL, "n1", secret, nil)
	if _, err := wrong.Usage(t.Context()); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "another peer") {
		t.Fatalf("client for n1 at n2's address: %v, want ErrUnauthorized", err)
	}
}
