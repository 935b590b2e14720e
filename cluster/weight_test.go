package cluster

import "testing"

// TestNodeWeight: an operator's weight wins over the capacity; without
// either a node weighs DefaultCapacity.
func TestNodeWeight(t *testing.T) {
	for _, c := range []struct {
		n    Node
		want float64
	}{
		{Node{}, float64(DefaultCapacity)},
		{Node{Capacity: 2 << 40}, float64(2 << 40)},
		{Node{Capacity: 2 << 40, Weighted: 5 << 40}, float64(5 << 40)},
		{Node{Weighted: 1 << 30}, float64(1 << 30)},
	} {
		if got := c.n.Weight(); got != c.want {
			t.Errorf("%+v: weight %g, want %g", c.n, got, c.want)
		}
	}
}
