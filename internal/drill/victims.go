package drill

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Candidate is one process a drill may kill.
type Candidate struct {
	ID   string `json:"id"`
	Zone string `json:"zone,omitempty"`
	PID  int    `json:"pid"`
	// Marker is what the process's command line must contain for it to be
	// this cluster's process (its --data dir).
	Marker string `json:"-"`
	// Alive: the pid was checked (IsClusterProcess) to be running this
	// cluster's shale process. Only Alive candidates are chosen.
	Alive bool `json:"-"`
}

var (
	// ErrTooFewVictims: fewer live candidates than a round must kill.
	ErrTooFewVictims = errors.New("drill: too few live processes to kill")
	// ErrWouldLoseData: the plan kills more shards of an object at once than
	// m, so data loss would be the expected outcome, not a finding.
	ErrWouldLoseData = errors.New("drill: the plan would lose data by design")
	// ErrEmptyPlan: the plan kills nothing.
	ErrEmptyPlan = errors.New("drill: nothing to kill")
)

// RNG is the random source of round round of a drill with seed seed: the
// same seed and round give the same choices.
func RNG(seed uint64, round int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x5ca1e0000+uint64(round)))
}

// live returns the Alive candidates with a pid, sorted by id, so the choice
// never depends on the order the caller listed them in.
func live(cands []Candidate) []Candidate {
	var out []Candidate
	for _, c := range cands {
		if c.Alive && c.PID > 0 {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ChooseNodes picks n distinct live candidates with rng.
func ChooseNodes(rng *rand.Rand, cands []Candidate, n int) ([]Candidate, error) {
	l := live(cands)
	if n <= 0 {
		return nil, ErrEmptyPlan
	}
	if len(l) < n {
		return nil, fmt.Errorf("%w: want %d, %d alive", ErrTooFewVictims, n, len(l))
	}
	perm := rng.Perm(len(l))
	out := make([]Candidate, n)
	for i := range n {
		out[i] = l[perm[i]]
	}
	return out, nil
}

// ChooseZone picks, with rng, one zone among those with a live candidate
// and returns it with every live candidate in it.
func ChooseZone(rng *rand.Rand, cands []Candidate) (string, []Candidate, error) {
	l := live(cands)
	var zones []string
	for _, c := range l {
		if !slices.Contains(zones, c.Zone) {
			zones = append(zones, c.Zone)
		}
	}
	slices.Sort(zones)
	if len(zones) == 0 {
		return "", nil, fmt.Errorf("%w: no live node in any zone", ErrTooFewVictims)
	}
	z := zones[rng.IntN(len(zones))]
	var out []Candidate
	for _, c := range l {
		if c.Zone == z {
			out = append(out, c)
		}
	}
	return z, out, nil
}

// IsClusterProcess reports whether pid, in the /proc given as procfs, is a
// running (not zombie) shale process whose command line contains marker —
// so a pid recycled by another program, or a shale process of another
// cluster, is never signalled. exe names the binary ("shale" is always
// accepted).
func IsClusterProcess(procfs fs.FS, pid int, marker, exe string) bool {
	if pid <= 0 || marker == "" {
		return false
	}
	dir := strconv.Itoa(pid)
	stat, err := fs.ReadFile(procfs, dir+"/stat")
	if err != nil {
		return false
	}
	// "pid (comm) state ..."; comm may hold spaces and parentheses.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X') {
		return false
	}
	b, err := fs.ReadFile(procfs, dir+"/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	if len(args) < 2 {
		return false
	}
	if base := path.Base(args[0]); base != "shale" && (exe == "" || base != exe) {
		return false
	}
	for _, a := range args[1:] {
		if a == marker || strings.HasSuffix(a, "="+marker) {
			return true
		}
	}
	return false
}
