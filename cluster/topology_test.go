package cluster

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseTopology(t *testing.T) {
	yamlDoc := `
epoch: 7
nodes:
  - {id: n1, addr: "127.0.0.1:9001", zone: a, rack: r1, host: h1, capacity: 4TiB}
  - {id: n2, zone: b, rack: r1, host: h1, capacity: 1000, state: down}
  - {id: n3, zone: c, rack: r1, host: h1, capacity: "1.5 GB", state: Full}
`
	m, err := ParseTopology([]byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	if m.Epoch() != 7 || m.Len() != 3 {
		t.Fatalf("epoch %d, %d nodes", m.Epoch(), m.Len())
	}
	n1, _ := m.Node("n1")
	n2, _ := m.Node("n2")
	n3, _ := m.Node("n3")
	if n1.Capacity != 4<<40 || n1.Addr != "127.0.0.1:9001" || n1.Domain != (Domain{"a", "r1", "h1"}) || n1.State != Up {
		t.Errorf("n1 = %+v", n1)
	}
	if n2.Capacity != 1000 || n2.State != Down || n3.Capacity != 1_500_000_000 || n3.State != Full {
		t.Errorf("n2 = %+v, n3 = %+v", n2, n3)
	}

	jsonList := `[{"id":"x","zone":"z","rack":"r","host":"h","capacity":"2TB"},{"id":"y","zone":"z","rack":"r","host":"g"}]`
	m, err = ParseTopology([]byte(jsonList))
	if err != nil || m.Len() != 2 {
		t.Fatalf("json list: %v", err)
	}
	if x, _ := m.Node("x"); x.Capacity != 2e12 {
		t.Errorf("x capacity %d", x.Capacity)
	}

	for _, bad := range []string{
		``, `nodes: []`, `[{"id": ""}]`, `[{"id": "a"}, {"id": "a"}]`,
		`[{"id": "a", "state": "sleepy"}]`, `[{"id": "a", "capacity": "-3"}]`,
		`[{"id": "a", "capacity": "12XB"}]`, `{{{`,
	} {
		if _, err := ParseTopology([]byte(bad)); !errors.Is(err, ErrTopology) {
			t.Errorf("ParseTopology(%q) = %v, want ErrTopology", bad, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "17": 17, "1KiB": 1024, "1kb": 1000, "2 GiB": 2 << 30, "0.5TiB": 1 << 39, "3B": 3} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"x", "-1", "1e30PB", "NaN", "KiB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", bad)
		}
	}
}

// FuzzParseTopology: never panics, and whatever parses survives the map's
// JSON round trip unchanged.
func FuzzParseTopology(f *testing.F) {
	f.Add([]byte(`[{"id":"x","zone":"z","rack":"r","host":"h","capacity":"2TB"}]`))
	f.Add([]byte("epoch: 3\nnodes:\n  - {id: a, zone: z, state: down, capacity: 1KiB}\n"))
	f.Add([]byte("- id: a\n- id: b\n  capacity: 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseTopology(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Map
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if back.Len() != m.Len() || back.Epoch() != m.Epoch() {
			t.Fatalf("round trip changed the map")
		}
		for i := range m.Len() {
			if back.At(i) != m.At(i) {
				t.Fatalf("node %d: %+v vs %+v", i, back.At(i), m.At(i))
			}
		}
	})
}
