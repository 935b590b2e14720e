package object

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zeebo/xxh3"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// substitute returns a copy of the shard stream with the block of record
// `which` (-1: every record) altered and its XXH3 recomputed: every record
// still passes its own check, as a node that rewrites what it stores could
// arrange, but the stream is not the one that was sent.
func substitute(t testing.TB, stream []byte, which int) []byte {
	t.Helper()
	out := append([]byte(nil), stream...)
	for pos, i := 0, 0; pos < len(out); i++ {
		if len(out)-pos < erasure.RecordHeaderSize {
			t.Fatalf("stream ends inside a header at %d", pos)
		}
		n := int(binary.LittleEndian.Uint32(out[pos+12:]))
		rec := out[pos : pos+erasure.RecordHeaderSize+n]
		if (which < 0 || i == which) && n > 0 {
			rec[erasure.RecordHeaderSize] ^= 0xff
			binary.LittleEndian.PutUint64(rec[0:], xxh3.Hash(rec[8:]))
		}
		pos += len(rec)
	}
	if bytes.Equal(out, stream) {
		t.Fatal("nothing substituted")
	}
	return out
}

// substitutingNodes hands out stores that, for shards whose id ends in
// suffix, store substituted records instead of those sent — and answer
// honestly about what they stored.
type substitutingNodes struct {
	t      testing.TB
	inner  Nodes
	suffix string
}

func (n substitutingNodes) Store(node cluster.Node) (ShardStore, error) {
	st, err := n.inner.Store(node)
	if err != nil {
		return nil, err
	}
	return substitutingStore{ShardStore: st, n: n}, nil
}

type substitutingStore struct {
	ShardStore
	n substitutingNodes
}

