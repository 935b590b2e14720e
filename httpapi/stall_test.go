package httpapi

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An upload that stops sending its body is cut off after BodyStall and
// stores nothing, instead of holding its in-flight slot forever.
func TestStalledBodyIsCut(t *testing.T) {
	store := newFakeStore()
	api := New(Config{Credentials: map[string]string{testAK: testSK}, BodyStall: 200 * time.Millisecond, MaxInFlight: 1}, store)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	must(t, store.CreateBucket(t.Context(), "stall", testRegion))
	e := &testEnv{t: t, store: store, payloads: map[string]int{}, srv: srv}
	req := e.request("PUT", "/stall/obj", nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}, testSK)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers promise 1000 bytes; only 10 arrive, then nothing.
	fmt.Fprintf(conn, "PUT /stall/obj HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n", req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(conn, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprint(conn, "\r\n0123456789")
	// The server must give up on its own; the bound here only keeps a broken
	// server from hanging the test.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("stalled upload answered %d", resp.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server still waiting for the stalled body after 30s")
	}
	if _, objects, _, _ := store.stored(); objects != 0 {
		t.Fatalf("%d objects stored from a stalled upload", objects)
	}
	// Its slot is free again: the next request is served, not shed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := e.do("GET", "/stall?list-type=2", nil, nil, testSK)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(resp.Header.Get("Content-Type"), "xml") {
			t.Fatalf("after the stall: status %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
