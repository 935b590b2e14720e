package placement

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shale-store/shale/cluster"
)

// The testdata format (see testdata/README):
//
//	topology NAME
//	ID ZONE/RACK/HOST [cap=BYTES] [state=STATE]
//	end
//	case TOPOLOGY k=K m=M [objects=N] [min=MIN]
//	caps=Z,R,H | survives=zone,rack,host|none | any=N | error=too-few|invalid | filled=N
//	end
//	golden TOPOLOGY k=K m=M
//	OBJECT NODE0 NODE1 ...
//	end

var update = flag.Bool("update", false, "rewrite the placements in testdata/golden.txt")

type tcase struct {
	file, line string
	topo       string
	k, m, min  int
	objects    int
	expect     map[string]string
	golden     [][]string // object, nodes...
}

type tfile struct {
	topos map[string][]cluster.Node
	cases []*tcase
}

func parseTestdata(path, text string) (*tfile, error) {
	f := &tfile{topos: map[string][]cluster.Node{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	lineNo := 0
	var topo string
	var cur *tcase
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, lineNo)
		fields := strings.Fields(line)
		switch {
		case fields[0] == "end":
			topo, cur = "", nil
		case topo != "":
			n, err := parseNodeLine(fields)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			f.topos[topo] = append(f.topos[topo], n)
		case cur != nil && cur.golden != nil:
			cur.golden = append(cur.golden, fields)
		case cur != nil:
			for _, kv := range fields {
				key, val, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("%s: want key=value, got %q", where, kv)
				}
				cur.expect[key] = val
			}
		case fields[0] == "topology" && len(fields) == 2:
			topo = fields[1]
			if _, dup := f.topos[topo]; dup {
				return nil, fmt.Errorf("%s: topology %s defined twice", where, topo)
			}
			f.topos[topo] = nil
		case (fields[0] == "case" || fields[0] == "golden") && len(fields) >= 2:
			cur = &tcase{file: path, line: where, topo: fields[1], objects: 50, expect: map[string]string{}}
			if fields[0] == "golden" {
				cur.golden = [][]string{}
			}
			for _, kv := range fields[2:] {
				key, val, _ := strings.Cut(kv, "=")
				v, err := strconv.Atoi(val)
				if err != nil {
					return nil, fmt.Errorf("%s: %q: %w", where, kv, err)
				}
				switch key {
				case "k":
					cur.k = v
				case "m":
					cur.m = v
				case "min":
					cur.min = v
				case "objects":
					cur.objects = v
				default:
					return nil, fmt.Errorf("%s: unknown parameter %q", where, key)
				}
			}
			if _, ok := f.topos[cur.topo]; !ok {
				return nil, fmt.Errorf("%s: unknown topology %q", where, cur.topo)
			}
			f.cases = append(f.cases, cur)
		default:
			return nil, fmt.Errorf("%s: cannot parse %q", where, line)
		}
	}
	return f, sc.Err()
}

func parseNodeLine(fields []string) (cluster.Node, error) {
	if len(fields) < 2 {
		return cluster.Node{}, fmt.Errorf("node line needs ID ZONE/RACK/HOST")
	}
	parts := strings.Split(fields[1], "/")
	if len(parts) != 3 {
		return cluster.Node{}, fmt.Errorf("domain %q is not ZONE/RACK/HOST", fields[1])
	}
	n := cluster.Node{ID: cluster.NodeID(fields[0]), Domain: cluster.Domain{Zone: parts[0], Rack: parts[1], Host: parts[2]}}
	for _, kv := range fields[2:] {
		key, val, _ := strings.Cut(kv, "=")
		switch key {
		case "cap":
			c, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return n, err
			}
			n.Capacity = c
		case "state":
			s, err := cluster.ParseState(val)
			if err != nil {
				return n, err
			}
			n.State = s
		default:
			return n, fmt.Errorf("unknown node attribute %q", key)
		}
	}
	return n, nil
}

