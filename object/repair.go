package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/placement"
)

// LostFunc decides whether a shard must be re-created: seg is the segment's
// index in the manifest, ref the shard, n its node as the cluster map has it
// (known=false when the map does not know the node or ref.Node is "").
type LostFunc func(seg int, ref meta.ShardRef, n cluster.Node, known bool) bool

// DefaultLost treats as lost a shard that was never written, whose node the
// map does not know, or whose node is Out or Draining (its shards are copied
// away). Down nodes are waited for: they usually come back.
func DefaultLost(seg int, ref meta.ShardRef, n cluster.Node, known bool) bool {
	return ref.Node == "" || !known || n.State == cluster.Out || n.State == cluster.Draining
}

// RepairResult is what RepairObject did. It is meaningful even when
// RepairObject also returns an error.
type RepairResult struct {
	// Rebuilt counts the shards re-created and committed.
	Rebuilt int `json:"rebuilt"`
	// Bytes counts the shard bytes written to nodes (also when the commit
	// then lost to a conflict).
	Bytes int64 `json:"bytes"`
	// Conflict: the object was overwritten or deleted during the repair;
	// the new shards were queued as garbage and the newer version is intact.
	Conflict bool `json:"conflict"`
	// Remaining counts shards that are still lost or bad after this repair
	// (no target node, too few healthy shards, a failed write, or shards
	// found bad while rebuilding). Zero means the object is whole, as far as
	// this repair saw.
	Remaining int `json:"remaining"`
	// Generation is the manifest generation after the repair (the one
	// examined when nothing was committed).
	Generation uint64 `json:"generation"`
}

// RepairObject re-creates the lost shards of the current version of
// bucket/key: shards lost per lost (nil: DefaultLost) and shards reported in
// bad (matched by segment, index and shard id; reports about other
// versions are ignored). For each segment it chooses new nodes with
// placement.Replace (a bad shard on a still placeable node may be rewritten
// there under a new id), rebuilds only the lost shards from k healthy ones,
// streams them into the new nodes' Put (which verify them as they store),
// and commits all segments with one compare-and-swap on the manifest's
// generation. If the object changed meanwhile the new shards become garbage
// and the result says Conflict (err is nil). A key that no longer exists is
// meta.ErrNoSuchKey (wrapped). A segment that cannot be rebuilt is counted
// in Remaining and its error returned, the other segments still commit.
func (c *Coordinator) RepairObject(ctx context.Context, bucket, key string, bad []meta.BadShard, lost LostFunc) (RepairResult, error) {
	if lost == nil {
		lost = DefaultLost
	}
	man, err := c.md.Get(ctx, bucket, key)
	if err != nil {
		return RepairResult{}, fmt.Errorf("repair %s/%s: %w", bucket, key, err)
	}
	res := RepairResult{Generation: man.Generation}
	mp, err := c.clusterMap(ctx)
	if err != nil {
		return res, fmt.Errorf("repair %s/%s: %w", bucket, key, err)
	}
	type badAt struct {
		seg, index int
		id         string
	}
	reported := map[badAt]bool{}
	for _, b := range bad {
		reported[badAt{b.Segment, b.Index, b.ShardID}] = true
	}

	var (
		upds     []meta.ShardUpdate
		fans     []*fanout
		segErrs  []error
		newCount int
	)
	for si, seg := range man.Segments {
		isBad := map[int]bool{}
		var lostIdx []int
		for i, ref := range seg.Shards {
			n, known := mp.Node(ref.Node)
			known = known && ref.Node != ""
			b := ref.Node != "" && reported[badAt{si, i, ref.ID}]
			if b || lost(si, ref, n, known) {
				isBad[i] = b
				lostIdx = append(lostIdx, i)
			}
		}
		if len(lostIdx) == 0 {
			continue
		}
		if len(seg.Shards)-len(lostIdx) < seg.K {
			res.Remaining += len(lostIdx)
			segErrs = append(segErrs, fmt.Errorf("repair %s/%s segment %d: %w: %d of %d shards lost, k=%d", bucket, key, si, ErrUnreadable, len(lostIdx), len(seg.Shards), seg.K))
			continue
		}
		sr, err := c.repairSegment(ctx, mp, man, si, lostIdx, isBad)
		res.Bytes += sr.bytes
		res.Remaining += sr.remaining
		if sr.fan != nil {
			fans = append(fans, sr.fan)
		}
		if err != nil {
			segErrs = append(segErrs, err)
		}
		if len(sr.refs) > 0 {
			upds = append(upds, meta.ShardUpdate{Segment: si, Shards: sr.refs})
			newCount += len(sr.refs)
		}
	}
	if len(upds) == 0 {
		return res, errJoin(segErrs)
	}

	got, err := c.md.UpdateShards(ctx, bucket, key, man.Generation, upds)
	committed := err == nil
	if err != nil && !definiteRefusal(err) {
		cctx, cancel := c.cleanupCtx(ctx)
		cur, gerr := c.md.Get(cctx, bucket, key)
		cancel()
		switch {
		case gerr == nil && holdsShards(cur, upds):
			committed, got, err = true, cur, nil
		case gerr != nil && !errors.Is(gerr, meta.ErrNoSuchKey):
			return res, errJoin(append(segErrs, fmt.Errorf("repair %s/%s: commit (outcome unknown, new shards left in place): %w", bucket, key, err)))
		}
	}
	if !committed {
		var g []meta.Garbage
		for _, f := range fans {
			g = append(g, f.attempted()...)
		}
		gerr := c.queueGarbage(ctx, g)
		if errors.Is(err, meta.ErrConflict) {
			res.Conflict, res.Remaining = true, 0
			return res, errJoin(append(segErrs, gerr))
		}
		return res, errJoin(append(segErrs, fmt.Errorf("repair %s/%s: commit: %w", bucket, key, err), gerr))
	}
	res.Rebuilt = newCount
	res.Generation = got.Generation
	var g []meta.Garbage
	for _, f := range fans {
		g = append(g, f.failedAttempted()...)
	}
	return res, errJoin(append(segErrs, c.queueGarbage(ctx, g)))
}