func (s substitutingStore) Put(ctx context.Context, id string, r io.Reader) (storage.Info, error) {
	if !strings.HasSuffix(id, s.n.suffix) {
		return s.ShardStore.Put(ctx, id, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return storage.Info{}, err
	}
	return s.ShardStore.Put(ctx, id, bytes.NewReader(substitute(s.n.t, b, -1)))
}

// A node that stores records other than those sent (each with a valid
// XXH3) is caught when it acknowledges: its shard counts as failed, is
// queued as garbage, the version commits degraded without it, and reads
// return the original bytes.
func TestPutSubstitutedShardRefusedOnAck(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	h.c.nodes = substitutingNodes{t: t, inner: h, suffix: ".1.0"}
	data := pattern(21, 3*4*4096)
	m := h.put("sub", data)
	ref := m.Segments[0].Shards[0]
	if ref.Node != "" {
		t.Fatalf("shard 0 with substituted records committed: %+v", ref)
	}
	var holder cluster.NodeID
	for _, id := range h.ids {
		for _, s := range h.stores[id].ids(t) {
			if s == shardID(m.VersionID, 1, 0) {
				holder = id
			}
		}
	}
	if holder == "" || !h.garbage()[string(holder)+"/"+shardID(m.VersionID, 1, 0)] {
		t.Fatalf("the substituted shard (on %q) is not queued as garbage: %v", holder, sortedKeys(h.garbage()))
	}
	if q, _ := h.store.Degraded(h.ctx, 10); len(q) != 1 {
		t.Fatalf("degraded version not queued for repair: %+v", q)
	}
	if !bytes.Equal(h.mustRead(m, 0, m.Size), data) {
		t.Fatal("read differs")
	}
}

// replaceShard overwrites a stored shard with a substituted copy.
func replaceShard(t *testing.T, h *harness, ref meta.ShardRef, which int) {
	t.Helper()
	rc, err := h.stores[ref.Node].mem.Get(h.ctx, ref.ID, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.stores[ref.Node].mem.Put(h.ctx, ref.ID, bytes.NewReader(substitute(t, b, which))); err != nil {
		t.Fatal(err)
	}
}

func corruptReports(t *testing.T, h *harness) map[string]string {
	t.Helper()
	bad, err := h.store.BadReports(h.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range bad {
		got[b.ShardID] = b.Reason
	}
	return got
}

// A data shard whose records were substituted after it was stored (valid
// XXH3 each) no longer matches the manifest's summary. Found before any of
// its records were used (a one-stripe shard), it is read around with parity
// and reported corrupt.
func TestReadSubstitutedShardReadAround(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(22, 4*4096-100) // one stripe
	m := h.put("one", data)
	ref := m.Segments[0].Shards[0]
	replaceShard(t, h, ref, 0)
	got, err := h.read(m, 0, m.Size)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes, equal %v, err %v", len(got), bytes.Equal(got, data), err)
	}
	if r := corruptReports(t, h); r[ref.ID] != "corrupt" {
		t.Fatalf("reports %v; want %s corrupt", r, ref.ID)
	}
}

// Found only after records of the shard were used (a shard of several
// stripes whose first record was substituted), the read fails instead of
// passing the substituted bytes off as the object, and the shard is
// reported corrupt, so repair rebuilds it.
func TestReadSubstitutedShardFailsRead(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	data := pattern(23, 3*4*4096)
	m := h.put("three", data)
	ref := m.Segments[0].Shards[0]
	replaceShard(t, h, ref, 0)
	if _, err := h.read(m, 0, m.Size); !errors.Is(err, ErrUnreadable) || !errors.Is(err, errSummaryMismatch) {
		t.Fatalf("read of a substituted shard: %v, want ErrUnreadable (summary mismatch)", err)
	}
	if r := corruptReports(t, h); r[ref.ID] != "corrupt" {
		t.Fatalf("reports %v; want %s corrupt", r, ref.ID)
	}
	// Ranged reads (not whole shards) cannot check the summary; the repair
	// of the reported shard is what brings the object back.
}

// A repair target that stores substituted records is caught on its ack as a
// PUT's is: the shard is not committed.
func TestRepairSubstitutingTargetRefused(t *testing.T) {
	h := newHarness(t, 8, testConfig())
	data := pattern(24, 3*4*4096+11)
	m := h.put("r", data)
	lost := shardNode(m, 1)
	h.setState(lost, cluster.Out)
	h.c.nodes = repairSubstituting{substitutingNodes{t: t, inner: h}}
	res, err := h.c.RepairObject(h.ctx, testBucket, "r", nil, nil)
	if err == nil || res.Rebuilt != 0 || res.Remaining == 0 {
		t.Fatalf("repair onto substituting nodes: %+v, %v; want nothing rebuilt", res, err)
	}
	got, err := h.c.HeadObject(h.ctx, testBucket, "r")
	if err != nil {
		t.Fatal(err)
	}
	if got.Segments[0].Shards[1] != m.Segments[0].Shards[1] {
		t.Fatalf("a substituted shard was committed: %+v", got.Segments[0].Shards[1])
	}
}

// repairSubstituting substitutes every shard written by repair (ids with an
// ".r" suffix part).
type repairSubstituting struct{ substitutingNodes }

func (n repairSubstituting) Store(node cluster.Node) (ShardStore, error) {
	st, err := n.inner.Store(node)
	if err != nil {
		return nil, err
	}
	return repairSubstitutingStore{st, n.t}, nil
}

type repairSubstitutingStore struct {
	ShardStore
	t testing.TB
}

func (s repairSubstitutingStore) Put(ctx context.Context, id string, r io.Reader) (storage.Info, error) {
	if !strings.Contains(id, ".r") {
		return s.ShardStore.Put(ctx, id, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return storage.Info{}, err
	}
	return s.ShardStore.Put(ctx, id, bytes.NewReader(substitute(s.t, b, -1)))
}

// A source shard whose records were substituted, found out only at its end
// (after its records fed the rebuild), fails that rebuild instead of
// committing shards made from it; it is reported, and the next repair
// rebuilds both around it.
func TestRepairFromSubstitutedSourceRefused(t *testing.T) {
	h := newHarness(t, 12, testConfig())
	data := pattern(25, 3*4*4096+11)
	m := h.put("s", data)
	replaceShard(t, h, m.Segments[0].Shards[0], 0)
	h.setState(shardNode(m, 1), cluster.Out)
	if res, err := h.c.RepairObject(h.ctx, testBucket, "s", nil, nil); err == nil || res.Rebuilt != 0 {
		t.Fatalf("repair from a substituted source: %+v, %v; want it refused", res, err)
	}
	bad, err := h.store.BadReports(h.ctx, 10)
	if err != nil || len(bad) != 1 || bad[0].ShardID != m.Segments[0].Shards[0].ID {
		t.Fatalf("reports %+v, %v; want shard 0", bad, err)
	}
	res, err := h.c.RepairObject(h.ctx, testBucket, "s", bad, nil)
	if err != nil || res.Rebuilt != 2 || res.Remaining != 0 {
		t.Fatalf("second repair: %+v, %v", res, err)
	}
	got, _ := h.c.HeadObject(h.ctx, testBucket, "s")
	checkWhole(t, h, got, data)
}
