package object

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// ShardMove is one shard the rebalancer moves: shard Index of segment
// Segment (its position in the manifest), from the node that holds it to
// To.
type ShardMove struct {
	Segment, Index int
	From, To       cluster.NodeID
}

// MoveResult is what MoveShards did. It is meaningful even when MoveShards
// also returns an error.
type MoveResult struct {
	// Moved counts the shards committed at their new node.
	Moved int `json:"moved"`
	// Bytes counts the shard bytes copied to new nodes (also when the
	// commit then lost to a conflict).
	Bytes int64 `json:"bytes"`
	// Conflict: the object was overwritten, deleted or repaired since the
	// generation the moves were planned on; nothing was committed, the
	// copies became garbage and the newer version is untouched.
	Conflict bool `json:"conflict"`
	// Generation is the manifest's generation after the moves (the one
	// examined when nothing was committed).
	Generation uint64 `json:"generation"`
}

// ErrMoveRefused is a move MoveShards does not make: its source is not the
// node the manifest names, or its destination cannot take it (not Up, or
// it holds another shard of the segment already). The rebalancer plans
// again on the next pass.
var ErrMoveRefused = errors.New("move refused")

// MoveShards moves shards of generation gen of bucket/key to other nodes,
// never lowering the object's redundancy: each shard is copied from its
// node as stored (records and all) into its new node's Put, which verifies
// every record as it stores; the copy must match the manifest's size and
// checksum of checksums. Only then are the copies committed, all at once,
// with a compare-and-swap on gen (meta.Service.UpdateShards): the old
// shards become garbage in the same commit, after the garbage grace that
// lets readers of the old placement finish. Until the commit the old shards
// stay where they were and are what every read uses. An overwrite, delete
// or repair that lands meanwhile wins: the result says Conflict (err nil)
// and the copies become garbage. A move that fails (source unreadable, a
// bad record, destination down) keeps its whole segment where it is (a
// segment's moves commit together: one alone could crowd a failure
// domain) and the segment's copies are queued as garbage; other segments
// still commit, and the error says which move failed. A copy refused as corrupt is reported to meta as a bad
// shard, so repair re-creates it.
func (c *Coordinator) MoveShards(ctx context.Context, bucket, key string, gen uint64, moves []ShardMove) (MoveResult, error) {
	man, err := c.md.Get(ctx, bucket, key)
	if err != nil {
		return MoveResult{}, fmt.Errorf("move shards of %s/%s: %w", bucket, key, err)
	}
	res := MoveResult{Generation: man.Generation}
	if man.Generation != gen {
		res.Conflict = true
		return res, nil
	}
	mp, err := c.clusterMap(ctx)
	if err != nil {
		return res, fmt.Errorf("move shards of %s/%s: %w", bucket, key, err)
	}
	var (
		errs    []error
		copies  []meta.Garbage // every copy attempted: garbage unless committed
		updates = map[int][]meta.ShardRef{}
		order   []int // segments in updates, in first-move order
	)
	// A segment's copies go to different nodes (its shards are on
	// distinct nodes), so up to maxMoveCopies run at once: an object's
	// moves take about as long as its slowest copy.
	refs := make([]meta.ShardRef, len(moves))
	cerrs := make([]error, len(moves))
	attempted := make([][]meta.Garbage, len(moves))
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxMoveCopies)
	for j, mv := range moves {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			refs[j], cerrs[j] = c.copyShard(ctx, mp, man, mv, &attempted[j])
		})
	}
	wg.Wait()
	// A segment's moves commit together or not at all: each one alone may
	// put a shard into a zone (rack, host) whose shard was to leave by
	// another move, and the segment would no longer survive the loss of
	// that domain.
	failedSeg := map[int]bool{}
	for j, mv := range moves {
		if cerrs[j] != nil {
			failedSeg[mv.Segment] = true
		}
	}
	for j, mv := range moves {
		copies = append(copies, attempted[j]...)
		if cerrs[j] != nil {
			errs = append(errs, cerrs[j])
			continue
		}
		if failedSeg[mv.Segment] {
			continue // its copy is garbage below; the next round moves the segment again
		}
		res.Bytes += refs[j].Size
		if _, ok := updates[mv.Segment]; !ok {
			order = append(order, mv.Segment)
		}
		updates[mv.Segment] = append(updates[mv.Segment], refs[j])
	}
	if len(order) == 0 {
		return res, errJoin(append(errs, c.queueGarbage(ctx, copies)))
	}
	upds := make([]meta.ShardUpdate, 0, len(order))
	for _, si := range order {
		upds = append(upds, meta.ShardUpdate{Segment: si, Shards: updates[si]})
	}
	got, committed, unknown, err := c.commitShards(ctx, bucket, key, gen, upds)
	if unknown {
		return res, errJoin(append(errs, fmt.Errorf("move shards of %s/%s: commit (outcome unknown, copies left in place): %w", bucket, key, err)))
	}
	if !committed {
		gerr := c.queueGarbage(ctx, copies)
		if errors.Is(err, meta.ErrConflict) || errors.Is(err, meta.ErrNoSuchKey) {
			res.Conflict = true
			return res, errJoin(append(errs, gerr))
		}
		return res, errJoin(append(errs, fmt.Errorf("move shards of %s/%s: commit: %w", bucket, key, err), gerr))
	}
	res.Generation = got.Generation
	for _, u := range upds {
		res.Moved += len(u.Shards)
	}
	// Copies of moves that failed are garbage; the committed ones are not.
	var failed []meta.Garbage
	for _, g := range copies {
		if !committedCopy(upds, g) {
			failed = append(failed, g)
		}
	}
	return res, errJoin(append(errs, c.queueGarbage(ctx, failed)))
}

