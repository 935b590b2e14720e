package object

import (
	"fmt"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// overwritten puts and overwrites n keys, so every node of a 6-node 4+2
// cluster holds n garbage shards (one of each first version), and returns
// the first versions.
func overwritten(h *harness, n int) []meta.Manifest {
	var olds []meta.Manifest
	for i := range n {
		k := string(rune('a' + i))
		olds = append(olds, h.put(k, pattern(uint64(60+i), 5000)))
		h.put(k, pattern(uint64(70+i), 100))
	}
	return olds
}

// garbageOn counts the queued garbage entries on node id.
func garbageOn(h *harness, id cluster.NodeID) int {
	n := 0
	for g := range h.garbage() {
		if len(g) > len(id) && g[:len(id)+1] == string(id)+"/" {
			n++
		}
	}
	return n
}

func (s *faultStore) deletes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dels
}

func TestCollectGarbageOnOutNodeThatIsAlive(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	olds := overwritten(h, 2)
	out := shardNode(olds[0], 0)
	h.setState(out, cluster.Out) // and its store fails: out and dead
	h.clock.Advance(time.Hour)

	n, err := h.c.CollectGarbage(h.ctx, 100)
	if err != nil || n != 10 {
		t.Fatalf("collect with a dead out node: %d %v (want 10, no error)", n, err)
	}
	if g := garbageOn(h, out); g != 2 || len(h.garbage()) != 2 {
		t.Fatalf("garbage left: %v, want the 2 entries on %s", sortedKeys(h.garbage()), out)
	}
	tried := h.stores[out].deletes()
	if tried != 1 {
		t.Fatalf("%d deletes tried on the dead out node, want 1 (the first failure ends the try)", tried)
	}

	// The node comes back but stays out (until an operator's "in"). Within
	// outRetry of the failed try it is left alone.
	h.stores[out].set(faults{})
	h.clock.Advance(outRetry / 2)
	if n, err := h.c.CollectGarbage(h.ctx, 100); err != nil || n != 0 {
		t.Fatalf("collect within outRetry: %d %v", n, err)
	}
	if got := h.stores[out].deletes(); got != tried {
		t.Fatalf("the out node was tried again within outRetry (%d deletes)", got-tried)
	}
	h.clock.Advance(outRetry / 2)
	if n, err := h.c.CollectGarbage(h.ctx, 100); err != nil || n != 2 {
		t.Fatalf("collect once outRetry passed: %d %v (want 2)", n, err)
	}
	if g := h.garbage(); len(g) != 0 {
		t.Fatalf("garbage left: %v", sortedKeys(g))
	}
	for _, m := range olds {
		for _, r := range m.Segments[0].Shards {
			if h.stored()[string(r.Node)+"/"+r.ID] {
				t.Fatalf("stale shard %s/%s still stored", r.Node, r.ID)
			}
		}
	}
	if h.state(out) != cluster.Out {
		t.Fatal("collection changed the node's state")
	}
}

func TestCollectGarbageStalledOutNodeIsBounded(t *testing.T) {
	h := newHarness(t, 6, fastDeadlines(testConfig()))
	olds := overwritten(h, 3)
	out := shardNode(olds[0], 0)
	h.setState(out, cluster.Out)
	h.stores[out].set(faults{stallDel: true}) // a blackholed address: no answer
	h.clock.Advance(time.Hour)

	// Returns (each delete there is cut off after ReadTimeout) with every
	// other node's garbage collected and no error for the out node.
	n, err := h.c.CollectGarbage(h.ctx, 100)
	if err != nil || n != 15 {
		t.Fatalf("collect with a stalled out node: %d %v (want 15, no error)", n, err)
	}
	if g := garbageOn(h, out); g != 3 {
		t.Fatalf("%d entries left on the stalled out node, want 3", g)
	}
	if d := h.stores[out].deletes(); d != 1 {
		t.Fatalf("%d deletes tried on the stalled out node, want 1", d)
	}
	// Put off: the next calls within outRetry do not wait on it at all.
	for range 3 {
		if n, err := h.c.CollectGarbage(h.ctx, 100); err != nil || n != 0 {
			t.Fatalf("collect again: %d %v", n, err)
		}
	}
	if d := h.stores[out].deletes(); d != 1 {
		t.Fatalf("%d deletes tried within outRetry, want 1", d)
	}
}

func TestCollectGarbageSkipsDownNodeButNotUnknown(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	olds := overwritten(h, 1)
	down := shardNode(olds[0], 1)
	h.setState(down, cluster.Down)
	h.stores[down].set(faults{}) // alive or not, a down node is not tried
	h.clock.Advance(time.Hour)
	if err := h.store.AddGarbage(h.ctx, []meta.Garbage{{Node: "gone", ShardID: "x", NotBefore: h.clock.Now()}}); err != nil {
		t.Fatal(err)
	}
	n, err := h.c.CollectGarbage(h.ctx, 100)
	if err != nil || n != 6 {
		t.Fatalf("collect: %d %v (want 5 deleted + 1 unknown node dropped)", n, err)
	}
	if d := h.stores[down].deletes(); d != 0 {
		t.Fatalf("%d deletes on a down node", d)
	}
	if g := h.garbage(); len(g) != 1 || garbageOn(h, down) != 1 {
		t.Fatalf("garbage left: %v", sortedKeys(g))
	}
}

