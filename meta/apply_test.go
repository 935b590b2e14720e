package meta_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/testclock"
	"github.com/shale-store/shale/meta"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func manifestFor(bucket, key, tag string) meta.Manifest {
	seg := meta.Segment{Number: 1, Size: 200, K: 2, M: 1, BlockSize: 4096}
	for i := 0; i < 3; i++ {
		seg.Shards = append(seg.Shards, meta.ShardRef{Index: i, Node: cluster.NodeID("n" + string(rune('0'+i))), ID: tag + "-" + string(rune('0'+i)), Size: 100})
	}
	return meta.Manifest{Bucket: bucket, Key: key, VersionID: tag, Size: 200, ETag: tag, Segments: []meta.Segment{seg}}
}

// commands is a stamped log: what a leader would have proposed.
func commands() []meta.Command {
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	m1, m2 := manifestFor("b", "k", "one"), manifestFor("b", "k", "two")
	return []meta.Command{
		{Op: meta.OpCreateBucket, Time: at(1), Bucket: "b"},
		{Op: meta.OpHeartbeat, Time: at(2), Report: &meta.NodeReport{ID: "n0", Addr: "a0"}},
		{Op: meta.OpCommit, Time: at(3), Manifest: &m1, Request: "r1"},
		{Op: meta.OpCommit, Time: at(4), Manifest: &m2},
		{Op: meta.OpCreateUpload, Time: at(5), Upload: &meta.Upload{ID: "u1", Bucket: "b", Key: "mp"}},
		{Op: meta.OpCreateBucket, Time: at(6), Bucket: "b"}, // rejected: exists
		{Op: meta.OpTick, Time: at(60)},
		{Op: meta.OpAddGarbage, Time: at(61), Garbage: []meta.Garbage{{Node: "n9", ShardID: "x"}}},
	}
}

