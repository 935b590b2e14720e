package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprofLoopbackOnly: profiles are served on loopback addresses only.
func TestPprofLoopbackOnly(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "127.0.0.2:6060", "[::1]:0", "localhost:6060"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{":6060", "0.0.0.0:6060", "[::]:6060", "10.0.0.1:6060", "example.com:6060", "127.0.0.1"} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
		if _, err := startPprof(t.Context(), bad, pprofServe(), io.Discard); err == nil {
			t.Errorf("startPprof(%s) started", bad)
		}
	}
}

// TestPprofServes: with an address the profiles answer there until stopped;
// without one nothing is started.
func TestPprofServes(t *testing.T) {
	var log bytes.Buffer
	stop, err := startPprof(t.Context(), "", pprofServe(), &log)
	if err != nil || log.Len() != 0 {
		t.Fatalf("off: err %v, log %q", err, log.String())
	}
	stop()

	stop, err = startPprof(t.Context(), "127.0.0.1:0", pprofServe(), &log)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(log.String(), "pprof listening on "))
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("goroutine")) {
		t.Fatalf("goroutine profile: %d %.80q", resp.StatusCode, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Fatal("still serving after stop")
	}
}

// TestPprofAddrFromEnv: the flag wins over $SHALE_PPROF, which is the
// fallback.
func TestPprofAddrFromEnv(t *testing.T) {
	t.Setenv(pprofEnv, "127.0.0.1:7777")
	if got := pprofAddr(""); got != "127.0.0.1:7777" {
		t.Fatalf("env fallback: %q", got)
	}
	if got := pprofAddr("127.0.0.1:1"); got != "127.0.0.1:1" {
		t.Fatalf("flag: %q", got)
	}
}
