package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartChildOnPortRetriesATakenPort: a child that fails to bind the
// port dev picked ("address already in use") is started again on another
// port; any other failure is returned as it is.
func TestStartChildOnPortRetriesATakenPort(t *testing.T) {
	const taken = "127.0.0.1:1"
	t.Setenv("SHALE_TEST_TAKEN", taken)
	script := `case "$2" in "$SHALE_TEST_TAKEN") echo "listen tcp $2: bind: address already in use" >&2; exit 1;; esac
echo "listening on $2"; exec sleep 30`
	logPath := filepath.Join(t.TempDir(), "child.log")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, addr, err := startChildOnPort(ctx, "child", "/bin/sh", []string{"-c", script, "sh", "--listen", taken}, 4, logPath, "listening on ")
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop(time.Second)
	if addr == taken || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("started on %q, want another loopback port than %s", addr, taken)
	}
	if got := c.cmd.Args[len(c.cmd.Args)-1]; got != addr {
		t.Errorf("the child's args name %s, it listens on %s", got, addr)
	}
	b, _ := os.ReadFile(logPath)
	if strings.Count(string(b), "address already in use") != 1 {
		t.Errorf("log:\n%s", b)
	}

	// Another failure is not retried.
	_, _, err = startChildOnPort(ctx, "bad", "/bin/sh", []string{"-c", "echo broken >&2; exit 3", "sh", "--listen", "127.0.0.1:2"}, 4, logPath, "listening on ")
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Errorf("a child that fails otherwise: %v", err)
	}
	b, _ = os.ReadFile(logPath)
	if strings.Count(string(b), "broken") != 1 {
		t.Errorf("a failure other than a taken port was retried:\n%s", b)
	}
}