func TestDataDriven(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parseTestdata(path, string(raw))
			if err != nil {
				t.Fatal(err)
			}
			changed := false
			for _, c := range f.cases {
				nodes := f.topos[c.topo]
				if c.golden != nil {
					changed = checkGolden(t, c, nodes) || changed
					continue
				}
				objs := make([]string, c.objects)
				for i := range objs {
					objs[i] = fmt.Sprintf("bucket/obj-%d", i)
				}
				rng := rand.New(rand.NewPCG(uint64(len(c.line)), 7))
				checkCase(t, c.line, rng, nodes, c.k, c.m, c.min, objs, c.expect)
			}
			if changed && *update {
				if err := os.WriteFile(path, []byte(rewriteGolden(string(raw), f)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// checkGolden compares pinned placements; it reports whether any differ.
func checkGolden(t *testing.T, c *tcase, nodes []cluster.Node) bool {
	t.Helper()
	m, err := cluster.NewMap(1, nodes)
	if err != nil {
		t.Fatalf("%s: %v", c.line, err)
	}
	p := NewPlanner(m)
	changed := false
	for i, row := range c.golden {
		got, err := p.Place(row[0], c.k, c.m)
		if err != nil {
			t.Fatalf("%s: place %s: %v", c.line, row[0], err)
		}
		want := row[1:]
		gotS := make([]string, len(got))
		for j, id := range got {
			gotS[j] = string(id)
		}
		if !slices.Equal(gotS, want) {
			changed = true
			c.golden[i] = append([]string{row[0]}, gotS...)
			if !*update {
				t.Errorf("%s: golden placement of %s changed (placement format break!)\n got: %v\nwant: %v", c.line, row[0], gotS, want)
			}
		}
	}
	return changed
}

// rewriteGolden replaces each golden block's rows with the current answers.
func rewriteGolden(raw string, f *tfile) string {
	var out strings.Builder
	var gi int
	var goldens []*tcase
	for _, c := range f.cases {
		if c.golden != nil {
			goldens = append(goldens, c)
		}
	}
	inGolden := false
	for _, line := range strings.SplitAfter(raw, "\n") {
		tl := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(tl, "golden "):
			inGolden = true
			out.WriteString(line)
			for _, row := range goldens[gi].golden {
				out.WriteString(strings.Join(row, " ") + "\n")
			}
			gi++
		case inGolden && tl == "end":
			inGolden = false
			out.WriteString(line)
		case inGolden && tl != "" && !strings.HasPrefix(tl, "#"):
		default:
			out.WriteString(line)
		}
	}
	return out.String()
}

// checkCase places every object and checks the invariants of the package
// plus the case's expectations. min > 0 selects PlaceDegraded.
func checkCase(t *testing.T, where string, rng *rand.Rand, nodes []cluster.Node, k, parity, minFill int, objects []string, expect map[string]string) {
	t.Helper()
	m, err := cluster.NewMap(1, nodes)
	if err != nil {
		t.Fatalf("%s: map: %v", where, err)
	}
	p := NewPlanner(m)
	n := k + parity
	// Planners over shuffled node lists: the answers must not change.
	var shuffled []*Planner
	for range 3 {
		ns := slices.Clone(nodes)
		rng.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
		shuffled = append(shuffled, newPlanner(m, ns))
		m2, err := cluster.NewMap(1, ns)
		if err != nil {
			t.Fatal(err)
		}
		shuffled = append(shuffled, NewPlanner(m2))
	}
	up := m.InState(cluster.Up)
	caps := p.Caps(n)
	if want, ok := expect["caps"]; ok {
		if got := fmt.Sprintf("%d,%d,%d", caps.Zone, caps.Rack, caps.Host); got != want {
			t.Errorf("%s: caps %s, want %s", where, got, want)
		}
	}
	if n >= 1 && len(up) > 0 {
		checkCapsMinimal(t, where, up, n, caps)
	}

	for _, obj := range objects {
		var got []cluster.NodeID
		var err error
		if minFill > 0 {
			got, err = p.PlaceDegraded(obj, k, parity, minFill)
		} else {
			got, err = p.Place(obj, k, parity)
		}
		for _, sp := range shuffled {
			var again []cluster.NodeID
			var err2 error
			if minFill > 0 {
				again, err2 = sp.PlaceDegraded(obj, k, parity, minFill)
			} else {
				again, err2 = sp.Place(obj, k, parity)
			}
			if !slices.Equal(got, again) || (err == nil) != (err2 == nil) {
				t.Fatalf("%s: %s: answer depends on node order: %v (%v) vs %v (%v)", where, obj, got, err, again, err2)
			}
		}
		if e, ok := expect["error"]; ok {
			checkErr(t, where+": "+obj, err, e)
			continue
		}
		if err != nil {
			t.Fatalf("%s: place %s: %v", where, obj, err)
		}
		checkPlacement(t, where+": "+obj, m, p, obj, got, n, caps)
		filled := countFilled(got)
		if want, ok := expect["filled"]; ok && strconv.Itoa(filled) != want {
			t.Errorf("%s: %s filled %d indexes, want %s", where, obj, filled, want)
		}
		if filled != min(n, len(up)) {
			t.Errorf("%s: %s filled %d indexes, want min(n, up) = %d", where, obj, filled, min(n, len(up)))
		}
		s := Survives(m, got, k, parity)
		checkSurvivesBrute(t, where+": "+obj, m, got, k, s)
		if want, ok := expect["survives"]; ok {
			var flags []string
			for _, f := range []struct {
				name string
				ok   bool
			}{{"zone", s.Zone}, {"rack", s.Rack}, {"host", s.Host}} {
				if f.ok {
					flags = append(flags, f.name)
				}
			}
			if len(flags) == 0 {
				flags = []string{"none"}
			}
			if g := strings.Join(flags, ","); g != want {
				t.Errorf("%s: %s survives %s, want %s (%+v)", where, obj, g, want, s)
			}
		}
		if want, ok := expect["any"]; ok && strconv.Itoa(s.AnyNodes) != want {
			t.Errorf("%s: %s survives any %d nodes, want %s", where, obj, s.AnyNodes, want)
		}
		checkReplace(t, where+": "+obj, rng, m, p, shuffled, obj, got)
	}
}

func countFilled(ids []cluster.NodeID) int {
	c := 0
	for _, id := range ids {
		if id != "" {
			c++
		}
	}
	return c
}

func checkErr(t *testing.T, where string, err error, want string) {
	t.Helper()
	var sentinel error
	switch want {
	case "too-few":
		sentinel = ErrTooFewNodes
	case "spread":
		sentinel = ErrSpread
	case "invalid":
		sentinel = ErrInvalidArgs
	default:
		t.Fatalf("%s: unknown error name %q", where, want)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: error %v, want %v", where, err, sentinel)
	}
}

// checkPlacement checks distinct, Up, caps, filled prefix, and that the set
// is rank-optimal: no unchosen node ranked ahead of a chosen one could
// replace it without breaking a cap (the matroid exchange condition that
// makes movement minimal).
func checkPlacement(t *testing.T, where string, m *cluster.Map, p *Planner, obj string, got []cluster.NodeID, n int, caps Caps) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s: %d entries, want %d", where, len(got), n)
	}
	seen := map[cluster.NodeID]bool{}
	var chosen []cluster.Node
	holes := false
	for i, id := range got {
		if id == "" {
			holes = true
			continue
		}
		if holes {
			t.Errorf("%s: index %d filled after an empty one: %v", where, i, got)
		}
		node, ok := m.Node(id)
		if !ok || node.State != cluster.Up {
			t.Fatalf("%s: shard %d on %q which is not an Up node of the map", where, i, id)
		}
		if seen[id] {
			t.Fatalf("%s: node %s used twice: %v", where, id, got)
		}
		seen[id] = true
		chosen = append(chosen, node)
	}
	if !withinCaps(chosen, caps) {
		t.Errorf("%s: placement %v breaks caps %+v", where, got, caps)
	}
	// Exchange condition.
	oh := objectHash(obj)
	up := m.InState(cluster.Up)
	maxW := 0.0
	for _, u := range up {
		maxW = max(maxW, u.Weight())
	}
	type rk struct {
		key float64
		x   uint64
	}
	ranks := map[cluster.NodeID]rk{}
	for _, u := range up {
		x := draw(oh, nodeHash(string(u.ID)))
		ranks[u.ID] = rk{hrwKey(x, maxW/u.Weight()), x}
	}
	rank := func(nd cluster.Node) (float64, uint64) { return ranks[nd.ID].key, ranks[nd.ID].x }
	ahead := func(a, b cluster.Node) bool {
		ka, xa := rank(a)
		kb, xb := rank(b)
		if ka != kb {
			return ka < kb
		}
		if xa != xb {
			return xa > xb
		}
		return a.ID < b.ID
	}
	for _, b := range up {
		if seen[b.ID] {
			continue
		}
		for ai, a := range chosen {
			if !ahead(b, a) {
				continue
			}
			swapped := slices.Clone(chosen)
			swapped[ai] = b
			if withinCaps(swapped, caps) {
				t.Errorf("%s: %s ranks ahead of chosen %s and could replace it within caps", where, b.ID, a.ID)
				return
			}
		}
	}
}

func withinCaps(nodes []cluster.Node, c Caps) bool {
	lim := []int{c.Zone, c.Rack, c.Host}
	for l, lv := range cluster.Levels {
		cnt := map[string]int{}
		for _, n := range nodes {
			cnt[n.Domain.Key(lv)]++
			if cnt[n.Domain.Key(lv)] > lim[l] {
				return false
			}
		}
	}
	return true
}

// checkCapsMinimal recomputes the caps' defining property independently:
// each is ≥ ceil(n/domains), lets min(n, up) shards be placed, and one less
// (when still ≥ the bound) would not.
func checkCapsMinimal(t *testing.T, where string, up []cluster.Node, n int, c Caps) {
	t.Helper()
	target := min(n, len(up))
	// Max placeable under caps: per zone, per rack, per host, bottom-up.
	flow := func(c Caps) int {
		type key struct{ z, r, h string }
		host := map[key]int{}
		for _, u := range up {
			host[key{u.Domain.Zone, u.Domain.Rack, u.Domain.Host}]++
		}
		rack := map[key]int{}
		for k, v := range host {
			rack[key{k.z, k.r, ""}] += min(v, c.Host)
		}
		zone := map[string]int{}
		for k, v := range rack {
			zone[k.z] += min(v, c.Rack)
		}
		total := 0
		for _, v := range zone {
			total += min(v, c.Zone)
		}
		return total
	}
	if flow(c) < target {
		t.Fatalf("%s: caps %+v cannot place %d shards", where, c, target)
	}
	levels := []*int{&c.Zone, &c.Rack, &c.Host}
	for l, lv := range cluster.Levels {
		bound := ceilDiv(n, cluster.Domains(up, lv))
		if *levels[l] < bound {
			t.Errorf("%s: %v cap %d below ceil(%d/%d)", where, lv, *levels[l], n, cluster.Domains(up, lv))
		}
		if *levels[l] > bound {
			lower := c
			*[]*int{&lower.Zone, &lower.Rack, &lower.Host}[l] = *levels[l] - 1
			// Narrower levels are free when testing a wider one.
			for ll := l + 1; ll < 3; ll++ {
				*[]*int{&lower.Zone, &lower.Rack, &lower.Host}[ll] = n
			}
			if flow(lower) >= target {
				t.Errorf("%s: %v cap %d is not minimal (caps %+v)", where, lv, *levels[l], c)
			}
		}
	}
}

// checkSurvivesBrute recomputes Survives by enumerating node and domain
// losses.
func checkSurvivesBrute(t *testing.T, where string, m *cluster.Map, ids []cluster.NodeID, k int, s Survival) {
	t.Helper()
	var present []cluster.Node
	for _, id := range ids {
		if nd, ok := m.Node(id); ok && id != "" {
			present = append(present, nd)
		}
	}
	if s.Shards != len(present) {
		t.Errorf("%s: Shards %d, want %d", where, s.Shards, len(present))
	}
	var distinct []cluster.NodeID
	for _, nd := range present {
		if !slices.Contains(distinct, nd.ID) {
			distinct = append(distinct, nd.ID)
		}
	}
	if len(distinct) > 18 {
		return // too many subsets; the harness keeps cases smaller
	}
	left := func(gone func(cluster.Node) bool) int {
		c := 0
		for _, nd := range present {
			if !gone(nd) {
				c++
			}
		}
		return c
	}
	any := 0
	if len(present) >= k {
		// Largest f such that every f-subset of nodes leaves ≥ k shards.
		worst := make([]int, len(distinct)+1) // most shards lost by f nodes
		per := make([]int, len(distinct))
		for _, nd := range present {
			per[slices.Index(distinct, nd.ID)]++
		}
		for mask := 1; mask < 1<<len(distinct); mask++ {
			f, l := 0, 0
			for i := range distinct {
				if mask&(1<<i) != 0 {
					f++
					l += per[i]
				}
			}
			worst[f] = max(worst[f], l)
		}
		for f := 1; f <= len(distinct) && len(present)-worst[f] >= k; f++ {
			any = f
		}
	}
	if s.AnyNodes != any {
		t.Errorf("%s: AnyNodes %d, brute force %d", where, s.AnyNodes, any)
	}
	flags := []bool{s.Zone, s.Rack, s.Host}
	for l, lv := range cluster.Levels {
		want := len(present) >= k && k >= 1
		for _, nd := range present {
			key := nd.Domain.Key(lv)
			if left(func(o cluster.Node) bool { return o.Domain.Key(lv) == key }) < k {
				want = false
			}
		}
		if flags[l] != want {
			t.Errorf("%s: survives %v loss = %v, brute force %v (%+v)", where, lv, flags[l], want, s)
		}
	}
}

// checkReplace loses a random set of indexes and checks Replace.
func checkReplace(t *testing.T, where string, rng *rand.Rand, m *cluster.Map, p *Planner, shuffled []*Planner, obj string, cur []cluster.NodeID) {
	t.Helper()
	var lost []int
	for i := range cur {
		if cur[i] == "" || rng.IntN(4) == 0 {
			lost = append(lost, i)
		}
	}
	got, err := p.Replace(obj, cur, lost)
	for _, sp := range shuffled {
		again, err2 := sp.Replace(obj, cur, lost)
		if !slices.Equal(got, again) || (err == nil) != (err2 == nil) {
			t.Fatalf("%s: Replace depends on node order: %v vs %v", where, got, again)
		}
	}
	if err != nil {
		if !errors.Is(err, ErrTooFewNodes) && !errors.Is(err, ErrSpread) {
			t.Errorf("%s: Replace(%v, %v): %v", where, cur, lost, err)
		}
		return
	}
	before := spread(m, cur)
	after := spread(m, got)
	caps := p.Caps(len(cur))
	limits := []int{caps.Zone, caps.Rack, caps.Host}
	for l := range 3 {
		if after[l] > max(before[l], limits[l]) {
			t.Errorf("%s: Replace made level %d spread worse: %d > max(%d, %d)", where, l, after[l], before[l], limits[l])
		}
	}
	for i := range cur {
		if slices.Contains(lost, i) {
			nd, ok := m.Node(got[i])
			if !ok || nd.State != cluster.Up || slices.Contains(cur, got[i]) {
				t.Errorf("%s: Replace put lost shard %d on %q", where, i, got[i])
			}
			if slices.Index(got, got[i]) != i {
				t.Errorf("%s: Replace used %s twice", where, got[i])
			}
		} else if got[i] != cur[i] {
			t.Errorf("%s: Replace moved kept shard %d", where, i)
		}
	}
}

func spread(m *cluster.Map, ids []cluster.NodeID) [3]int {
	var out [3]int
	for l, lv := range cluster.Levels {
		cnt := map[string]int{}
		for _, id := range ids {
			if nd, ok := m.Node(id); ok && id != "" {
				cnt[nd.Domain.Key(lv)]++
				out[l] = max(out[l], cnt[nd.Domain.Key(lv)])
			}
		}
	}
	return out
}
