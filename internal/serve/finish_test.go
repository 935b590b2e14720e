package serve

import (
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startLimited serves h on a listener of two connections whose every
// timeout is short, and returns its address.
func startLimited(t *testing.T, h http.Handler) string {
	t.Helper()
	s, err := Listen("127.0.0.1:0", h, Config{MaxConns: 2, ReadHeaderTimeout: 500 * time.Millisecond,
		IdleTimeout: 500 * time.Millisecond, FinishTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Close() })
	return s.Addr().String()
}

// servedSoon reports whether an ordinary request to addr is answered
// within a few seconds, i.e. whether a connection slot came free.
func servedSoon(t *testing.T, addr string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + addr + "/ordinary")
	if err != nil {
		t.Fatalf("an ordinary request: %v — the listener's connections are held", err)
	}
	resp.Body.Close()
}

var refuse = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "refused", http.StatusUnauthorized)
})

// TestUnsentBodyDoesNotHoldConnection: a request that declares a small body
// and never sends it is refused without its body being read; net/http then
// discards the body before answering, which without FinishTimeout waits for
// the client forever. Two such clients held both connections.
func TestUnsentBodyDoesNotHoldConnection(t *testing.T) {
	addr := startLimited(t, refuse)
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // both are inside the server now
	servedSoon(t, addr)
}

// TestPipeliningNonReaderDoesNotHoldConnection: a client that pipelines
// requests and never reads the answers leaves net/http blocked writing a
// response after the handler returned; FinishTimeout ends it.
func TestPipeliningNonReaderDoesNotHoldConnection(t *testing.T) {
	addr := startLimited(t, refuse)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
	}}
	reqs := strings.Repeat("GET /a-key-long-enough-to-make-answers-add-up HTTP/1.1\r\nHost: x\r\n\r\n", 20000)
	for range 2 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() { _, _ = c.Write([]byte(reqs)) }() // never reads
	}
	time.Sleep(2 * time.Second) // both are stuck writing by now
	servedSoon(t, addr)
}

// TestFinishDeadlineDoesNotCutTheNextRequest: the deadline set after one
// request does not cut the next request on the same kept-alive connection,
// even one whose handler takes longer than FinishTimeout.
func TestFinishDeadlineDoesNotCutTheNextRequest(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(time.Second) // > FinishTimeout
		}
		_, _ = w.Write([]byte(strings.Repeat("x", 64<<10)))
	})
	addr := startLimited(t, slow)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i, p := range []string{"/fast", "/slow", "/slow"} {
		// A request that failed on the reused connection would be retried
		// on a new one by the transport, unseen: count reuses.
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused }}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, "http://"+addr+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s on a reused connection: %v", p, err)
		}
		if i > 0 && !reused {
			t.Fatalf("GET %s (request %d) came on a new connection: the previous one was cut", p, i+1)
		}
		n, err := io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
		resp.Body.Close()
		if err != nil || n != 64<<10 {
			t.Fatalf("GET %s: body: %d bytes, %v", p, n, err)
		}
	}
}
