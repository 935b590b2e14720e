package serve

import (
	"net/http"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/serve/servetest"
)

// TestListenLimits: a server from Listen queues connections past MaxConns
// and cuts clients that are slow to send their headers.
func TestListenLimits(t *testing.T) {
	s, err := Listen("127.0.0.1:0", http.NotFoundHandler(), Config{MaxConns: 3, ReadHeaderTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	servetest.CheckLimits(t, s.Addr().String(), 3, time.Second)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.MaxConns != DefaultMaxConns || c.ReadHeaderTimeout != DefaultReadHeaderTimeout || c.IdleTimeout != DefaultIdleTimeout || c.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Fatalf("defaults: %+v", c)
	}
	if c := (Config{MaxConns: -1}).WithDefaults(); c.MaxConns != -1 {
		t.Fatalf("negative MaxConns (no bound) became %d", c.MaxConns)
	}
}

// TestCloseWithoutServe: a server closed before it served frees its port.
func TestCloseWithoutServe(t *testing.T) {
	s, err := Listen("127.0.0.1:0", http.NotFoundHandler(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Listen(addr, http.NotFoundHandler(), Config{})
	if err != nil {
		t.Fatalf("port still held after Close: %v", err)
	}
	s2.Close()
}
