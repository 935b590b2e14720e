package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shale-store/shale/placement"
)

const placementTopo = `
nodes:
  - {id: a1, zone: a, rack: r1, host: h1}
  - {id: a2, zone: a, rack: r2, host: h2}
  - {id: b1, zone: b, rack: r1, host: h1}
  - {id: b2, zone: b, rack: r2, host: h2}
  - {id: c1, zone: c, rack: r1, host: h1}
  - {id: c2, zone: c, rack: r2, host: h2, state: down}
  - {id: d1, zone: d, rack: r1, host: h1}
  - {id: d2, zone: d, rack: r2, host: h2}
`

func writeTopo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "topo.yaml")
	if err := os.WriteFile(path, []byte(placementTopo), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPlacementCommandJSON(t *testing.T) {
	var out bytes.Buffer
	cfg := placementConfig{Topology: writeTopo(t), Object: "b/k", K: 4, M: 2, JSON: true}
	if err := runPlacement(context.Background(), &out, cfg); err != nil {
		t.Fatal(err)
	}
	var rep placementReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(rep.Shards) != 6 || rep.Up != 7 || rep.Nodes != 8 {
		t.Fatalf("report %+v", rep)
	}
	seen := map[string]bool{}
	for i, s := range rep.Shards {
		if s.Index != i || s.Node == "" || seen[s.Node] || s.Node == "c2" || s.State != "up" {
			t.Errorf("shard row %+v", s)
		}
		seen[s.Node] = true
		if (i < 4) != (s.Kind == "data") {
			t.Errorf("shard %d kind %s", i, s.Kind)
		}
	}
	// Four zones, two shards at most in each: any zone can go.
	if !rep.Survives.Zone || rep.Survives.AnyNodes != 2 || rep.Caps.Zone != 2 {
		t.Errorf("survives %+v caps %+v", rep.Survives, rep.Caps)
	}
}

func TestPlacementCommandTable(t *testing.T) {
	var out bytes.Buffer
	cfg := placementConfig{Topology: writeTopo(t), Object: "b/k", K: 4, M: 3}
	if err := runPlacement(context.Background(), &out, cfg); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"SHARD", "ZONE", "parity", "survives: any 3 nodes", "a zone: yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	if got := strings.Count(text, "\n"); got < 9 {
		t.Errorf("table has %d lines:\n%s", got, text)
	}
}

func TestPlacementCommandErrors(t *testing.T) {
	topo := writeTopo(t)
	err := runPlacement(context.Background(), &bytes.Buffer{}, placementConfig{Topology: topo, Object: "x", K: 6, M: 2})
	if !errors.Is(err, placement.ErrTooFewNodes) {
		t.Errorf("8 shards on 7 up nodes: %v", err)
	}
	var out bytes.Buffer
	if err := runPlacement(context.Background(), &out, placementConfig{Topology: topo, Object: "x", K: 6, M: 2, Min: 6}); err != nil || !strings.Contains(out.String(), "degraded") {
		t.Errorf("degraded: %v\n%s", err, out.String())
	}
	for _, cfg := range []placementConfig{
		{Object: "x", K: 4, M: 2},
		{Topology: topo, K: 4, M: 2},
		{Topology: topo, Meta: "127.0.0.1:1", Object: "x", K: 4, M: 2},
		{Topology: filepath.Join(t.TempDir(), "missing.yaml"), Object: "x", K: 4, M: 2},
		{Meta: "127.0.0.1:1", SecretFile: filepath.Join(t.TempDir(), "s"), Object: "x", K: 4, M: 2}, // nothing listens there
		{Topology: topo, Object: "x", K: 0, M: 2},
	} {
		if err := runPlacement(context.Background(), &bytes.Buffer{}, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func TestPlacementExamples(t *testing.T) {
	for _, f := range []string{"topology-3zones.yaml", "topology-4zones.json"} {
		var out bytes.Buffer
		cfg := placementConfig{Topology: filepath.Join("..", "..", "docs", "examples", f), Object: "photos/cat.jpg", K: 2, M: 2, JSON: true}
		if err := runPlacement(context.Background(), &out, cfg); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
