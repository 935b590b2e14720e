// Package servetest checks, from the outside, that a running server has
// the limits package serve gives every shale listener. Tests of each role
// call CheckLimits on the role's real server.
package servetest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// CheckLimits proves, on the server at addr started with MaxConns maxConns
// and ReadHeaderTimeout headerTimeout (at least a second, so the checks
// below have room on a loaded machine), that
//
//   - while maxConns clients send part of their request headers and then
//     nothing (slowloris), one more client's complete request is not
//     answered: it waits in the accept queue;
//   - the server cuts each slow client within headerTimeout (plus slack);
//   - then the waiting client is served.
func CheckLimits(t testing.TB, addr string, maxConns int, headerTimeout time.Duration) {
	t.Helper()
	start := time.Now()
	var slow []net.Conn
	for i := range maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /slow%d HTTP/1.1\r\nHost: x\r\nX-Slow: ", i)
		slow = append(slow, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	fmt.Fprint(extra, "GET /extra HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(extra)
	quiet := headerTimeout / 4
	_ = extra.SetReadDeadline(time.Now().Add(quiet))
	if _, err := br.ReadByte(); !isTimeout(err) {
		t.Fatalf("%s: connection %d of a limit of %d was answered (%v) while %d slow clients hold the others", addr, maxConns+1, maxConns, err, maxConns)
	}
	if since := time.Since(start); since >= headerTimeout {
		t.Fatalf("checking the limit took %v, more than the header timeout %v: machine too loaded to tell", since, headerTimeout)
	}
	for i, c := range slow {
		_ = c.SetReadDeadline(start.Add(headerTimeout + 10*time.Second))
		_, err := io.Copy(io.Discard, c)
		if isTimeout(err) {
			t.Fatalf("%s: slow client %d still connected %v after it started its headers (ReadHeaderTimeout %v)", addr, i, time.Since(start), headerTimeout)
		}
	}
	_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: the queued client was not served once the slow ones were cut: %v", addr, err)
	}
	resp.Body.Close()
	t.Logf("%s: %d slow clients cut after %v; queued client answered %d", addr, maxConns, time.Since(start).Round(time.Millisecond), resp.StatusCode)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
