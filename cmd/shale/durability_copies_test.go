package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shale-store/shale/durability"
)

func relClose(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// Small objects stored as m+1 copies get their rows beside k+m's: every
// model, the overhead of each, and the combined figure counting both.
func TestDurabilitySmallObjectsAsCopies(t *testing.T) {
	base := []string{"--k", "4", "--m", "2", "--nodes", "24", "--stripes", "1000", "--zones", "3", "--model", "markov,cluster,binomial", "--meta-replicas", "5"}
	d := parseDurabilityJSON(t, runDurabilityCmd(t, append(base, "--json")...))
	if d.Copies == nil {
		t.Fatalf("no copies in the JSON at the default --replicate-max: %+v", d)
	}
	if d.ReplicateMax != 64<<10 || d.ReplicateMaxFrom != "the default --replicate-max" {
		t.Errorf("replicate_max %d from %q", d.ReplicateMax, d.ReplicateMaxFrom)
	}
	c := d.Copies
	if c.Params.K != 1 || c.Params.M != 2 || c.Overhead != 3 || d.Overhead != 1.5 || c.Params.Stripes != 1000 {
		t.Errorf("copies %+v, overhead %g; k+m overhead %g", c.Params, c.Overhead, d.Overhead)
	}
	if len(c.Results) != 3 || len(d.Results) != 3 || len(d.Combined) != 3 {
		t.Fatalf("%d copies results, %d k+m results, %d combined", len(c.Results), len(d.Results), len(d.Combined))
	}
	for i, cf := range d.Combined {
		k, cp := d.Results[i].AnnualLossProbability, c.Results[i].AnnualLossProbability
		if cf.Copies == nil || *cf.Copies != cp || cf.Erasure != k {
			t.Errorf("%s: combined parts %+v, want k+m %g, copies %g", c.Results[i].Model, cf, k, cp)
			continue
		}
		if !relClose(cf.Data, durability.Combine(k, cp)) || !relClose(cf.AnnualLossProbability, durability.Combine(k, cp, d.Meta.AnnualLossProbability)) {
			t.Errorf("%s: data %g, combined %g; want 1-(1-%g)(1-%g)(1-%g)", c.Results[i].Model, cf.Data, cf.AnnualLossProbability, k, cp, d.Meta.AnnualLossProbability)
		}
		// 1+2 loses a stripe only when its 3 nodes all fail; 4+2 when any 3
		// of its 6 do: per stripe (markov, binomial), and cluster-wide with
		// as many stripes of each, copies lose less.
		if !(cp > 0 && cp < k) {
			t.Errorf("%s: copies %g not below 4+2's %g", c.Results[i].Model, cp, k)
		}
	}
	text := runDurabilityCmd(t, base...)
	for _, want := range []string{
		"small objects: objects and parts up to 64 KiB (the default --replicate-max) as 1+2 copies, overhead 3.00x",
		"CODING", "OVERHEAD", "1+2 copies  3.00x", "4+2         1.50x", "P_copies",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "1+2 copies  3.00x"); n != 3 {
		t.Errorf("%d copies rows for 3 models:\n%s", n, text)
	}

	// --replicate-max 0: the gateway stores no copies, so no rows.
	off := runDurabilityCmd(t, append(base, "--replicate-max", "0", "--json")...)
	var raw map[string]any
	if err := json.Unmarshal([]byte(off), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["copies"]; ok {
		t.Errorf("--replicate-max 0 still has copies:\n%s", off)
	}
	d = parseDurabilityJSON(t, off)
	if d.ReplicateMax != 0 || !strings.Contains(d.CopiesNote, "replicate-max is 0") {
		t.Errorf("--replicate-max 0: replicate_max %d, note %q", d.ReplicateMax, d.CopiesNote)
	}
	for i, cf := range d.Combined {
		if cf.Copies != nil || cf.Data != d.Results[i].AnnualLossProbability {
			t.Errorf("--replicate-max 0: combined %+v", cf)
		}
	}
	if text := runDurabilityCmd(t, append(base, "--replicate-max", "0")...); strings.Contains(text, "1+2 copies") ||
		!strings.Contains(text, "small objects: none stored as copies: replicate-max is 0 (--replicate-max)") {
		t.Errorf("--replicate-max 0:\n%s", text)
	}

	// No copies without parity, nor when k+m already is 1+m.
	for _, args := range [][]string{{"--m", "0"}, {"--k", "1"}} {
		d := parseDurabilityJSON(t, runDurabilityCmd(t, append(base, append(args, "--json")...)...))
		if d.Copies != nil || d.CopiesNote == "" {
			t.Errorf("%v: copies %+v, note %q", args, d.Copies, d.CopiesNote)
		}
	}
	// m follows the coding; --small-stripes sets the copies' count alone.
	d = parseDurabilityJSON(t, runDurabilityCmd(t, "--k", "8", "--m", "3", "--model", "markov", "--small-stripes", "7", "--json"))
	if d.Copies == nil || d.Copies.Params.K != 1 || d.Copies.Params.M != 3 || d.Copies.Overhead != 4 || d.Copies.Params.Stripes != 7 || d.Params.K != 8 {
		t.Errorf("8+3 with --small-stripes 7: copies %+v", d.Copies)
	}
}

// The summary names the weakest class — 4+2, the copies or the metadata —
// by each class's most pessimistic model.
func TestDurabilitySummaryNamesWeakerClass(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		weakest []string
		says    string
	}{
		{"per stripe, copies lose less", []string{"--model", "markov,binomial", "--meta-replicas", "5"},
			[]string{"erasure"}, "the data's loss decides the combined figure. Of the data, 4+2 is the weaker class: 8.43 nines (markov-parallel) against 1+2 copies' 9.73 (markov-parallel)"},
		// ten thousand times as many small objects as large ones on 100
		// nodes: nearly every 3 nodes hold one's copies.
		{"many small objects", []string{"--model", "cluster", "--nodes", "100", "--stripes", "1000", "--small-stripes", "10000000", "--meta-replicas", "5"},
			[]string{"copies"}, "Of the data, 1+2 copies are the weaker class: 4.53 nines (cluster) against 4+2's 5.46 (cluster)"},
		// 6 nodes: any 3 of them hold a stripe of each class.
		{"both saturate", []string{"--model", "cluster", "--nodes", "6", "--meta-replicas", "5"},
			[]string{"erasure", "copies"}, "4+2 and 1+2 copies are equally weak: 8.43 nines (cluster)"},
		{"metadata", []string{"--model", "markov,cluster", "--meta-replicas", "1"},
			[]string{"metadata"}, "metadata (1 replica) dominates"},
		{"nothing lost in the simulation", []string{"--model", "montecarlo", "--trials", "200", "--stripes", "1000", "--meta-replicas", "5"},
			nil, "neither class can be ranked"},
		// the simulation saw 4+2 lose data and the copies not: their bound
		// lies above 4+2's figure, so the two cannot be ranked
		{"copies unseen", []string{"--model", "montecarlo", "--nodes", "12", "--zones", "3", "--racks", "1", "--afr", "0.17", "--repair", "240h",
			"--trials", "300", "--stripes", "20", "--meta-replicas", "5"},
			nil, "4+2 has 2.48 nines (montecarlo); montecarlo saw no loss of 1+2 copies, only ≥ 1.90: which is weaker cannot be told"},
		{"no copies", []string{"--model", "markov", "--meta-replicas", "5", "--replicate-max", "0"},
			[]string{"erasure"}, "the data's loss decides the combined figure"},
	} {
		d := parseDurabilityJSON(t, runDurabilityCmd(t, append(tc.args, "--json")...))
		if !slices.Equal(d.Weakest, tc.weakest) || !strings.Contains(d.Summary, tc.says) {
			t.Errorf("%s: weakest %q, want %q; summary:\n%s\nwant it to say %q", tc.name, d.Weakest, tc.weakest, d.Summary, tc.says)
		}
	}
}

// Monte Carlo simulates both classes in one cluster: the combined data
// figure is the years either lost data, between the larger class's and
// their sum.
func TestDurabilityMonteCarloCopies(t *testing.T) {
	d := parseDurabilityJSON(t, runDurabilityCmd(t, "--model", "montecarlo", "--nodes", "6", "--zones", "3", "--racks", "1",
		"--afr", "0.5", "--repair", "720h", "--trials", "400", "--stripes", "50", "--json"))
	if d.Copies == nil || len(d.Copies.Results) != 1 || d.Copies.Results[0].K != 1 {
		t.Fatalf("copies %+v", d.Copies)
	}
	k, c, cf := d.Results[0].AnnualLossProbability, d.Copies.Results[0].AnnualLossProbability, d.Combined[0]
	t.Logf("4+2 %g, 1+2 copies %g, either %g", k, c, cf.Data)
	if !(c > 0 && c < k) || cf.Bound {
		t.Fatalf("at AFR 50%% and a month's repair both should lose, copies less: 4+2 %g, copies %g", k, c)
	}
	if either := d.Results[0].Any; either == nil || cf.Data != either.AnnualLossProbability {
		t.Errorf("combined data %g is not the simulation's either-class figure %+v", cf.Data, either)
	}
	if cf.Data < max(k, c) || cf.Data > k+c+1e-12 || *cf.Copies != c || cf.Erasure != k {
		t.Errorf("either class %g outside [%g, %g]; parts %+v", cf.Data, max(k, c), k+c, cf)
	}
}

func TestReplicateMaxOf(t *testing.T) {
	for _, tc := range []struct {
		args []string
		v    int64
		ok   bool
		err  bool
	}{
		{nil, 0, false, false},
		{[]string{"gateway", "--listen", ":0"}, 0, false, false},
		{[]string{"gateway", "--replicate-max", "0"}, 0, true, false},
		{[]string{"gateway", "--replicate-max=65536", "--meta", "x"}, 65536, true, false},
		{[]string{"--replicate-max", "1", "--replicate-max", "2"}, 2, true, false},
		{[]string{"--replicate-max"}, 0, false, true},
		{[]string{"--replicate-max", "64KiB"}, 0, false, true},
	} {
		v, ok, err := replicateMaxOf(tc.args)
		if v != tc.v || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("%q: %d, %v, %v; want %d, %v, error %v", tc.args, v, ok, err, tc.v, tc.ok, tc.err)
		}
	}
}

