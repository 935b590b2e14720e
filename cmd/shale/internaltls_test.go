package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInternalTLSFlags(t *testing.T) {
	if n, err := (internalTLSFlags{}).load(); err != nil || n != plainNet {
		t.Fatalf("no flags: %v, %v", n, err)
	}
	if _, err := (internalTLSFlags{cert: "c.pem"}).load(); err == nil {
		t.Fatal("--internal-tls-cert without --internal-tls accepted")
	}
	if _, err := (internalTLSFlags{on: true}).load(); err == nil {
		t.Fatal("--internal-tls without files accepted")
	}
	data := t.TempDir()
	fs, err := devInternalTLS(data, []string{"meta", "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := fs["node-1"].load()
	if err != nil || n.scheme != "https" || n.server == nil || n.client == nil {
		t.Fatalf("dev files: %+v, %v", n, err)
	}
	if got := n.url("127.0.0.1:1"); got != "https://127.0.0.1:1" {
		t.Fatalf("url %q", got)
	}
	entries, err := os.ReadDir(filepath.Join(data, "internal-tls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if len(entries) != 6 { // CA pair + two pairs
		t.Fatalf("%d files in the CA dir", len(entries))
	}
	// A second run reuses the CA and the certificates.
	again, err := devInternalTLS(data, []string{"meta", "node-1"})
	if err != nil || again["meta"] != fs["meta"] {
		t.Fatalf("second run: %v", err)
	}
}