func hashOf(t *testing.T, s *meta.Store) []byte {
	t.Helper()
	h, err := s.KeyspaceHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Two replicas applying the same log end with the same keyspace and the
// same in-memory state, whatever their own clocks say.
func TestApplyIsDeterministic(t *testing.T) {
	clkA, clkB := testclock.New(t0.Add(time.Hour)), testclock.New(t0.Add(48*time.Hour))
	a := openT(t, meta.Config{FS: vfs.NewMem(), Now: clkA.Now, Replica: true})
	b := openT(t, meta.Config{FS: vfs.NewMem(), Now: clkB.Now, Replica: true})
	for i, c := range commands() {
		ra, errA := a.Apply(uint64(i+1), c)
		rb, errB := b.Apply(uint64(i+1), c)
		if errA != nil || errB != nil {
			t.Fatalf("apply %d: %v / %v", i+1, errA, errB)
		}
		if ra.Code != rb.Code {
			t.Fatalf("apply %d: results differ: %+v / %+v", i+1, ra, rb)
		}
	}
	if !bytes.Equal(hashOf(t, a), hashOf(t, b)) {
		t.Fatal("replicas applying one log differ")
	}
	ma, _ := a.Map(ctx)
	mb, _ := b.Map(ctx)
	if ma.Epoch() != mb.Epoch() || len(ma.Nodes()) != 1 || ma.Nodes()[0].State != mb.Nodes()[0].State || ma.Nodes()[0].State != cluster.Down {
		t.Fatalf("maps differ: %+v / %+v", ma.Nodes(), mb.Nodes())
	}
	if a.AppliedIndex() != uint64(len(commands())) {
		t.Fatalf("applied index %d", a.AppliedIndex())
	}
}

// An entry at or below the applied index is skipped, also after a restart.
func TestApplySkipsApplied(t *testing.T) {
	dir := t.TempDir()
	s, err := meta.Open(meta.Config{Dir: dir, Replica: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := commands()
	for i, c := range cs[:4] {
		if _, err := s.Apply(uint64(i+1), c); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := s.Get(ctx, "b", "k")
	// Replaying index 3 (commit "one") must not bring "one" back.
	if _, err := s.Apply(3, cs[2]); err != nil {
		t.Fatal(err)
	}
	before := hashOf(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, meta.Config{Dir: dir, Replica: true})
	if s.AppliedIndex() != 4 {
		t.Fatalf("applied index after reopen %d, want 4", s.AppliedIndex())
	}
	for i, c := range cs[:4] {
		if _, err := s.Apply(uint64(i+1), c); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(before, hashOf(t, s)) {
		t.Fatal("replaying applied entries changed the store")
	}
	got, _ := s.Get(ctx, "b", "k")
	if got.VersionID != "two" || got.Generation != m.Generation {
		t.Fatalf("after replay: %s gen %d, want two gen %d", got.VersionID, got.Generation, m.Generation)
	}
}

// A mutation retried with the same request id returns the first result and
// is applied once.
func TestRequestIDAppliesOnce(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	rctx := meta.WithRequestID(ctx, "req-1")
	first, err := s.Commit(rctx, manifestFor("b", "k", "one"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Commit(rctx, manifestFor("b", "k", "one"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Generation != first.Generation {
		t.Fatalf("retry committed again: generation %d then %d", first.Generation, again.Generation)
	}
	if gs, _ := s.ListGarbage(ctx, 100); len(gs) != 0 {
		t.Fatalf("retry replaced the object's shards: garbage %v", gs)
	}
	// A rejection is remembered too.
	uctx := meta.WithRequestID(ctx, "req-2")
	u, err := s.CreateUpload(uctx, meta.Upload{Bucket: "b", Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	u2, err := s.CreateUpload(uctx, meta.Upload{Bucket: "b", Key: "mp"})
	if err != nil || u2.ID != u.ID {
		t.Fatalf("retried CreateUpload: %v, id %s then %s", err, u.ID, u2.ID)
	}
	if r, _ := s.ListUploads(ctx, "b", meta.UploadListOptions{}); len(r.Uploads) != 1 {
		t.Fatalf("%d uploads after a retried create", len(r.Uploads))
	}
}

// A snapshot restored on another store gives the same keyspace, applied
// index and membership.
func TestCheckpointRestore(t *testing.T) {
	a := openT(t, meta.Config{Dir: t.TempDir(), Replica: true})
	for i, c := range commands() {
		if _, err := a.Apply(uint64(i+1), c); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := a.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	var buf bytes.Buffer
	if _, err := cp.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	b := openT(t, meta.Config{Dir: t.TempDir(), Replica: true})
	if _, err := b.Apply(1, meta.Command{Op: meta.OpCreateBucket, Time: t0, Bucket: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hashOf(t, a), hashOf(t, b)) {
		t.Fatal("restored store differs")
	}
	if b.AppliedIndex() != cp.Index || cp.Index != uint64(len(commands())) {
		t.Fatalf("applied index %d, checkpoint %d", b.AppliedIndex(), cp.Index)
	}
	mb, _ := b.Map(ctx)
	if len(mb.Nodes()) != 1 {
		t.Fatalf("restored map: %+v", mb.Nodes())
	}
	if err := b.Restore(bytes.NewReader([]byte("garbage"))); err == nil {
		t.Fatal("restore of a non-snapshot succeeded")
	}
	if !bytes.Equal(hashOf(t, a), hashOf(t, b)) {
		t.Fatal("a failed restore changed the store")
	}
}

// Request records are kept for RequestRetention, then forgotten: a retry
// after that long is a new request.
func TestRequestRecordsAreBounded(t *testing.T) {
	clk := testclock.New(t0)
	s := openT(t, meta.Config{FS: vfs.NewMem(), Now: clk.Now, RequestRetention: time.Minute})
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	r1 := meta.WithRequestID(ctx, "r1")
	first, err := s.Commit(r1, manifestFor("b", "k", "one"))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Second)
	if m, _ := s.Commit(r1, manifestFor("b", "k", "one")); m.Generation != first.Generation {
		t.Fatalf("retry within the retention applied again: generation %d, first %d", m.Generation, first.Generation)
	}
	clk.Advance(time.Minute)
	// Any later request prunes what is older than the retention.
	if _, err := s.Commit(meta.WithRequestID(ctx, "r2"), manifestFor("b", "other", "x")); err != nil {
		t.Fatal(err)
	}
	m, err := s.Commit(r1, manifestFor("b", "k", "one"))
	if err != nil || m.Generation <= first.Generation {
		t.Fatalf("retry after the retention: %v, generation %d (first %d): still remembered", err, m.Generation, first.Generation)
	}
}

// TestReplicasPruneRequestRecords: a replica forgets request records past
// the retention at its next log index that is a multiple of 16, whatever
// command lands there (here a heartbeat) — and a retry before that still gets its first
// result.
func TestReplicasPruneRequestRecords(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem(), RequestRetention: time.Minute, Replica: true})
	if _, err := s.Apply(1, meta.Command{Op: meta.OpCreateBucket, Time: t0, Bucket: "b"}); err != nil {
		t.Fatal(err)
	}
	m := manifestFor("b", "k", "one")
	first, err := s.Apply(2, meta.Command{Op: meta.OpCommit, Time: t0, Manifest: &m, Request: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(2 * time.Minute)
	idx := uint64(3)
	for ; idx%16 != 15; idx++ { // requests up to index 15: no prune yet
		o := manifestFor("b", fmt.Sprintf("o%d", idx), "x")
		if _, err := s.Apply(idx, meta.Command{Op: meta.OpCommit, Time: later, Manifest: &o, Request: fmt.Sprintf("q%d", idx)}); err != nil {
			t.Fatal(err)
		}
	}
	retry := func(i uint64) meta.Result {
		r, err := s.Apply(i, meta.Command{Op: meta.OpCommit, Time: later, Manifest: &m, Request: "r1"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := retry(idx); r.Manifest.Generation != first.Manifest.Generation {
		t.Fatalf("retry at index %d applied again (generation %d, first %d): pruned off schedule", idx, r.Manifest.Generation, first.Manifest.Generation)
	}
	// Index 16 prunes r1 (older than the retention), though the command
	// there carries no request id of its own.
	if _, err := s.Apply(16, meta.Command{Op: meta.OpHeartbeat, Time: later, Report: &meta.NodeReport{ID: "n0", Addr: "a0"}}); err != nil {
		t.Fatal(err)
	}
	if r := retry(17); r.Manifest.Generation == first.Manifest.Generation {
		t.Fatal("r1 still remembered after index 16: replicas never prune")
	}
}
