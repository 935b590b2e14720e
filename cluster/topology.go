package cluster

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrTopology is returned by ParseTopology for a document it cannot read.
var ErrTopology = errors.New("invalid topology")

// topoNode is one node of a topology document.
type topoNode struct {
	ID       string `yaml:"id"`
	Addr     string `yaml:"addr"`
	Zone     string `yaml:"zone"`
	Rack     string `yaml:"rack"`
	Host     string `yaml:"host"`
	Capacity string `yaml:"capacity"` // bytes, or a number with a unit: 500GB, 4TiB
	State    string `yaml:"state"`    // up (default), down, out, draining, full
}

type topoDoc struct {
	Epoch uint64     `yaml:"epoch"`
	Nodes []topoNode `yaml:"nodes"`
}

// ParseTopology reads a cluster map from a YAML or JSON document (JSON is
// YAML): either a list of nodes or an object {epoch, nodes}. Each node has
// id, addr, zone, rack, host, capacity (bytes, or with a unit such as 500GB
// or 4TiB; empty means DefaultCapacity) and state (default up). It is a pure
// function of the bytes; reading the file is the caller's business.
func ParseTopology(data []byte) (*Map, error) {
	var doc topoDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		var list []topoNode
		if err2 := yaml.Unmarshal(data, &list); err2 != nil {
			return nil, fmt.Errorf("%w: %v", ErrTopology, err)
		}
		doc = topoDoc{Nodes: list}
	}
	if len(doc.Nodes) == 0 {
		return nil, fmt.Errorf("%w: no nodes", ErrTopology)
	}
	nodes := make([]Node, 0, len(doc.Nodes))
	for i, tn := range doc.Nodes {
		n := Node{ID: NodeID(tn.ID), Addr: tn.Addr, Domain: Domain{Zone: tn.Zone, Rack: tn.Rack, Host: tn.Host}}
		c, err := ParseBytes(tn.Capacity)
		if err != nil {
			return nil, fmt.Errorf("%w: node %d (%q): capacity: %v", ErrTopology, i, tn.ID, err)
		}
		n.Capacity = c
		if tn.State != "" {
			if n.State, err = ParseState(tn.State); err != nil {
				return nil, fmt.Errorf("%w: node %d (%q): %v", ErrTopology, i, tn.ID, err)
			}
		}
		nodes = append(nodes, n)
	}
	m, err := NewMap(doc.Epoch, nodes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTopology, err)
	}
	return m, nil
}

// byteUnit is a suffix ParseBytes understands and what it multiplies by.
type byteUnit struct {
	suffix string
	mult   float64
}

// byteUnits lists the suffixes, longest first where one ends another ("KIB"
// before "B"). A function, not a variable: the package keeps no mutable state.
func byteUnits() [11]byteUnit {
	return [...]byteUnit{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"PIB", 1 << 50},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15},
		{"B", 1},
	}
}

// ParseBytes reads a byte count: a plain integer, or a number followed by
// B, KB, MB, GB, TB, PB (powers of 1000) or KiB … PiB (powers of 1024),
// case-insensitive, spaces allowed. The empty string is 0.
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if t == "" {
		return 0, nil
	}
	mult := 1.0
	for _, u := range byteUnits() {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	if mult == 1 {
		if v, err := strconv.ParseInt(t, 10, 64); err == nil && v >= 0 {
			return v, nil
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsNaN(f) || f*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("bad byte count %q", s)
	}
	return int64(f * mult), nil
}
