package httpapi

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/serve"
)

// TestRefusedClientsDoNotKeepConnections: a client whose request is refused
// before authentication succeeds has its connection closed, so anonymous
// clients that send a refused request now and then on kept-alive
// connections cannot hold every one of the listener's connections; an
// authenticated client's request is served meanwhile.
func TestRefusedClientsDoNotKeepConnections(t *testing.T) {
	h := New(Config{Credentials: map[string]string{testAK: testSK}}, newFakeStore())
	srv, err := serve.Listen("127.0.0.1:0", h, serve.Config{MaxConns: 2, IdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve() }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := srv.Addr().String()

	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() { // one refused request every 300 ms, never reconnecting
			br := bufio.NewReader(c)
			for {
				if _, err := c.Write([]byte("GET /bucket/key HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					return
				}
				resp.Body.Close()
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)

	e := &testEnv{t: t, srv: &httptest.Server{URL: "http://" + addr}} // requestAs needs only the URL
	req := e.request(http.MethodGet, "/", nil, nil, testSK)
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("a signed ListBuckets while anonymous clients keep their connections: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed ListBuckets: %s", resp.Status)
	}
}
