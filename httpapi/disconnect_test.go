package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/object"
)

// captureHandler is a slog.Handler that keeps every record.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (c *captureHandler) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}
func (c *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *captureHandler) WithGroup(string) slog.Handler      { return c }

// levels returns the messages logged at or above min.
func (c *captureHandler) atLeast(min slog.Level) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.records {
		if r.Level >= min {
			out = append(out, r.Level.String()+" "+r.Message)
		}
	}
	return out
}

// logEnv is a server whose log is captured and whose requests report when
// their handler returned.
type logEnv struct {
	*testEnv
	log  *captureHandler
	done chan struct{}
}

func newLogEnv(t *testing.T) *logEnv {
	store := newFakeStore()
	log := &captureHandler{}
	api := New(Config{Credentials: map[string]string{testAK: testSK}, Logger: slog.New(log)}, store)
	done := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	must(t, store.CreateBucket(t.Context(), "gone", testRegion))
	return &logEnv{testEnv: &testEnv{t: t, store: store, payloads: map[string]int{}, srv: srv}, log: log, done: done}
}

// send writes req (headers and the first bytes of its body) on a fresh
// connection.
func (e *logEnv) send(req *http.Request, contentLength int, body string) *net.TCPConn {
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	must(e.t, err)
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.Host)
	if contentLength > 0 {
		fmt.Fprintf(conn, "Content-Length: %d\r\n", contentLength)
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(conn, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprint(conn, "\r\n"+body)
	return conn.(*net.TCPConn)
}

// reset closes conn with a TCP reset, as a client that dies does.
func reset(t *testing.T, conn *net.TCPConn) {
	must(t, conn.SetLinger(0))
	must(t, conn.Close())
}

func (e *logEnv) waitDone() {
	e.t.Helper()
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		e.t.Fatal("the request's handler did not return")
	}
}

// A client that disconnects in the middle of its upload is the client's
// doing: logged at debug level, never as an error.
func TestClientDisconnectLoggedAtDebug(t *testing.T) {
	t.Run("PUT body", func(t *testing.T) {
		e := newLogEnv(t)
		e.store.putEnter = make(chan struct{})
		req := e.request("PUT", "/gone/obj", nil, map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}, testSK)
		conn := e.send(req, 1<<20, "0123456789")
		select {
		case <-e.store.putEnter: // the handler is about to read the body
		case <-time.After(30 * time.Second):
			t.Fatal("PutObject was not called")
		}
		reset(t, conn)
		e.waitDone()
		if errs := e.log.atLeast(slog.LevelWarn); len(errs) != 0 {
			t.Fatalf("client disconnect logged as %q", errs)
		}
		if dbg := e.log.atLeast(slog.LevelDebug); len(dbg) == 0 || !strings.Contains(dbg[0], "client went away") {
			t.Fatalf("debug records %q", dbg)
		}
		if _, objects, _, _ := e.store.stored(); objects != 0 {
			t.Fatalf("%d objects stored", objects)
		}
	})

	t.Run("GET response", func(t *testing.T) {
		e := newLogEnv(t)
		data := bytes.Repeat([]byte("shale"), 32<<20/5)
		_, err := e.store.PutObject(t.Context(), object.PutInput{Bucket: "gone", Key: "big", Body: bytes.NewReader(data), Size: int64(len(data))})
		must(t, err)
		conn := e.send(e.request("GET", "/gone/big", nil, nil, testSK), 0, "")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		must(t, err)
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET: %d %v", resp.StatusCode, err)
		}
		reset(t, conn)
		e.waitDone()
		if errs := e.log.atLeast(slog.LevelWarn); len(errs) != 0 {
			t.Fatalf("client disconnect logged as %q", errs)
		}
		if dbg := e.log.atLeast(slog.LevelDebug); len(dbg) == 0 || !strings.Contains(dbg[0], "client went away") {
			t.Fatalf("debug records %q", dbg)
		}
	})

	// The control: a failure of the server's own is still an error.
	t.Run("server failure", func(t *testing.T) {
		e := newLogEnv(t)
		_, err := e.store.PutObject(t.Context(), object.PutInput{Bucket: "gone", Key: "k", Body: strings.NewReader("x"), Size: 1})
		must(t, err)
		e.store.readErr = errors.New("disk on fire")
		resp := e.do("GET", "/gone/k", nil, nil, testSK)
		resp.Body.Close()
		e.waitDone()
		if errs := e.log.atLeast(slog.LevelError); resp.StatusCode != 500 || len(errs) != 1 || !strings.Contains(errs[0], "s3 request failed") {
			t.Fatalf("status %d, error records %q", resp.StatusCode, errs)
		}
	})
}