// maxMoveCopies bounds the copies one MoveShards runs at once (an object
// of many segments may have many moves).
const maxMoveCopies = 4

// committedCopy reports whether upds holds the copy g.
func committedCopy(upds []meta.ShardUpdate, g meta.Garbage) bool {
	for _, u := range upds {
		for _, r := range u.Shards {
			if r.Node == g.Node && r.ID == g.ShardID {
				return true
			}
		}
	}
	return false
}

// copyShard copies the shard of one move to its destination under a new
// id and returns its new ref once it is durable there and matches the
// manifest's. Every copy it starts is added to copies (the caller decides
// whether it is garbage).
func (c *Coordinator) copyShard(ctx context.Context, mp *cluster.Map, man meta.Manifest, mv ShardMove, copies *[]meta.Garbage) (meta.ShardRef, error) {
	op := fmt.Sprintf("move %s/%s segment %d shard %d from %s to %s", man.Bucket, man.Key, mv.Segment, mv.Index, mv.From, mv.To)
	if mv.Segment < 0 || mv.Segment >= len(man.Segments) || mv.Index < 0 || mv.Index >= len(man.Segments[mv.Segment].Shards) {
		return meta.ShardRef{}, fmt.Errorf("%s: %w: no such shard", op, ErrMoveRefused)
	}
	seg := man.Segments[mv.Segment]
	ref := seg.Shards[mv.Index]
	if ref.Node == "" || ref.Node != mv.From {
		return meta.ShardRef{}, fmt.Errorf("%s: %w: the shard is on %q", op, ErrMoveRefused, ref.Node)
	}
	for _, r := range seg.Shards {
		if r.Node == mv.To {
			return meta.ShardRef{}, fmt.Errorf("%s: %w: %s holds shard %d of the segment", op, ErrMoveRefused, mv.To, r.Index)
		}
	}
	src, ok := mp.Node(mv.From)
	if !ok || !src.State.Readable() {
		return meta.ShardRef{}, fmt.Errorf("%s: %w: source not readable", op, ErrMoveRefused)
	}
	dst, ok := mp.Node(mv.To)
	if !ok || !dst.State.Placeable() {
		return meta.ShardRef{}, fmt.Errorf("%s: %w: destination not up", op, ErrMoveRefused)
	}
	from, err := c.nodes.Store(src)
	if err != nil {
		return meta.ShardRef{}, fmt.Errorf("%s: %w", op, err)
	}
	to, err := c.nodes.Store(dst)
	if err != nil {
		return meta.ShardRef{}, fmt.Errorf("%s: %w", op, err)
	}
	suffix, err := c.shortID()
	if err != nil {
		return meta.ShardRef{}, err
	}
	id := fmt.Sprintf("%s.%d.%d.m%s", man.VersionID, seg.Number, ref.Index, suffix)

	// Each attempt is bounded like a node's rebuild of the shard: a
	// stalled copy is given up (the relay gets its own time), and planned
	// again on a later pass.
	*copies = append(*copies, meta.Garbage{Node: dst.ID, ShardID: id})
	if rb, ok := to.(ShardRebuilder); ok {
		// The destination pulls the shard from its source itself: no byte
		// of it passes through here. Anything but a clean success is
		// tried again through here, under another id (this one is garbage
		// unless committed: the caller queues every copy attempted).
		seg1 := seg
		seg1.Shards = make([]meta.ShardRef, len(seg.Shards))
		seg1.Shards[mv.Index] = ref
		nctx, cancel := context.WithTimeout(ctx, nodeRebuildTime(ref.Size))
		info, err := rb.RebuildShard(nctx, id, ShardRebuild{Segment: seg1, Index: mv.Index, Nodes: []cluster.Node{src}, Copy: true})
		cancel()
		if err == nil && info.Size == ref.Size && info.Checksum == ref.Checksum {
			return meta.ShardRef{Index: ref.Index, Node: dst.ID, ID: id, Size: info.Size, Checksum: info.Checksum}, nil
		}
		if suffix, err = c.shortID(); err != nil {
			return meta.ShardRef{}, err
		}
		id = fmt.Sprintf("%s.%d.%d.m%s", man.VersionID, seg.Number, ref.Index, suffix)
		*copies = append(*copies, meta.Garbage{Node: dst.ID, ShardID: id})
	}
	cctx, cancel := context.WithTimeout(ctx, nodeRebuildTime(ref.Size))
	defer cancel()
	rc, err := from.Get(cctx, ref.ID, 0, -1)
	if err != nil {
		c.reportCorrupt(ctx, man, mv.Segment, ref, err)
		return meta.ShardRef{}, fmt.Errorf("%s: read: %w", op, err)
	}
	info, err := to.Put(cctx, id, rc)
	_ = rc.Close()
	if err != nil {
		c.reportCorrupt(ctx, man, mv.Segment, ref, err)
		return meta.ShardRef{}, fmt.Errorf("%s: write: %w", op, err)
	}
	if info.Size != ref.Size || info.Checksum != ref.Checksum {
		return meta.ShardRef{}, fmt.Errorf("%s: %w: copy has %d bytes, checksum %x; the manifest %d, %x",
			op, errSizeMismatch, info.Size, info.Checksum, ref.Size, ref.Checksum)
	}
	return meta.ShardRef{Index: ref.Index, Node: dst.ID, ID: id, Size: info.Size, Checksum: info.Checksum}, nil
}

// reportCorrupt reports ref to meta as bad when err says its records are
// corrupt or it is missing from its node, so repair re-creates it (a move
// only copies shards; it never rebuilds one).
func (c *Coordinator) reportCorrupt(ctx context.Context, man meta.Manifest, si int, ref meta.ShardRef, err error) {
	reason := ""
	var ce *storage.CorruptError
	switch {
	case errors.As(err, &ce):
		reason = "corrupt"
	case errors.Is(err, storage.ErrNotFound):
		reason = "missing"
	default:
		return
	}
	c.reportShard(ctx, man, si, ref, reason)
}
