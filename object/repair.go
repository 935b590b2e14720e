package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

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
// there under a new id), copies a shard on a draining node that is still
// readable from it as stored (as the rebalancer moves shards: a drain reads
// each byte once), rebuilds the other lost shards from k healthy ones,
// streams them into the new nodes' Put (which verify them as they store) —
// or, for a segment with one shard to re-create and a new node whose store
// is a ShardRebuilder, has that node rebuild it from its peers, falling back
// to rebuilding here when it does not succeed cleanly — and commits all segments with one compare-and-swap on the manifest's
// generation. A shard whose write to its new node fails (the node may have
// died without the map knowing yet) is placed again without that node and
// rebuilt once more, up to repairRetries times; only what still fails then
// counts in Remaining and the error. Writes that failed are queued as
// garbage whether or not anything commits. If the object changed meanwhile the new shards become garbage
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
		onNodes  []meta.Garbage
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
		fans = append(fans, sr.fans...)
		onNodes = append(onNodes, sr.onNodes...)
		if err != nil {
			segErrs = append(segErrs, err)
		}
		if len(sr.refs) > 0 {
			upds = append(upds, meta.ShardUpdate{Segment: si, Shards: sr.refs})
			newCount += len(sr.refs)
		}
	}
	if len(upds) == 0 {
		// Nothing to commit; writes that failed may have left part of a
		// shard on their node.
		var g []meta.Garbage
		for _, f := range fans {
			g = append(g, f.failedAttempted()...)
		}
		return res, errJoin(append(segErrs, c.queueGarbage(ctx, g)))
	}

	got, committed, unknown, err := c.commitShards(ctx, bucket, key, man.Generation, upds)
	if unknown {
		return res, errJoin(append(segErrs, fmt.Errorf("repair %s/%s: commit (outcome unknown, new shards left in place): %w", bucket, key, err)))
	}
	if !committed {
		g := onNodes
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

// commitShards commits upds with UpdateShards' compare-and-swap on gen.
// When the outcome is unknown (meta unreachable, a lost reply), it looks:
// a manifest that holds every new shard means the commit landed. It
// returns the manifest committed, whether it was, whether even the look
// could not tell (unknown: the new shards must be left in place), and the
// commit's error (nil when committed).
func (c *Coordinator) commitShards(ctx context.Context, bucket, key string, gen uint64, upds []meta.ShardUpdate) (got meta.Manifest, committed, unknown bool, err error) {
	got, err = c.md.UpdateShards(ctx, bucket, key, gen, upds)
	if err == nil || definiteRefusal(err) {
		return got, err == nil, false, err
	}
	cctx, cancel := c.cleanupCtx(ctx)
	cur, gerr := c.md.Get(cctx, bucket, key)
	cancel()
	switch {
	case gerr == nil && holdsShards(cur, upds):
		return cur, true, false, nil
	case gerr != nil && !errors.Is(gerr, meta.ErrNoSuchKey):
		return got, false, true, err
	}
	return got, false, false, err
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

// repairRetries bounds how many more times RepairObject re-places and
// rebuilds a shard whose write to its new node failed. A node that has just
// died still looks up to placement until meta's down-after passes, so the
// first choice can be a dead node; each retry leaves out every node whose
// write failed in this repair.
const repairRetries = 2

type segmentRepair struct {
	refs      []meta.ShardRef // new shards, durable
	fans      []*fanout       // one per attempt
	onNodes   []meta.Garbage  // the new shards nodes rebuilt themselves (no fan): garbage if the commit fails
	bytes     int64
	remaining int
}

// repairSegment rebuilds the shards lostIdx of segment si onto new nodes.
// isBad marks the lost shards that were reported bad (their node may still
// be fine). A shard whose write to its new node fails is placed again with
// that node left out and rebuilt once more, up to repairRetries times; the
// errors of writes that a retry made good are not returned.
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
	todo := lostIdx
	failedNodes := map[cluster.NodeID]bool{}
	badSources := map[int]bool{}
	var placeErrs []error // of every attempt: a retry does not undo them
	for attempt := 0; ; attempt++ {
		amp := mp
		if len(failedNodes) > 0 {
			if amp, err = markedDown(mp, failedNodes); err != nil {
				sr.remaining += len(todo)
				return sr, fmt.Errorf("%s: %w", op, err)
			}
		}
		at, err := c.rebuildShards(ctx, amp, man, si, cd, current, lostIdx, todo, isBad)
		placeErrs = append(placeErrs, at.placeErr)
		if at.fan != nil {
			sr.fans = append(sr.fans, at.fan)
		}
		sr.onNodes = append(sr.onNodes, at.onNode...)
		for _, i := range at.badSources {
			badSources[i] = true
		}
		for _, r := range at.refs {
			sr.refs = append(sr.refs, r)
			sr.bytes += r.Size
			current[r.Index] = r.Node // counts towards the spread of a retry
		}
		if len(at.failed) == 0 || attempt == repairRetries || ctx.Err() != nil {
			sr.remaining += at.remaining + len(at.failed) + len(badSources)
			return sr, errJoin(append(placeErrs, err))
		}
		// The rest succeeded or cannot be helped by another node: retry
		// only the shards whose target failed, without those targets.
		sr.remaining += at.remaining
		todo = todo[:0:0]
		for i, n := range at.failed {
			failedNodes[n] = true
			todo = append(todo, i)
		}
		slices.Sort(todo)
	}
}

// markedDown returns a copy of mp in which the given nodes are down, so
// placement leaves them out.
func markedDown(mp *cluster.Map, ids map[cluster.NodeID]bool) (*cluster.Map, error) {
	ns := mp.Nodes()
	for i := range ns {
		if ids[ns[i].ID] {
			ns[i].State = cluster.Down
		}
	}
	return cluster.NewMap(mp.Epoch(), ns)
}

// rebuildAttempt is what one placement and rebuild of some lost shards of a
// segment did.
type rebuildAttempt struct {
	refs   []meta.ShardRef // new shards, durable
	fan    *fanout
	onNode []meta.Garbage // refs a node rebuilt itself, as garbage should they not be committed
	// failed maps the shards whose write to their new node failed (the
	// rebuild itself went through) to that node: another node may do.
	failed map[int]cluster.NodeID
	// remaining counts the shards not rebuilt for another reason (no
	// target, or the rebuild failed).
	remaining int
	// badSources are the healthy-looking shards found bad while reading.
	badSources []int
	// placeErr says why some shards got no target (they are in remaining).
	placeErr error
}

// rebuildShards places the shards todo (a subset of the segment's lost
// shards lostIdx) with placement.Replace on mp, rebuilds them from k
// healthy shards and streams them into their new nodes. The error is that
// of the rebuild or of the writes that failed; why shards got no target is
// in placeErr.
func (c *Coordinator) rebuildShards(ctx context.Context, mp *cluster.Map, man meta.Manifest, si int, cd *erasure.Codec, current []cluster.NodeID, lostIdx, todo []int, isBad map[int]bool) (rebuildAttempt, error) {
	seg := man.Segments[si]
	op := fmt.Sprintf("repair %s/%s segment %d", man.Bucket, man.Key, si)
	at := rebuildAttempt{failed: map[int]cluster.NodeID{}}
	objID := fmt.Sprintf("%s.%d", man.VersionID, seg.Number)
	chosen, perr := placement.Replace(mp, objID, current, todo)
	targets := make([]cluster.NodeID, len(seg.Shards))
	for _, i := range todo {
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
	for _, i := range todo {
		if targets[i] == "" {
			at.remaining++
			if perr != nil {
				at.placeErr = fmt.Errorf("%s: %w: %w", op, ErrNoPlacement, perr)
			}
			continue
		}
		suffix, err := c.shortID()
		if err != nil {
			at.remaining = len(todo)
			return at, err
		}
		ids[i] = fmt.Sprintf("%s.%d.%d.r%s", man.VersionID, seg.Number, i, suffix)
	}

	// A shard on a draining node that is still readable is copied from
	// there as stored (the move path, verified by its new node's Put),
	// not rebuilt from k others: a drain reads each byte once. A copy
	// that fails leaves the shard to the rebuild below.
	todo = c.copyFromDraining(ctx, mp, man, si, todo, targets, isBad, &at)
	if len(todo) == 0 {
		return at, nil
	}

	// One shard to re-create (one node lost): its new node rebuilds it
	// itself when it can, which saves the trip of every rebuilt byte
	// through this process. Anything but a clean success there falls
	// back to rebuilding here, which reads around bad sources and reports
	// them, under a fresh id.
	if len(todo) == 1 && targets[todo[0]] != "" {
		i := todo[0]
		if ref, ok := c.rebuildOnTarget(ctx, mp, man, si, cd, lostIdx, i, targets[i], ids[i]); ok {
			at.refs = append(at.refs, ref)
			at.onNode = append(at.onNode, meta.Garbage{Node: ref.Node, ShardID: ref.ID})
			return at, nil
		}
		suffix, err := c.shortID()
		if err != nil {
			at.remaining = len(todo)
			return at, err
		}
		ids[i] = fmt.Sprintf("%s.%d.%d.r%s", man.VersionID, seg.Number, i, suffix)
	}

	fan := c.startFanout(ctx, mp, targets, ids)
	at.fan = fan
	var (
		missing []int
		outs    []*dropWriter
		sums    = make([]*summingWriter, len(seg.Shards))
	)
	for _, i := range todo {
		if w := fan.writer(i); w != nil {
			missing = append(missing, i)
			sums[i] = &summingWriter{w: w, v: erasure.NewVerifier(i)}
			outs = append(outs, &dropWriter{w: sums[i]})
		} else if targets[i] != "" {
			at.failed[i] = targets[i] // not dialled
		}
	}
	if len(missing) == 0 {
		fan.cancel(errNothingToRebuild)
		return at, fan.errs()
	}
	exclude := readExclusions(mp, seg, lostIdx)
	ws := make([]io.Writer, len(outs))
	for j, o := range outs {
		ws[j] = o
	}
	// Every source whose records feed the rebuild is checked against its
	// summary in full, also one opened part-way (a parity shard taken
	// when a data source fails): see summaryCheck.
	open := c.opener(mp, seg, exclude)
	sc := newSummaryCheck(seg, cd, true)
	rep, err := cd.Rebuild(ctx, seg.Size, sc.opener(open), missing, ws)
	sc.seen(rep)
	if err == nil {
		// A source whose summary failed after its records were used, or
		// that could not be checked in full, makes the rebuilt shards
		// suspect: drop them; a bad source is reported and the next
		// attempt rebuilds around it.
		var frep erasure.DecodeReport
		frep, err = sc.finish(ctx, open, true)
		rep.Failures = append(rep.Failures, frep.Failures...)
	} else {
		rep.Failures = append(rep.Failures, sc.unreported().Failures...)
	}
	c.reportBad(ctx, man, si, rep)
	for _, f := range rep.Failures {
		if !exclude[f.Shard] && badReason(f) != "" {
			at.badSources = append(at.badSources, f.Shard)
		}
	}
	if err != nil {
		fan.cancel(err)
		at.remaining += len(missing) + len(at.failed)
		clear(at.failed) // the rebuild failed: no node would have done better
		if errors.Is(err, erasure.ErrTooFewShards) {
			err = fmt.Errorf("%w: %w", ErrUnreadable, err)
		}
		return at, errJoin([]error{fmt.Errorf("%s: rebuild: %w", op, err), c.queueGarbage(ctx, fan.attempted())})
	}
	werrs := make([]error, len(seg.Shards))
	for j, i := range missing {
		werrs[i] = outs[j].err
	}
	fan.finish(werrs)
	// Quorum 1: each rebuilt shard stands alone, so one failed target
	// must not cancel the others' writes (only a stall does). Each node
	// must acknowledge the summary of the records sent to it.
	wantSums := make([]uint64, len(seg.Shards))
	for _, i := range missing {
		wantSums[i] = sums[i].v.Summary()
	}
	fan.wait(1, cd.ShardSize(seg.Size), wantSums)
	for _, i := range missing {
		s := fan.sinks[i]
		if !s.ok() {
			at.failed[i] = s.node
			continue
		}
		at.refs = append(at.refs, meta.ShardRef{Index: i, Node: s.node, ID: s.id, Size: s.info.Size, Checksum: s.info.Checksum})
	}
	return at, fan.errs()
}

// copyFromDraining copies each shard of todo whose node is draining (and
// readable, and not reported bad) to its target, adding the copies to
// at.refs (and, as garbage should the commit fail, to at.onNode), and
// returns the shards still to rebuild; a copied shard's target is cleared.
func (c *Coordinator) copyFromDraining(ctx context.Context, mp *cluster.Map, man meta.Manifest, si int, todo []int, targets []cluster.NodeID, isBad map[int]bool, at *rebuildAttempt) []int {
	var rest []int
	for _, i := range todo {
		ref := man.Segments[si].Shards[i]
		n, ok := mp.Node(ref.Node)
		if targets[i] == "" || isBad[i] || !ok || n.State != cluster.Draining {
			rest = append(rest, i)
			continue
		}
		var copies []meta.Garbage
		nr, err := c.copyShard(ctx, mp, man, ShardMove{Segment: si, Index: i, From: ref.Node, To: targets[i]}, &copies)
		if err != nil {
			_ = c.queueGarbage(ctx, copies)
			rest = append(rest, i)
			continue
		}
		at.refs = append(at.refs, nr)
		// The copy committed with the repair is garbage only if that
		// commit fails; an attempt before it (a node-side copy that did
		// not succeed cleanly) never will be committed.
		var stale []meta.Garbage
		for _, g := range copies {
			if g.Node == nr.Node && g.ShardID == nr.ID {
				at.onNode = append(at.onNode, g)
			} else {
				stale = append(stale, g)
			}
		}
		_ = c.queueGarbage(ctx, stale) // counted in Stats; the inventory finds it otherwise
		targets[i] = ""                // done: the rebuild's fan-out leaves it alone
	}
	return rest
}

// readExclusions is the set of shards of seg a rebuild must not read: the
// lost ones, and, when k Up nodes hold healthy shards, those on nodes not
// Up (draining and full nodes are busy enough already).
func readExclusions(mp *cluster.Map, seg meta.Segment, lostIdx []int) map[int]bool {
	exclude := map[int]bool{}
	for _, i := range lostIdx {
		exclude[i] = true
	}
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
	return exclude
}

// nodeRebuildTime bounds a node-side rebuild of a shard of shardSize
// bytes: a floor for the round trips, plus the shard at 1 MiB/s, far
// below any disk (a stalled node is given up on, and the shard rebuilt
// here instead).
func nodeRebuildTime(shardSize int64) time.Duration {
	return 30*time.Second + time.Duration(shardSize/(1<<20))*time.Second
}

// rebuildOnTarget asks target, when its store is a ShardRebuilder, to
// re-create shard i of segment si itself under id from the segment's
// readable shards (see readExclusions), and returns the new shard's ref
// once the node has it durably. ok is false when the node cannot rebuild
// or did not succeed cleanly (the caller then rebuilds here); whatever the
// attempt may have left on the node is queued as garbage.
func (c *Coordinator) rebuildOnTarget(ctx context.Context, mp *cluster.Map, man meta.Manifest, si int, cd *erasure.Codec, lostIdx []int, i int, target cluster.NodeID, id string) (ref meta.ShardRef, ok bool) {
	n, known := mp.Node(target)
	if !known {
		return ref, false
	}
	st, err := c.nodes.Store(n)
	if err != nil {
		return ref, false
	}
	rb, can := st.(ShardRebuilder)
	if !can {
		return ref, false
	}
	seg := man.Segments[si]
	exclude := readExclusions(mp, seg, lostIdx)
	exclude[i] = true
	req := ShardRebuild{Segment: seg, Index: i}
	req.Segment.Shards = slices.Clone(seg.Shards)
	seen := map[cluster.NodeID]bool{}
	for j, r := range req.Segment.Shards {
		src, readable := mp.Node(r.Node)
		if exclude[j] || r.Node == "" || !readable || !src.State.Readable() {
			req.Segment.Shards[j].Node = ""
			continue
		}
		if !seen[src.ID] {
			seen[src.ID] = true
			req.Nodes = append(req.Nodes, src)
		}
	}
	want := cd.ShardSize(seg.Size)
	rctx, cancel := context.WithTimeout(ctx, nodeRebuildTime(want))
	info, err := rb.RebuildShard(rctx, id, req)
	cancel()
	if err == nil && info.Size != want {
		err = fmt.Errorf("%w: %d bytes, want %d", errSizeMismatch, info.Size, want)
	}
	if err != nil {
		// Nothing should be left, but the outcome of a request that
		// failed on the way back is unknown.
		_ = c.queueGarbage(ctx, []meta.Garbage{{Node: target, ShardID: id}})
		return ref, false
	}
	return meta.ShardRef{Index: i, Node: target, ID: id, Size: info.Size, Checksum: info.Checksum}, true
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