// The comparison table shows, beside each parity count m, the 1+m copies
// small objects get: per stripe they beat every k+m with that m in every
// column, independent or correlated.
func TestDurabilityTableHasCopies(t *testing.T) {
	var buf strings.Builder
	if err := durabilityTable(&buf, 0); err != nil {
		t.Fatal(err)
	}
	tables := 0
	var copies map[int][]string // m → the copies row's cells
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "###") {
			tables++
			copies = map[int][]string{}
			continue
		}
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| coding") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		var k, m int
		if _, err := fmt.Sscanf(cells[0], "%d+%d", &k, &m); err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		if k == 1 {
			if want := fmt.Sprintf("1+%d: %d copies", m, m+1); !strings.HasPrefix(cells[0], want) || cells[1] != fmt.Sprintf("%d.00x", m+1) {
				t.Errorf("copies row %q, want %q at %d.00x", line, want, m+1)
			}
			copies[m] = cells
			continue
		}
		c, ok := copies[m]
		if !ok {
			t.Errorf("table %d: %d+%d without its 1+%d copies row above it", tables, k, m, m)
			continue
		}
		for i := 2; i < len(cells); i++ {
			var ec, cp float64
			fmt.Sscanf(cells[i], "%g", &ec)
			fmt.Sscanf(c[i], "%g", &cp)
			if !(cp > ec) {
				t.Errorf("table %d, %d+%d column %d: copies %g nines, not above %g", tables, k, m, i, cp, ec)
			}
		}
	}
	if tables != 2 {
		t.Errorf("%d tables, want 2:\n%s", tables, buf.String())
	}
}