// holdsShards reports whether m references every shard of upds.
func holdsShards(m meta.Manifest, upds []meta.ShardUpdate) bool {
	for _, u := range upds {
		if u.Segment >= len(m.Segments) {
			return false
		}
		seg := m.Segments[u.Segment]
		for _, r := range u.Shards {
			if r.Index >= len(seg.Shards) || seg.Shards[r.Index].ID != r.ID || seg.Shards[r.Index].Node != r.Node {
				return false
			}
		}
	}
	return true
}

type segmentRepair struct {
	refs      []meta.ShardRef // new shards, durable
	fan       *fanout
	bytes     int64
	remaining int
}

// repairSegment rebuilds the shards lostIdx of segment si onto new nodes.
// isBad marks the lost shards that were reported bad (their node may still
// be fine).
func (c *Coordinator) repairSegment(ctx context.Context, mp *cluster.Map, man meta.Manifest, si int, lostIdx []int, isBad map[int]bool) (segmentRepair, error) {
	seg := man.Segments[si]
	op := fmt.Sprintf("repair %s/%s segment %d", man.Bucket, man.Key, si)
	var sr segmentRepair
	cd, err := c.codec(seg.K, seg.M, seg.BlockSize)
	if err != nil {
		sr.remaining = len(lostIdx)
		return sr, fmt.Errorf("%s: %w", op, err)
	}
	current := make([]cluster.NodeID, len(seg.Shards))
	for i, r := range seg.Shards {
		current[i] = r.Node
	}
	objID := fmt.Sprintf("%s.%d", man.VersionID, seg.Number)
	chosen, perr := placement.Replace(mp, objID, current, lostIdx)
	targets := make([]cluster.NodeID, len(seg.Shards))
	for _, i := range lostIdx {
		if perr == nil && i < len(chosen) && chosen[i] != "" {
			targets[i] = chosen[i]
			continue
		}
		// No new home: a bad shard on a node still taking writes is
		// rewritten in place under a new id.
		if n, ok := mp.Node(seg.Shards[i].Node); ok && isBad[i] && n.State.Placeable() {
			targets[i] = n.ID
		}
	}
	ids := make([]string, len(seg.Shards))
	var missing []int
	for _, i := range lostIdx {
		if targets[i] == "" {
			sr.remaining++
			continue
		}
		suffix, err := c.shortID()
		if err != nil {
			return sr, err
		}
		ids[i] = fmt.Sprintf("%s.%d.%d.r%s", man.VersionID, seg.Number, i, suffix)
	}
	fan := c.startFanout(ctx, mp, targets, ids)
	sr.fan = fan
	var outs []*dropWriter
	for _, i := range lostIdx {
		if w := fan.writer(i); w != nil {
			missing = append(missing, i)
			outs = append(outs, &dropWriter{w: w})
		} else if targets[i] != "" {
			sr.remaining++
		}
	}
	if len(missing) == 0 {
		fan.wait(len(fan.sinks)+1, 0)
		if perr != nil {
			return sr, fmt.Errorf("%s: %w: %w", op, ErrNoPlacement, perr)
		}
		return sr, fan.errs()
	}
	exclude := map[int]bool{}
	for _, i := range lostIdx {
		exclude[i] = true
	}
	// Read from Up nodes only when k of them hold healthy shards: draining
	// and full nodes are busy enough already.
	up := 0
	for i, r := range seg.Shards {
		if n, ok := mp.Node(r.Node); ok && !exclude[i] && n.State == cluster.Up {
			up++
		}
	}
	if up >= seg.K {
		for i, r := range seg.Shards {
			if n, ok := mp.Node(r.Node); !ok || n.State != cluster.Up {
				exclude[i] = true
			}
		}
	}
	ws := make([]io.Writer, len(outs))
	for j, o := range outs {
		ws[j] = o
	}
	rep, err := cd.Rebuild(ctx, seg.Size, c.opener(mp, seg, exclude), missing, ws)
	c.reportBad(ctx, man, si, rep)
	for _, f := range rep.Failures {
		if !exclude[f.Shard] && badReason(f) != "" {
			sr.remaining++
		}
	}
	if err != nil {
		fan.abort(err)
		fan.wait(len(fan.sinks)+1, 0)
		sr.remaining += len(missing)
		if errors.Is(err, erasure.ErrTooFewShards) {
			err = fmt.Errorf("%w: %w", ErrUnreadable, err)
		}
		return sr, errJoin([]error{fmt.Errorf("%s: rebuild: %w", op, err), c.queueGarbage(ctx, fan.attempted())})
	}
	werrs := make([]error, len(seg.Shards))
	for j, i := range missing {
		werrs[i] = outs[j].err
	}
	fan.finish(werrs)
	fan.wait(len(missing), cd.ShardSize(seg.Size))
	for _, i := range missing {
		s := fan.sinks[i]
		if !s.ok() {
			sr.remaining++
			continue
		}
		sr.bytes += s.info.Size
		sr.refs = append(sr.refs, meta.ShardRef{Index: i, Node: s.node, ID: s.id, Size: s.info.Size, Checksum: s.info.Checksum})
	}
	return sr, fan.errs()
}