// A dead node's backlog at the front of the queue (a node that died
// leaves all its shards there as garbage once repair replaced them) does
// not keep the other nodes' garbage from being collected, whatever the
// limit.
func TestCollectGarbageNotStalledByDownNodeBacklog(t *testing.T) {
	for _, state := range []cluster.State{cluster.Down, cluster.Out} {
		t.Run(state.String(), func(t *testing.T) {
			h := newHarness(t, 6, testConfig())
			dead := cluster.NodeID("n05")
			// 50 entries on the dead node, due long before anything else.
			var backlog []meta.Garbage
			early := h.clock.Now().Add(-time.Hour)
			for i := range 50 {
				backlog = append(backlog, meta.Garbage{Node: dead, ShardID: fmt.Sprintf("old-%02d", i), NotBefore: early})
			}
			if err := h.store.AddGarbage(h.ctx, backlog); err != nil {
				t.Fatal(err)
			}
			olds := overwritten(h, 2) // 2 garbage shards on every node, due later
			h.setState(dead, state)
			h.clock.Advance(time.Hour)
			if state == cluster.Out {
				// The dead out node was tried and put off.
				h.c.outTried(dead, h.clock.Now(), false)
			}

			n, err := h.c.CollectGarbage(h.ctx, 20)
			if err != nil || n != 10 {
				t.Fatalf("collect(20) behind a backlog of 50 on %s node: %d %v (want the 10 on live nodes)", state, n, err)
			}
			if g := h.garbage(); len(g) != 52 || garbageOn(h, dead) != 52 {
				t.Fatalf("garbage left: %d entries, %d on %s", len(g), garbageOn(h, dead), dead)
			}
			for _, m := range olds {
				for _, r := range m.Segments[0].Shards {
					if r.Node != dead && h.stored()[string(r.Node)+"/"+r.ID] {
						t.Fatalf("stale shard %s/%s still stored", r.Node, r.ID)
					}
				}
			}
			if d := h.stores[dead].deletes(); d != 0 {
				t.Fatalf("%d deletes tried on the %s node", d, state)
			}
		})
	}
}

// The limit is shared among the nodes: a limit smaller than the due
// garbage still reaches every node, and leftover share goes to the nodes
// that have more.
func TestCollectGarbageSharesLimitAmongNodes(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	// n00 has a backlog of 30 entries due first; every node gets 1 more.
	var gs []meta.Garbage
	early := h.clock.Now().Add(-time.Hour)
	for i := range 30 {
		gs = append(gs, meta.Garbage{Node: "n00", ShardID: fmt.Sprintf("b-%02d", i), NotBefore: early})
	}
	if err := h.store.AddGarbage(h.ctx, gs); err != nil {
		t.Fatal(err)
	}
	overwritten(h, 1)
	h.clock.Advance(time.Hour)

	n, err := h.c.CollectGarbage(h.ctx, 12)
	if err != nil || n != 12 {
		t.Fatalf("collect(12): %d %v", n, err)
	}
	for _, id := range h.ids {
		if id == "n00" {
			continue
		}
		if g := garbageOn(h, id); g != 0 {
			t.Fatalf("%s still has %d entries after a call with room for everyone's share", id, g)
		}
	}
	if g := garbageOn(h, "n00"); g != 31-7 {
		t.Fatalf("n00 has %d entries left, want %d (its share plus the others' leftover)", g, 31-7)
	}
	// Later calls drain the backlog.
	for range 3 {
		if _, err := h.c.CollectGarbage(h.ctx, 12); err != nil {
			t.Fatal(err)
		}
	}
	if g := h.garbage(); len(g) != 0 {
		t.Fatalf("garbage left: %v", sortedKeys(g))
	}
}

// A shard can be queued as garbage and then become referenced again: a
// commit whose reply was lost (the writer saw an ambiguous error, found the
// version not yet visible and queued its shards) lands afterwards. The
// collector must not delete a shard meta's index holds; it only drops the
// stale entry.
func TestCollectGarbageSparesReferencedShards(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(5, 9000)
	m := h.put("k", data)
	if err := h.c.DeleteObject(h.ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
	if len(h.garbage()) != 6 {
		t.Fatalf("garbage after delete = %v", sortedKeys(h.garbage()))
	}
	// The late commit: the same shards are referenced again while their
	// garbage entries stay queued.
	m2, err := h.store.Commit(h.ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	n, err := h.c.CollectGarbage(h.ctx, 100)
	if err != nil || n != 6 {
		t.Fatalf("collect = %d, %v; want 6 entries dropped", n, err)
	}
	if g := h.garbage(); len(g) != 0 {
		t.Fatalf("garbage left: %v", sortedKeys(g))
	}
	for ref := range liveRefs(m2) {
		if !h.stored()[ref] {
			t.Fatalf("referenced shard %s was deleted", ref)
		}
	}
	if got := h.mustRead(m2, 0, int64(len(data))); string(got) != string(data) {
		t.Fatal("object reads back wrong")
	}
}
