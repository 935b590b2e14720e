package peerauth

import (
	"net/http"
	"testing"
)

// TestRefusedPeerLosesItsConnection: a refused request is answered with
// Connection: close, so a client without the secret cannot keep one of the
// listener's connections by sending refused requests now and then.
func TestRefusedPeerLosesItsConnection(t *testing.T) {
	f := newFixture(t, Config{})
	resp, err := f.srv.Client().Do(f.request(t, "GET", "/a", ""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned request: %s, want 401", resp.Status)
	}
	if !resp.Close {
		t.Fatal("a refused request's connection is kept alive")
	}
}
