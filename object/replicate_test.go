package object

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// replicaConfig is testConfig with segments up to 16 KiB stored as copies.
func replicaConfig() Config {
	cfg := testConfig()
	cfg.ReplicateMax = 16 << 10
	return cfg
}

func (h *harness) resetCounts() {
	for _, s := range h.stores {
		s.mu.Lock()
		s.puts, s.gets = 0, 0
		s.mu.Unlock()
	}
}

// counts returns the Puts and Gets the stores saw since resetCounts.
func (h *harness) counts() (puts, gets int) {
	for _, s := range h.stores {
		s.mu.Lock()
		puts += s.puts
		gets += s.gets
		s.mu.Unlock()
	}
	return puts, gets
}

func TestSchemeChoice(t *testing.T) {
	for _, c := range []struct {
		cfg        Config
		size       int64
		k, m, q    int
		replicated bool
	}{
		{Config{K: 4, M: 2, WriteQuorum: 5, ReplicateMax: 100}, 100, 1, 2, 2, true},
		{Config{K: 4, M: 2, WriteQuorum: 5, ReplicateMax: 100}, 0, 1, 2, 2, true},
		{Config{K: 4, M: 2, WriteQuorum: 5, ReplicateMax: 100}, 101, 4, 2, 5, false},
		{Config{K: 4, M: 2, WriteQuorum: 5, ReplicateMax: 100}, -1, 4, 2, 5, false}, // size unknown
		{Config{K: 4, M: 2, WriteQuorum: 6, ReplicateMax: 100}, 10, 1, 2, 3, true},  // every copy, as every shard
		{Config{K: 8, M: 3, WriteQuorum: 9, ReplicateMax: 100}, 10, 1, 3, 2, true},
		{Config{K: 4, M: 0, WriteQuorum: 4, ReplicateMax: 100}, 10, 4, 0, 4, false}, // no parity: no copies
		{Config{K: 4, M: 2, WriteQuorum: 5, ReplicateMax: -1}, 10, 4, 2, 5, false},
	} {
		k, m, q := c.cfg.scheme(c.size)
		if k != c.k || m != c.m || q != c.q {
			t.Errorf("%+v scheme(%d) = %d+%d quorum %d, want %d+%d quorum %d", c.cfg, c.size, k, m, q, c.k, c.m, c.q)
		}
	}
}

// TestReplicatedRoundTrip: a small object is stored as M+1 copies on nodes
// of distinct zones, reads back whole and in ranges from one node, and the
// first byte past ReplicateMax is coded K+M again.
func TestReplicatedRoundTrip(t *testing.T) {
	h := newHarness(t, 6, replicaConfig())
	for _, size := range []int{0, 1, 4095, 4096, 4097, 9000, 16 << 10, 16<<10 + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := pattern(uint64(size)+100, size)
			m := h.put(fmt.Sprintf("r-%d", size), data)
			if m.ETag != md5hex(data) {
				t.Fatalf("etag %s", m.ETag)
			}
			seg := m.Segments[0]
			if size > 16<<10 {
				if seg.K != 4 || len(seg.Shards) != 6 {
					t.Fatalf("%d bytes stored %d+%d, want 4+2", size, seg.K, seg.M)
				}
				return
			}
			if seg.K != 1 || seg.M != 2 || len(seg.Shards) != 3 {
				t.Fatalf("%d bytes stored %d+%d with %d shards, want 3 copies", size, seg.K, seg.M, len(seg.Shards))
			}
			zones := map[string]bool{}
			for i, r := range seg.Shards {
				if r.Node == "" || r.Index != i {
					t.Fatalf("shard %d: %+v", i, r)
				}
				zones[fmt.Sprintf("z%d", int(r.Node[2]-'0')%3)] = true
			}
			if len(zones) != 3 {
				t.Fatalf("copies in zones %v, want three distinct", zones)
			}
			h.resetCounts()
			if got := h.mustRead(m, 0, m.Size); !bytes.Equal(got, data) {
				t.Fatal("read back different bytes")
			}
			if _, gets := h.counts(); size > 0 && gets != 1 {
				t.Fatalf("a GET of %d bytes made %d shard reads, want 1", size, gets)
			}
			if size > 10 {
				if got := h.mustRead(m, 3, int64(size-7)); !bytes.Equal(got, data[3:size-4]) {
					t.Fatal("ranged read back different bytes")
				}
			}
		})
	}
}

// TestReplicatedReadFallsBackToCopies: with the first copy's node failing,
// a GET reads the next; with all three failing it fails.
func TestReplicatedReadFallsBackToCopies(t *testing.T) {
	h := newHarness(t, 6, fastDeadlines(replicaConfig()))
	data := pattern(7, 5000)
	m := h.put("f", data)
	refs := m.Segments[0].Shards
	for i, f := range []faults{{getErr: true}, {slowGet: true}} {
		h.stores[refs[i].Node].set(f)
		if got := h.mustRead(m, 0, m.Size); !bytes.Equal(got, data) {
			t.Fatalf("with %d copies failing: wrong bytes", i+1)
		}
	}
	h.stores[refs[2].Node].set(faults{getErr: true})
	if _, err := h.read(m, 0, m.Size); err == nil {
		t.Fatal("read with every copy failing succeeded")
	}
}

// TestReplicatedWriteQuorum: with the default quorum (K+1 = 5 of 6) a small
// PUT needs 2 of its 3 copies; one failing copy makes a degraded commit
// queued for repair, two fail the PUT and leave nothing visible.
func TestReplicatedWriteQuorum(t *testing.T) {
	h := newHarness(t, 3, fastDeadlines(replicaConfig()))
	data := pattern(9, 3000)
	h.stores["n01"].set(faults{putErr: true})
	m := h.put("one-down", data)
	placed := 0
	for _, r := range m.Segments[0].Shards {
		if r.Node != "" {
			placed++
		}
	}
	if placed != 2 {
		t.Fatalf("%d copies recorded, want 2", placed)
	}
	if q, err := h.store.Degraded(h.ctx, 10); err != nil || len(q) != 1 || q[0].Key != "one-down" {
		t.Fatalf("repair queue: %v %+v", err, q)
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
		t.Fatal("degraded object reads back wrong")
	}
	h.stores["n02"].set(faults{putErr: true})
	_, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "two-down", Body: bytes.NewReader(data), Size: int64(len(data))})
	if !errors.Is(err, ErrQuorum) {
		t.Fatalf("PUT with 2 of 3 copies failing: %v, want ErrQuorum", err)
	}
	if _, err := h.c.HeadObject(h.ctx, testBucket, "two-down"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("object visible after quorum failure: %v", err)
	}
}

// TestReplicatedRepair: a lost copy is re-created on another node from a
// surviving one.
func TestReplicatedRepair(t *testing.T) {
	h := newHarness(t, 6, replicaConfig())
	data := pattern(11, 12345)
	m := h.put("rep", data)
	lost := m.Segments[0].Shards[0].Node
	h.setState(lost, cluster.Out)
	res, err := h.c.RepairObject(h.ctx, testBucket, "rep", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "rep")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Segments[0].Shards {
		if r.Node == "" || r.Node == lost {
			t.Fatalf("after repair %+v: shard %+v (result %+v)", got.Segments[0].Shards, r, res)
		}
	}
	// The new copy alone serves the object.
	for _, r := range got.Segments[0].Shards[1:] {
		h.stores[r.Node].set(faults{getErr: true})
	}
	if !bytes.Equal(h.mustRead(got, 0, got.Size), data) {
		t.Fatal("the re-created copy reads back wrong")
	}
}
