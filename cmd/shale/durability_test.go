package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/meta"
	metaremote "github.com/shale-store/shale/meta/remote"
)

// runDurabilityCmd runs `shale durability args...` and returns its output.
func runDurabilityCmd(t *testing.T, args ...string) string {
	t.Helper()
	cmd := newDurabilityCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("durability %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// durabilityJSON is the part of `shale durability --json` the tests read.
type durabilityJSON struct {
	Params struct {
		K, M, Nodes int
	} `json:"params"`
	Results []struct {
		AnnualLossProbability float64 `json:"annual_loss_probability"`
		// Any: Monte Carlo's years in which any class lost data.
		Any *struct {
			AnnualLossProbability float64 `json:"annual_loss_probability"`
		} `json:"any"`
	} `json:"results"`
	MetaParams struct {
		Replicas  int   `json:"replicas"`
		PerDomain []int `json:"per_domain"`
	} `json:"meta_params"`
	Meta struct {
		AnnualLossProbability float64 `json:"annual_loss_probability"`
		LostAt                int     `json:"lost_at"`
	} `json:"meta"`
	Combined []struct {
		Data                  float64  `json:"data_annual_loss_probability"`
		Bound                 bool     `json:"data_is_upper_bound"`
		Erasure               float64  `json:"erasure_annual_loss_probability"`
		Copies                *float64 `json:"copies_annual_loss_probability"`
		AnnualLossProbability float64  `json:"annual_loss_probability"`
	} `json:"combined"`
	Overhead         float64 `json:"overhead"`
	ReplicateMax     int64   `json:"replicate_max"`
	ReplicateMaxFrom string  `json:"replicate_max_from"`
	Copies           *struct {
		Params struct {
			K, M    int
			Stripes int64
		} `json:"params"`
		Overhead float64 `json:"overhead"`
		Results  []struct {
			Model                 string  `json:"model"`
			AnnualLossProbability float64 `json:"annual_loss_probability"`
			K                     int     `json:"k"`
			LossYears             int     `json:"loss_years"`
		} `json:"results"`
	} `json:"copies"`
	CopiesNote string   `json:"copies_note"`
	Dominant   string   `json:"dominant"`
	Weakest    []string `json:"weakest"`
	Summary    string   `json:"summary"`
}

func parseDurabilityJSON(t *testing.T, out string) durabilityJSON {
	t.Helper()
	var d durabilityJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("durability --json: %v\n%s", err, out)
	}
	return d
}

// The table carries the metadata's group and the combined figures, and says
// plainly when the metadata decides: always with one replica, with three
// at an hour's rebuild against 4+2 (two meta disks within an hour are likelier
// than three data disks within a day), never with five.
func TestDurabilityIncludesMetadata(t *testing.T) {
	base := []string{"--k", "4", "--m", "2", "--nodes", "6", "--zones", "3", "--model", "markov,cluster,binomial"}
	one := runDurabilityCmd(t, append(base, "--meta-replicas", "1")...)
	for _, want := range []string{
		"metadata (1 replica) dominates: a single meta disk loses every object",
		"COMBINED NINES", "meta-raft", "counted lost when its one replica is lost",
	} {
		if !strings.Contains(one, want) {
			t.Errorf("one replica: output lacks %q:\n%s", want, one)
		}
	}
	three := runDurabilityCmd(t, append(base, "--meta-replicas", "3")...)
	if !strings.Contains(three, "metadata (3 replicas) dominates: losing 2 of them within a 1h rebuild") ||
		strings.Contains(three, "single meta disk") || !strings.Contains(three, "2 of 3 (a majority)") {
		t.Errorf("three replicas, 1h rebuild:\n%s", three)
	}
	for _, args := range [][]string{{"--meta-replicas", "3", "--meta-rebuild", "10s"}, {"--meta-replicas", "5"}} {
		out := runDurabilityCmd(t, append(base, args...)...)
		if strings.Contains(out, "dominates") || !strings.Contains(out, "the data's loss decides the combined figure") {
			t.Errorf("%v: the data decides, yet:\n%s", args, out)
		}
	}
	// --meta-replicas defaults to 3.
	if def := runDurabilityCmd(t, base...); !strings.Contains(def, "metadata: 3 raft replicas in 3 zones") {
		t.Errorf("default meta replicas:\n%s", def)
	}

	// A simulation that saw no loss only bounds the data's figure: below the
	// bound the metadata's figure cannot be ranked; above it, it dominates.
	mc := []string{"--k", "4", "--m", "2", "--nodes", "6", "--zones", "3", "--model", "montecarlo", "--trials", "2000", "--stripes", "1000", "--json"}
	for r, want := range map[string]string{"5": "unknown", "1": "metadata"} {
		d := parseDurabilityJSON(t, runDurabilityCmd(t, append(mc, "--meta-replicas", r)...))
		if d.Dominant != want {
			t.Errorf("monte carlo alone, %s replicas: dominant %q, want %q (%s)", r, d.Dominant, want, d.Summary)
		}
	}

	for _, r := range []string{"1", "3", "5"} {
		d := parseDurabilityJSON(t, runDurabilityCmd(t, append(base, "--meta-replicas", r, "--json")...))
		if len(d.Combined) != 3 || len(d.Results) != 3 {
			t.Fatalf("%s replicas: %d combined figures for %d results", r, len(d.Combined), len(d.Results))
		}
		for i, c := range d.Combined {
			if c.Erasure != d.Results[i].AnnualLossProbability || c.Data < c.Erasure || c.AnnualLossProbability < c.Data || c.AnnualLossProbability < d.Meta.AnnualLossProbability {
				t.Errorf("%s replicas: combined %g below a part (data %g, k+m %g, meta %g)", r, c.AnnualLossProbability, c.Data, c.Erasure, d.Meta.AnnualLossProbability)
			}
		}
		if want := map[string]string{"1": "metadata", "3": "metadata", "5": "data"}[r]; d.Dominant != want {
			t.Errorf("%s replicas: dominant %q, want %q (%s)", r, d.Dominant, want, d.Summary)
		}
	}
}

// --data reads the meta replicas and their zones from DATA/cluster.json, and
// the rest from the running cluster (a real meta store served over HTTP):
// a file from before replicas, with only a meta address, is one replica.
func TestDurabilityFromClusterFile(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	secret, err := loadSecretFlag(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := meta.Open(meta.Config{Dir: filepath.Join(dir, "meta")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(metaremote.NewHandler(st, secret, metaremote.HandlerConfig{}))
	defer srv.Close()
	ctx := context.Background()
	for i := range 9 {
		zone := fmt.Sprintf("z%d", i%3+1)
		r := meta.NodeReport{ID: cluster.NodeID(fmt.Sprintf("n%d", i)), Addr: fmt.Sprintf("127.0.0.1:%d", 1000+i),
			Domain: cluster.Domain{Zone: zone, Rack: zone + "-r1", Host: fmt.Sprintf("h%d", i)}, Capacity: 1 << 30, Free: 1 << 30}
		if err := st.Heartbeat(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	file := devcluster.File{Meta: addr, SecretFile: secretFile, K: 6, M: 3}

	run := func(f devcluster.File) durabilityJSON {
		t.Helper()
		if err := devcluster.Write(dir, f); err != nil {
			t.Fatal(err)
		}
		return parseDurabilityJSON(t, runDurabilityCmd(t, "--data", dir, "--model", "markov", "--json"))
	}

	// Three replicas, one per zone.
	f := file
	for i, z := range []string{"z1", "z2", "z3"} {
		f.Metas = append(f.Metas, devcluster.MetaReplica{ID: fmt.Sprintf("meta-%d", i+1), Addr: addr, Zone: z})
	}
	d := run(f)
	if d.Params.K != 6 || d.Params.M != 3 || d.Params.Nodes != 9 {
		t.Errorf("coding and nodes from the cluster: %+v", d.Params)
	}
	if d.MetaParams.Replicas != 3 || fmt.Sprint(d.MetaParams.PerDomain) != "[1 1 1]" || d.Meta.LostAt != 2 {
		t.Errorf("three replicas in three zones: %+v, lost at %d", d.MetaParams, d.Meta.LostAt)
	}
	if len(d.Combined) != 1 || d.Combined[0].AnnualLossProbability < d.Meta.AnnualLossProbability {
		t.Errorf("combined figure: %+v", d.Combined)
	}

	// Two of three in one zone.
	f.Metas[2].Zone = "z1"
	if d := run(f); d.MetaParams.Replicas != 3 || fmt.Sprint(d.MetaParams.PerDomain) != "[2 1]" {
		t.Errorf("three replicas in two zones: %+v", d.MetaParams)
	}

	// A single-meta cluster file: one replica, and it says so.
	d = run(file)
	if d.MetaParams.Replicas != 1 || d.Dominant != "metadata" || !strings.Contains(d.Summary, "a single meta disk loses every object") {
		t.Errorf("single-meta cluster file: %+v, %s", d.MetaParams, d.Summary)
	}

	// --meta: the replicas are the addresses given.
	out := runDurabilityCmd(t, "--meta", addr, "--secret-file", secretFile, "--model", "markov")
	if !strings.Contains(out, "metadata: 1 raft replica (from --meta addresses)") {
		t.Errorf("--meta with one address:\n%s", out)
	}

	// A file that names no meta at all is refused, not taken for none.
	empty := file
	empty.Meta = ""
	if err := devcluster.Write(dir, empty); err != nil {
		t.Fatal(err)
	}
	cmd := newDurabilityCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"--data", dir, "--model", "markov"})
	if err := cmd.ExecuteContext(t.Context()); err == nil || !strings.Contains(err.Error(), "names no meta replica") {
		t.Errorf("cluster file without meta: err = %v", err)
	}

	// The flag wins over the file.
	if err := devcluster.Write(dir, file); err != nil {
		t.Fatal(err)
	}
	out = runDurabilityCmd(t, "--data", dir, "--model", "markov", "--meta-replicas", "5")
	if !strings.Contains(out, "metadata: 5 raft replicas") || !strings.Contains(out, "(from --meta-replicas)") {
		t.Errorf("--meta-replicas over the cluster file:\n%s", out)
	}

	// Small objects as copies: the gateway's --replicate-max from the
	// cluster file's gateway args, else the gateway's default.
	d = run(file)
	if d.ReplicateMax != 64<<10 || d.Copies == nil || d.Copies.Params.M != 3 || !strings.Contains(d.ReplicateMaxFrom, "does not set --replicate-max") {
		t.Errorf("gateway args without --replicate-max: %d from %q, copies %+v", d.ReplicateMax, d.ReplicateMaxFrom, d.Copies)
	}
	g := file
	g.GatewayArgs = []string{"gateway", "--listen", "127.0.0.1:0", "--replicate-max", "0"}
	if d := run(g); d.ReplicateMax != 0 || d.Copies != nil || d.ReplicateMaxFrom != "the gateway's --replicate-max in cluster.json" {
		t.Errorf("gateway --replicate-max 0: %d from %q, copies %+v", d.ReplicateMax, d.ReplicateMaxFrom, d.Copies)
	}
	g.GatewayArgs = []string{"gateway", "--replicate-max=131072", "--block-size", "65536"}
	if d := run(g); d.ReplicateMax != 131072 || d.Copies == nil {
		t.Errorf("gateway --replicate-max=131072: %d, copies %+v", d.ReplicateMax, d.Copies)
	}
	g.GatewayArgs = []string{"gateway", "--replicate-max", "0"}
	if err := devcluster.Write(dir, g); err != nil {
		t.Fatal(err)
	}
	out = runDurabilityCmd(t, "--data", dir, "--model", "markov", "--replicate-max", "4096")
	if !strings.Contains(out, "small objects: objects and parts up to 4 KiB (--replicate-max) as 1+3 copies, overhead 4.00x") {
		t.Errorf("--replicate-max over the cluster file:\n%s", out)
	}
}
