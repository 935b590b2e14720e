package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// NodeID names one storage node. It is stable across restarts and is what
// manifests record for every shard.
type NodeID string

// ErrInvalidNodeID is returned by ValidateNodeID for an empty, overlong or
// oddly spelled id.
var ErrInvalidNodeID = errors.New("invalid node id")

// ValidateNodeID accepts 1–64 characters of [A-Za-z0-9._-], not starting with
// a dot, so an id is safe in file names, URLs and pebble keys.
func ValidateNodeID(id NodeID) error {
	s := string(id)
	if len(s) == 0 || len(s) > 64 || s[0] == '.' {
		return fmt.Errorf("%w: %q", ErrInvalidNodeID, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q", ErrInvalidNodeID, s)
		}
	}
	return nil
}

// Domain is a node's position in the failure-domain tree. Empty labels are
// allowed; placement treats each distinct (zone), (zone, rack) and
// (zone, rack, host) tuple as one domain at its level.
type Domain struct {
	Zone string `json:"zone"`
	Rack string `json:"rack"`
	Host string `json:"host"`
}

// Level is a failure-domain level, from the widest to the narrowest.
type Level int

const (
	LevelZone Level = iota
	LevelRack
	LevelHost
	LevelNode
)

// Levels lists the domain levels placement spreads over, widest first.
var Levels = [...]Level{LevelZone, LevelRack, LevelHost}

func (l Level) String() string {
	switch l {
	case LevelZone:
		return "zone"
	case LevelRack:
		return "rack"
	case LevelHost:
		return "host"
	case LevelNode:
		return "node"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// Key returns the domain's identity at level l: the path from the zone down
// to that level, so racks with the same name in two zones stay distinct.
func (d Domain) Key(l Level) string {
	switch l {
	case LevelZone:
		return d.Zone
	case LevelRack:
		return d.Zone + "/" + d.Rack
	default:
		return d.Zone + "/" + d.Rack + "/" + d.Host
	}
}

func (d Domain) String() string { return d.Zone + "/" + d.Rack + "/" + d.Host }

// State is a node's membership state as decided by meta.
type State uint8

const (
	// Up: heartbeats arrive; the node is placed on and read from.
	Up State = iota
	// Down: no heartbeat for down-after; not placed on, reads go around it.
	Down
	// Out: down for out-after or marked out by an operator; its shards are
	// re-created elsewhere.
	Out
	// Draining: an operator asked to remove it; its shards are copied away,
	// then it becomes Out. Readable, not placed on.
	Draining
	// Full: free space under the threshold; readable, not placed on.
	Full
)

var stateNames = [...]string{"up", "down", "out", "draining", "full"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(n, s) {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown node state %q", s)
}

func (s State) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func (s *State) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	v, err := ParseState(str)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Placeable reports whether new shards may be written to a node in state s.
func (s State) Placeable() bool { return s == Up }

// Readable reports whether shards may be read from a node in state s.
func (s State) Readable() bool { return s == Up || s == Draining || s == Full }

// Node is one storage node as the cluster map sees it.
type Node struct {
	ID     NodeID `json:"id"`
	Addr   string `json:"addr"` // host:port of its HTTP service
	Domain Domain `json:"domain"`
	// Capacity is the node's size in bytes; placement weighs nodes by it.
	// Zero means "unknown" and weighs as DefaultCapacity.
	Capacity int64 `json:"capacity"`
	// Weighted is an operator's placement weight in bytes (shale admin
	// weight), used instead of Capacity while positive.
	Weighted int64 `json:"weighted,omitempty"`
	Used     int64 `json:"used"`
	Free     int64 `json:"free"`
	State    State `json:"state"`
	// Damaged: the node reports corruption in its store's index; it is
	// Full (nothing new placed on it) until an operator replaces its store.
	Damaged bool `json:"damaged,omitempty"`
	PID     int  `json:"pid,omitempty"` // set by dev clusters, for operators
	// Since is when the node became out or draining (a move between the
	// two keeps it); zero in every other state. Meta sets and persists it;
	// repair times its episodes from it.
	Since time.Time `json:"since,omitzero"`
}

// DefaultCapacity is the weight of a node that reports no capacity: 1 TiB.
const DefaultCapacity = int64(1) << 40

// Weight is the node's placement weight: Weighted when an operator set
// it, else its capacity in bytes, or DefaultCapacity.
func (n Node) Weight() float64 {
	if n.Weighted > 0 {
		return float64(n.Weighted)
	}
	if n.Capacity <= 0 {
		return float64(DefaultCapacity)
	}
	return float64(n.Capacity)
}

// Map is an immutable snapshot of the cluster's nodes at an epoch. Nodes are
// kept sorted by id, so two maps with the same nodes compare equal whatever
// order they were built in.
type Map struct {
	epoch uint64
	nodes []Node
	index map[NodeID]int
}

// NewMap builds a map from nodes (copied). Duplicate or invalid ids are an
// error.
func NewMap(epoch uint64, nodes []Node) (*Map, error) {
	ns := append([]Node(nil), nodes...)
	sort.Slice(ns, func(i, j int) bool { return ns[i].ID < ns[j].ID })
	idx := make(map[NodeID]int, len(ns))
	for i, n := range ns {
		if err := ValidateNodeID(n.ID); err != nil {
			return nil, err
		}
		if _, dup := idx[n.ID]; dup {
			return nil, fmt.Errorf("duplicate node id %q in cluster map", n.ID)
		}
		idx[n.ID] = i
	}
	return &Map{epoch: epoch, nodes: ns, index: idx}, nil
}

// Epoch increases whenever membership or a node's state changes.
func (m *Map) Epoch() uint64 { return m.epoch }

// Len is the number of nodes in the map, whatever their state.
func (m *Map) Len() int { return len(m.nodes) }

// Nodes returns a copy of all nodes, sorted by id.
func (m *Map) Nodes() []Node { return append([]Node(nil), m.nodes...) }

// At returns the i-th node in id order (0 ≤ i < Len) without copying the list.
func (m *Map) At(i int) Node { return m.nodes[i] }

// Node looks a node up by id.
func (m *Map) Node(id NodeID) (Node, bool) {
	i, ok := m.index[id]
	if !ok {
		return Node{}, false
	}
	return m.nodes[i], true
}

// InState returns the nodes in any of the given states, sorted by id.
func (m *Map) InState(states ...State) []Node {
	var out []Node
	for _, n := range m.nodes {
		for _, s := range states {
			if n.State == s {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// Domains counts the distinct domains at level l among the given nodes.
func Domains(nodes []Node, l Level) int {
	seen := map[string]struct{}{}
	for _, n := range nodes {
		seen[n.Domain.Key(l)] = struct{}{}
	}
	return len(seen)
}

// mapJSON is Map's wire form.
type mapJSON struct {
	Epoch uint64 `json:"epoch"`
	Nodes []Node `json:"nodes"`
}

func (m *Map) MarshalJSON() ([]byte, error) {
	return json.Marshal(mapJSON{Epoch: m.epoch, Nodes: m.nodes})
}

func (m *Map) UnmarshalJSON(b []byte) error {
	var j mapJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	nm, err := NewMap(j.Epoch, j.Nodes)
	if err != nil {
		return err
	}
	*m = *nm
	return nil
}