// dropWriter passes writes through until the first error, then swallows
// them, so one failing target does not stop the rebuild of the others; err
// keeps the failure.
type dropWriter struct {
	w   io.Writer
	err error
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if d.err == nil {
		if _, err := d.w.Write(p); err != nil {
			d.err = err
		}
	}
	return len(p), nil
}

// CollectGarbage deletes up to limit due garbage shards (NotBefore passed)
// from their nodes and forgets them in meta. Deleting is idempotent, so a
// crash between the delete and the removal only repeats work. Entries for
// nodes the map no longer knows are dropped. Shards on down nodes are skipped
// and retried on a later call. An out node may be dead or alive again (it
// stays out until an operator's "in"), and the map cannot tell which, so its
// stale shards are tried one by one, each delete bounded by ReadTimeout; the
// first failure ends the try and leaves the node alone for outRetry, so a
// dead out node costs at most one ReadTimeout per outRetry, and its entries
// stay queued without being reported as errors. It returns the number of
// entries removed; failures of single deletions on other nodes are returned
// joined, after the successful ones were removed.
func (c *Coordinator) CollectGarbage(ctx context.Context, limit int) (int, error) {
	gs, err := c.md.ListGarbage(ctx, limit)
	if err != nil {
		return 0, fmt.Errorf("collect garbage: %w", err)
	}
	mp, err := c.clusterMap(ctx)
	if err != nil {
		return 0, fmt.Errorf("collect garbage: %w", err)
	}
	now := c.cfg.Now()
	var (
		mu   sync.Mutex // guards done, errs
		done []meta.Garbage
		errs []error
	)
	record := func(gb meta.Garbage, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		} else {
			done = append(done, gb)
		}
	}
	var outNodes []cluster.Node
	onOut := map[cluster.NodeID][]meta.Garbage{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, gb := range gs {
		if gb.NotBefore.After(now) {
			break // ListGarbage is ordered by NotBefore
		}
		n, ok := mp.Node(gb.Node)
		switch {
		case !ok:
			record(gb, nil)
			continue
		case n.State == cluster.Out:
			if len(onOut[n.ID]) == 0 {
				outNodes = append(outNodes, n)
			}
			onOut[n.ID] = append(onOut[n.ID], gb)
			continue
		case !n.State.Readable():
			continue
		}
		st, err := c.nodes.Store(n)
		if err != nil {
			record(gb, fmt.Errorf("collect %s on %s: dial: %w", gb.ShardID, gb.Node, err))
			continue
		}
		g.Go(func() error {
			if err := st.Delete(gctx, gb.ShardID); err != nil {
				record(gb, fmt.Errorf("collect %s on %s: %w", gb.ShardID, gb.Node, err))
				return nil
			}
			record(gb, nil)
			return nil
		})
	}
	for _, n := range outNodes {
		if !c.outDue(n.ID, now) {
			continue
		}
		st, err := c.nodes.Store(n)
		if err != nil {
			c.outTried(n.ID, now, false)
			continue
		}
		g.Go(func() error {
			for _, gb := range onOut[n.ID] {
				dctx, cancel := context.WithTimeout(gctx, c.cfg.ReadTimeout)
				err := st.Delete(dctx, gb.ShardID)
				cancel()
				if err != nil {
					c.outTried(n.ID, now, false)
					return nil
				}
				record(gb, nil)
			}
			c.outTried(n.ID, now, true)
			return nil
		})
	}
	_ = g.Wait() // the goroutines record their errors; none is returned
	if len(done) > 0 {
		if err := c.md.RemoveGarbage(ctx, done); err != nil {
			return 0, errJoin(append(errs, fmt.Errorf("collect garbage: forget %d entries: %w", len(done), err)))
		}
	}
	return len(done), errJoin(errs)
}

// outRetry is how long CollectGarbage leaves an out node alone after a
// delete there failed.
const outRetry = time.Minute

// outDue reports whether CollectGarbage may try the out node id at now.
func (c *Coordinator) outDue(id cluster.NodeID, now time.Time) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return !now.Before(c.outNext[id])
}

// outTried records the outcome of a try on the out node id: a failure puts
// it off for outRetry, a success makes it due at once.
func (c *Coordinator) outTried(id cluster.NodeID, now time.Time, ok bool) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if ok {
		delete(c.outNext, id)
		return
	}
	if c.outNext == nil {
		c.outNext = map[cluster.NodeID]time.Time{}
	}
	c.outNext[id] = now.Add(outRetry)
}
