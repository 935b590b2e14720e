package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// ShardRebuild describes one lost shard for its new node to re-create
// itself (ShardRebuilder): the segment as the manifest has it — layout,
// size, and every shard with its node, id and summary — with the shards not
// to read (lost, or on nodes not to burden) unplaced (Node ""), the index
// to re-create, and the source nodes (ID, Addr) as the repairing
// coordinator's map has them.
type ShardRebuild struct {
	Segment meta.Segment
	Index   int
	Nodes   []cluster.Node
	// Copy: copy shard Index from its own node (Segment.Shards[Index])
	// as stored instead of rebuilding it from the others — a move.
	Copy bool
}

// ShardRebuilder is a shard store that can re-create a shard itself: it
// reads the sources of req from their nodes, verifies every record and
// each source's summary against req's, decodes, and stores the shard of
// req.Index under id, durably, before it returns the stored shard's Info
// (Info.Checksum is the summary of the records it stored, which it checked
// against the records it decoded). It keeps nothing under id when it
// fails, and it fails when any source could not be read in full and
// intact (the caller rebuilds around that source itself, and reports it).
// Not idempotent: a second call for an existing id fails.
type ShardRebuilder interface {
	RebuildShard(ctx context.Context, id string, req ShardRebuild) (storage.Info, error)
}

// ErrRebuildSources: a node-side rebuild found a source it could not read
// in full and intact, or too few sources to read; nothing was stored.
var ErrRebuildSources = errors.New("rebuild: a source shard could not be read intact")

// LocalRebuilder re-creates shards into a node's own store from its peers
// (the node side of ShardRebuilder). Safe for concurrent use; the caller
// bounds how many run at once.
type LocalRebuilder struct {
	c     *Coordinator // codecs, timed source reads; no meta
	local ShardStore
}

// NewLocalRebuilder returns a rebuilder that reads sources through nodes
// (with cfg's ReadTimeout per read; cfg's layout is unused, each request
// brings its own) and stores into local.
func NewLocalRebuilder(cfg Config, nodes Nodes, local ShardStore) (*LocalRebuilder, error) {
	if nodes == nil || local == nil {
		return nil, fmt.Errorf("%w: nil nodes or local store", ErrInvalidConfig)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, nodes: nodes, codecs: map[layout]*erasure.Codec{}, mem: newBudget(cfg.MemoryBudget)}
	return &LocalRebuilder{c: c, local: local}, nil
}

