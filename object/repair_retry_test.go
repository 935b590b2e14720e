package object

import (
	"errors"
	"fmt"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/placement"
)

// A node that has just died still looks up to placement (meta has not
// marked it down yet), so repair may choose it; the write fails and the
// shard is placed again on another node within the same RepairObject, up
// to repairRetries times.
func TestRepairRetriesTargetThatJustDied(t *testing.T) {
	for dead := 1; dead <= repairRetries+1; dead++ {
		t.Run(fmt.Sprintf("%d dead targets", dead), func(t *testing.T) {
			h := newHarness(t, 9, testConfig())
			data := pattern(50, 2*4*4096+3)
			m := h.put("o", data)
			lostNode := shardNode(m, 1)
			h.setState(lostNode, cluster.Out)

			// The nodes placement would choose in turn, each killed
			// without the map knowing.
			mp, err := h.clusterMap()
			if err != nil {
				t.Fatal(err)
			}
			seg := m.Segments[0]
			current := make([]cluster.NodeID, len(seg.Shards))
			for i, r := range seg.Shards {
				current[i] = r.Node
			}
			excluded := map[cluster.NodeID]bool{}
			var killed []cluster.NodeID
			for range dead {
				emp, err := markedDown(mp, excluded)
				if err != nil {
					t.Fatal(err)
				}
				got, err := placement.Replace(emp, fmt.Sprintf("%s.%d", m.VersionID, seg.Number), current, []int{1})
				if err != nil {
					t.Fatalf("test setup: no target after %v: %v", killed, err)
				}
				killed = append(killed, got[1])
				excluded[got[1]] = true
				h.stores[got[1]].set(faults{down: true})
			}

			res, err := h.c.RepairObject(h.ctx, testBucket, "o", nil, nil)
			for _, id := range killed {
				if h.stores[id].putCount() == 0 {
					t.Fatalf("dead target %s was never tried (of %v)", id, killed)
				}
			}
			// Every write attempted on a dead target is queued as garbage
			// (the node may have kept part of it).
			if g := h.garbage(); len(g) < len(killed) {
				t.Fatalf("garbage %v, want an entry on each of %v", sortedKeys(g), killed)
			}
			if dead > repairRetries {
				if err == nil || !errors.Is(err, errNodeDown) || res.Remaining != 1 || res.Rebuilt != 0 {
					t.Fatalf("more dead targets than retries: %+v %v", res, err)
				}
				return
			}
			if err != nil || res.Rebuilt != 1 || res.Remaining != 0 {
				t.Fatalf("repair with %d dead targets: %+v %v", dead, res, err)
			}
			got, err := h.c.HeadObject(h.ctx, testBucket, "o")
			if err != nil {
				t.Fatal(err)
			}
			r1 := got.Segments[0].Shards[1]
			if excluded[r1.Node] || r1.Node == lostNode {
				t.Fatalf("shard 1 on %s (dead %v, out %s)", r1.Node, killed, lostNode)
			}
			for _, id := range killed {
				h.stores[id].set(faults{}) // alive again, for the reads of checkWhole
			}
			checkWhole(t, h, got, data)
		})
	}
}

// A retry keeps the shards already rebuilt in the same repair and the
// spread: two lost shards, one of whose targets is dead, end on distinct
// live nodes.
func TestRepairRetryKeepsOtherShards(t *testing.T) {
	h := newHarness(t, 9, testConfig())
	data := pattern(51, 4*4096+1)
	m := h.put("o", data)
	a, b := shardNode(m, 0), shardNode(m, 3)
	h.setState(a, cluster.Out)
	h.setState(b, cluster.Out)
	mp, err := h.clusterMap()
	if err != nil {
		t.Fatal(err)
	}
	seg := m.Segments[0]
	current := make([]cluster.NodeID, len(seg.Shards))
	for i, r := range seg.Shards {
		current[i] = r.Node
	}
	got, err := placement.Replace(mp, fmt.Sprintf("%s.%d", m.VersionID, seg.Number), current, []int{0, 3})
	if err != nil {
		t.Fatal(err)
	}
	deadNode := got[3]
	h.stores[deadNode].set(faults{down: true})
	res, err := h.c.RepairObject(h.ctx, testBucket, "o", nil, nil)
	if err != nil || res.Rebuilt != 2 || res.Remaining != 0 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	man, err := h.c.HeadObject(h.ctx, testBucket, "o")
	if err != nil {
		t.Fatal(err)
	}
	if n := man.Segments[0].Shards[0].Node; n != got[0] {
		t.Fatalf("shard 0 on %s, want its first choice %s", n, got[0])
	}
	if n := man.Segments[0].Shards[3].Node; n == deadNode || n == a || n == b {
		t.Fatalf("shard 3 on %s", n)
	}
	h.stores[deadNode].set(faults{})
	checkWhole(t, h, man, data)
	if g := h.garbage(); !g[string(deadNode)+"/"+failedID(t, h, deadNode)] {
		t.Fatalf("attempt on the dead node not queued as garbage: %v", sortedKeys(g))
	}
}

// failedID returns the one garbage shard id queued on node.
func failedID(t *testing.T, h *harness, node cluster.NodeID) string {
	t.Helper()
	gs, err := h.store.ListGarbagePage(h.ctx, meta.GarbageQuery{Node: node})
	if err != nil || len(gs) != 1 {
		t.Fatalf("garbage on %s: %+v %v", node, gs, err)
	}
	return gs[0].ShardID
}

func (s *faultStore) putCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}
