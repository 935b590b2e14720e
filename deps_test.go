package shale_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/shale-store/shale/"

// allowed lists, for each package of ours, the packages of ours it may import
// (directly or not). It keeps CONVENTIONS.md's layering true: leaves import
// nothing of ours, placement only cluster, and nothing imports httpapi, bench
// or cmd.
var allowed = map[string][]string{
	"cluster":                  {},
	"erasure":                  {},
	"placement":                {"cluster"},
	"storage":                  {"erasure", "internal/pace", "internal/privfs"},
	"internal/peerauth":        {"internal/privfs"},
	"internal/devcluster":      {"internal/privfs"},
	"internal/devctl":          {"cluster", "internal/devcluster", "internal/privfs"},
	"internal/clustertls":      {"internal/privfs"},
	"internal/md5lanes":        {},
	"internal/pace":            {},
	"internal/privfs":          {},
	"internal/progress":        {},
	"internal/serve":           {},
	"internal/serve/servetest": {},
	"internal/s3auth":          {},
	"meta":                     {"cluster", "internal/privfs"},
	"meta/replicated":          {"meta", "cluster", "internal/privfs"},
	"meta/raftnet":             {"internal/peerauth", "internal/privfs"},

	// The failure drill's pure core (shale chaos).
	"internal/drill": {},

	// Leader-only work: the Runner and its test double.
	"internal/leader":            {},
	"internal/leader/leadertest": {},

	// Test support: network namespaces for real partitions.
	"internal/netnstest": {},
}

// notDirect lists, for a package of ours, the packages of ours its own
// (non-test) source may not import, though a package it imports may:
// httpapi, the S3 front door, speaks the object layer's vocabulary only
// (object.Info, object's sentinels …), never the metadata store's records
// or the cluster's layout. Its tests may still build a real object layer
// over meta. A name covers its subpackages (meta covers meta/remote).
var notDirect = map[string][]string{
	"httpapi": {"meta", "cluster", "placement", "storage", "erasure", "repair"},
}

func TestDependencyDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("go list is slow")
	}
	for pkg, ok := range allowed {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		permitted := map[string]bool{pkg: true}
		for _, p := range ok {
			permitted[p] = true
		}
		for _, line := range strings.Split(string(out), "\n") {
			dep, found := strings.CutPrefix(strings.TrimSpace(line), module)
			if !found {
				continue
			}
			if !permitted[dep] {
				t.Errorf("%s imports %s, which the layering forbids", pkg, dep)
			}
		}
	}
	for pkg, banned := range notDirect {
		out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "./"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, f := range strings.Fields(string(out)) {
			imp, found := strings.CutPrefix(f, module)
			if !found {
				continue
			}
			for _, b := range banned {
				if imp == b || strings.HasPrefix(imp, b+"/") {
					t.Errorf("%s imports %s itself, which the layering forbids", pkg, imp)
				}
			}
		}
	}
	// Nothing may import httpapi, bench or cmd.
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		for _, imp := range fields[1:] {
			for _, top := range []string{"httpapi", "bench", "cmd/shale"} {
				if imp == module+top && !strings.HasPrefix(fields[0], module+"cmd/") {
					t.Errorf("%s imports %s; only cmd may", fields[0], imp)
				}
			}
		}
	}
}