// RebuildShard implements ShardRebuilder for the node's own store.
func (r *LocalRebuilder) RebuildShard(ctx context.Context, id string, req ShardRebuild) (storage.Info, error) {
	seg := req.Segment
	op := fmt.Sprintf("rebuild shard %d as %s", req.Index, id)
	if req.Index < 0 || req.Index >= len(seg.Shards) || len(seg.Shards) != seg.K+seg.M {
		return storage.Info{}, fmt.Errorf("%s: %w: index %d of %d shards, k=%d m=%d", op, ErrInvalidConfig, req.Index, len(seg.Shards), seg.K, seg.M)
	}
	cd, err := r.c.codec(seg.K, seg.M, seg.BlockSize)
	if err != nil {
		return storage.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	if req.Copy {
		return r.copyShard(ctx, id, req, cd.ShardSize(seg.Size))
	}
	ns := make([]cluster.Node, 0, len(req.Nodes))
	for _, n := range req.Nodes {
		n.State = cluster.Up // the caller chose them as readable
		ns = append(ns, n)
	}
	mp, err := cluster.NewMap(0, ns)
	if err != nil {
		return storage.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	exclude := map[int]bool{req.Index: true}
	for i, ref := range seg.Shards {
		if ref.Node == "" {
			exclude[i] = true
		}
	}
	if len(seg.Shards)-len(exclude) < seg.K {
		return storage.Info{}, fmt.Errorf("%s: %w: %d sources, k=%d", op, ErrRebuildSources, len(seg.Shards)-len(exclude), seg.K)
	}

	// The rebuilt records go through a pipe into the local store, which
	// verifies and stores them durably; the summary of what was sent is
	// compared with the one the store computed.
	pr, pw := io.Pipe()
	v := erasure.NewVerifier(req.Index)
	var (
		wg   sync.WaitGroup
		info storage.Info
		perr error
	)
	wg.Go(func() {
		info, perr = r.local.Put(ctx, id, pr)
		if perr != nil {
			pr.CloseWithError(perr)
		} else {
			pr.CloseWithError(errPutReturned)
		}
	})
	open := r.c.opener(mp, seg, exclude)
	sc := newSummaryCheck(seg, cd, true)
	rep, err := cd.Rebuild(ctx, seg.Size, sc.opener(open), []int{req.Index}, []io.Writer{&summingWriter{w: pw, v: v}})
	sc.seen(rep)
	if err == nil {
		var frep erasure.DecodeReport
		frep, err = sc.finish(ctx, open, true)
		rep.Failures = append(rep.Failures, frep.Failures...)
	}
	if err == nil && len(rep.Failures) > 0 {
		// Read around a bad source: the result may be right, but the
		// coordinator must learn of the source; it rebuilds itself.
		err = fmt.Errorf("%w: shard %d: %v", ErrRebuildSources, rep.Failures[0].Shard, rep.Failures[0].Err)
	}
	if err != nil {
		pw.CloseWithError(err) // the store keeps nothing of a failed stream
		wg.Wait()
		if perr == nil { // it had all it wanted before the failure
			r.discard(ctx, id)
		}
		return storage.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	pw.Close()
	wg.Wait()
	if perr != nil {
		return storage.Info{}, fmt.Errorf("%s: store: %w", op, perr)
	}
	if want := cd.ShardSize(seg.Size); info.Size != want || info.Checksum != v.Summary() {
		r.discard(ctx, id)
		return storage.Info{}, fmt.Errorf("%s: %w: stored %d bytes with summary %016x, rebuilt %d with %016x", op, errSummaryMismatch, info.Size, info.Checksum, want, v.Summary())
	}
	return info, nil
}

// copyShard stores, under id, shard req.Index read as stored from its own
// node: the local store's Put verifies every record, and the copy must
// have the size and summary the manifest records. Nothing is kept when it
// fails.
func (r *LocalRebuilder) copyShard(ctx context.Context, id string, req ShardRebuild, want int64) (storage.Info, error) {
	src := req.Segment.Shards[req.Index]
	op := fmt.Sprintf("copy shard %d (%s from %s) as %s", req.Index, src.ID, src.Node, id)
	var from cluster.Node
	for _, n := range req.Nodes {
		if n.ID == src.Node {
			from = n
		}
	}
	if src.Node == "" || from.ID == "" {
		return storage.Info{}, fmt.Errorf("%s: %w: no source node", op, ErrRebuildSources)
	}
	from.State = cluster.Up
	st, err := r.c.nodes.Store(from)
	if err != nil {
		return storage.Info{}, fmt.Errorf("%s: %w", op, err)
	}
	rc, err := st.Get(ctx, src.ID, 0, -1)
	if err != nil {
		return storage.Info{}, fmt.Errorf("%s: %w: %w", op, ErrRebuildSources, err)
	}
	info, err := r.local.Put(ctx, id, rc)
	_ = rc.Close()
	if err != nil {
		return storage.Info{}, fmt.Errorf("%s: %w: %w", op, ErrRebuildSources, err)
	}
	if info.Size != want || info.Checksum != src.Checksum {
		r.discard(ctx, id)
		return storage.Info{}, fmt.Errorf("%s: %w: stored %d bytes with summary %016x, the manifest %d with %016x", op, errSummaryMismatch, info.Size, info.Checksum, want, src.Checksum)
	}
	return info, nil
}

// discard deletes a shard stored under id by a rebuild that then failed.
func (r *LocalRebuilder) discard(ctx context.Context, id string) {
	dctx, cancel := r.c.cleanupCtx(ctx)
	defer cancel()
	_ = r.local.Delete(dctx, id) // an orphan otherwise, which the inventory finds
}
