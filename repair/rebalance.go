package repair

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/placement"
)

// Mover moves shards of one object to other nodes: *object.Coordinator.
type Mover interface {
	MoveShards(ctx context.Context, bucket, key string, gen uint64, moves []object.ShardMove) (object.MoveResult, error)
}

// ManifestScanner visits every object's manifest page by page, in
// (bucket, key) order after a cursor (*meta.Store, and the replicated meta
// node on its leader).
type ManifestScanner interface {
	ScanManifests(ctx context.Context, afterBucket, afterKey string, limit int) ([]meta.Manifest, error)
}

// cursor is a position in a scan of every object: after this bucket and
// key (zero: from the first).
type cursor struct{ bucket, key string }

// after is the position just after m.
func after(m meta.Manifest) cursor { return cursor{m.Bucket, m.Key} }

// RebalanceConfig tunes the rebalancer. Zero fields take the defaults.
type RebalanceConfig struct {
	// Mover and Scanner enable the rebalancer; either nil: none runs.
	Mover   Mover
	Scanner ManifestScanner
	// ScanPerPass bounds the manifests one loop pass examines, planning or
	// moving. Default 2,000.
	ScanPerPass int
	// StepTime bounds how long one pass keeps admitting objects to move, so
	// repair — which every pass runs first — never waits behind the
	// rebalance for long. Default 5s.
	StepTime time.Duration
	// RetryAfter is the pause before a new round when a round left objects
	// it could not move (not whole, a node down, a full destination, a
	// failed copy). Default 1 minute.
	RetryAfter time.Duration
	// Settle is how long placement must stay unchanged before a round
	// starts: an operator adding several nodes one after the other gets
	// one round towards the final placement, not one per node (each
	// moving shards the next would move again). The first round of a
	// leader starts at once. Default 10s; negative: none.
	Settle time.Duration
}

func (c *RebalanceConfig) setDefaults() {
	if c.ScanPerPass <= 0 {
		c.ScanPerPass = 2000
	}
	if c.StepTime <= 0 {
		c.StepTime = 5 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Minute
	}
	if c.Settle == 0 {
		c.Settle = 10 * time.Second
	}
}

// The rebalancer's phases (meta.RebalanceStats.State). Settling: placement
// changed less than Settle ago; the round starts once it has held still.
const (
	rebalanceIdle     = "idle"
	rebalancePlanning = "planning"
	rebalanceMoving   = "moving"
	rebalanceWaiting  = "waiting"
	rebalanceSettling = "settling"
)

// rebalancer is the loop's rebalance state: where the round is. Guarded by
// the loop's mu, except while a step runs (one at a time: Pass is never
// concurrent with itself).
type rebalancer struct {
	sig      uint64    // the placement signature the round plans for; 0: none yet
	next     uint64    // a newer signature waiting to settle (0: none)
	since    time.Time // when next was first seen
	phase    string
	cursor   cursor
	leftover int64     // objects of this round not moved (skipped, failed, conflicts)
	retryAt  time.Time // when a waiting rebalancer starts its next round
	window   []sample  // bytes moved recently, for the rate
}

// placementSignature identifies what placement depends on: the nodes that
// hold or may receive shards (every node but out and draining ones, which
// repair empties), their domains and their weights. A node going down and
// up again, or filling up, changes none of it: its shards stay put.
func placementSignature(mp *cluster.Map) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, n := range mp.Nodes() {
		if !planned(n.State) {
			continue
		}
		_, _ = h.Write([]byte(n.ID))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(n.Domain.Zone + "\x00" + n.Domain.Rack + "\x00" + n.Domain.Host + "\x00"))
		binary.BigEndian.PutUint64(b[:], math.Float64bits(n.Weight()))
		_, _ = h.Write(b[:])
	}
	return max(h.Sum64(), 1)
}

// planned reports whether placement plans with a node in state s: down and
// full nodes keep their shards (a down node usually comes back; a full one
// holds what it has), out and draining ones do not.
func planned(s cluster.State) bool {
	return s == cluster.Up || s == cluster.Down || s == cluster.Full
}

// planningMap is mp with its down and full nodes up, so the rebalancer
// plans the placement the cluster settles into, not a moment's.
func planningMap(mp *cluster.Map) (*cluster.Map, error) {
	ns := mp.Nodes()
	for i := range ns {
		if planned(ns[i].State) {
			ns[i].State = cluster.Up
		}
	}
	return cluster.NewMap(mp.Epoch(), ns)
}

// PlanMoves returns the shard moves that bring m to where placement (a
// Planner on the planning map) puts it, and the bytes they copy. ok is
// false when m is not the rebalancer's to move now: a shard not written,
// on a node the map does not know, out or draining (repair's business
// first), or a move whose source is down (it may come back) or whose
// destination cannot take a shard now (down or full): planned again in a
// later round. A shard on a down node that stays where it is is no reason
// to wait.
func PlanMoves(p *placement.Planner, mp *cluster.Map, m meta.Manifest) (moves []object.ShardMove, bytes int64, ok bool) {
	for si, seg := range m.Segments {
		current := make([]cluster.NodeID, len(seg.Shards))
		for i, r := range seg.Shards {
			n, known := mp.Node(r.Node)
			if r.Node == "" || !known || !planned(n.State) {
				return nil, 0, false
			}
			current[i] = r.Node
		}
		mv, err := p.Moves(fmt.Sprintf("%s.%d", m.VersionID, seg.Number), seg.K, current)
		if err != nil {
			return nil, 0, false
		}
		for _, x := range mv {
			from, _ := mp.Node(x.From)
			to, _ := mp.Node(x.To)
			if !from.State.Readable() || !to.State.Placeable() {
				return nil, 0, false
			}
			moves = append(moves, object.ShardMove{Segment: si, Index: x.Shard, From: x.From, To: x.To})
			bytes += seg.Shards[x.Shard].Size
		}
	}
	return moves, bytes, true
}

// rebalanceStep is the rebalance step of a pass, run only when the pass
// found nothing to repair: repair always comes first. A change of the
// placement signature starts a round: a planning scan over every object
// counts what is to move (objects and bytes, for status and the ETA), then
// a moving scan moves it, each object's shards copied, verified and
// committed by the Mover, at most Concurrency objects at once and each
// admitted by the same adaptive throttle and byte rate as repairs. Each
// pass scans at most ScanPerPass manifests and admits objects for at most
// StepTime; the round goes on in the next pass from its cursor. A round
// that ends with objects left over waits RetryAfter and starts again. The
// returned error is meta's or ctx's; a move that fails is counted, not
// returned.
func (l *Loop) rebalanceStep(ctx context.Context, mp *cluster.Map) error {
	rc := l.cfg.Rebalance
	if rc.Mover == nil || rc.Scanner == nil {
		return nil
	}
	now := l.cfg.Now()
	rb := &l.rb
	if sig := placementSignature(mp); sig != rb.sig {
		if sig != rb.next {
			rb.next, rb.since = sig, now
		}
		if rb.sig != 0 && rc.Settle > 0 && now.Sub(rb.since) < rc.Settle {
			l.setPhase(rebalanceSettling) // moving towards the old placement would be wasted
			return nil
		}
		rb.next = 0
		l.startRound(sig, now)
	} else if rb.phase == rebalanceSettling { // placement went back to the round's own
		rb.next = 0
		l.startRound(sig, now)
	}
	if rb.phase == rebalanceWaiting && !now.Before(rb.retryAt) {
		l.startRound(rb.sig, now)
	}
	if rb.phase == rebalanceIdle || rb.phase == rebalanceWaiting {
		return nil
	}
	pm, err := planningMap(mp)
	if err != nil {
		return err
	}
	p := placement.NewPlanner(pm)
	deadline := now.Add(rc.StepTime)
	scanned := 0
	for scanned < rc.ScanPerPass {
		page := min(rc.ScanPerPass-scanned, 500)
		ms, err := rc.Scanner.ScanManifests(ctx, rb.cursor.bucket, rb.cursor.key, page)
		if err != nil {
			return fmt.Errorf("rebalance: %w", err)
		}
		scanned += len(ms)
		if rb.phase == rebalancePlanning {
			l.planPage(p, mp, ms)
		} else {
			n, err := l.movePage(ctx, p, mp, ms, deadline)
			if n < len(ms) || err != nil {
				// Out of time (or ctx ended): the round goes on from the
				// last object taken in.
				if n > 0 {
					rb.cursor = after(ms[n-1])
				}
				return err
			}
		}
		if len(ms) > 0 {
			rb.cursor = after(ms[len(ms)-1])
		}
		if len(ms) < page {
			l.endScan(now)
			return nil
		}
	}
	return nil
}

// setPhase sets the rebalancer's phase, as status shows it, and forgets
// what the round in progress (now abandoned) had planned.
func (l *Loop) setPhase(phase string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := &l.stats.Rebalance
	l.rb.phase, rs.State = phase, phase
	rs.Planned, rs.ObjectsToMove, rs.BytesToMove = 0, 0, 0
}

// startRound begins a round for placement signature sig: a planning scan
// from the first object.
func (l *Loop) startRound(sig uint64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rb := &l.rb
	rb.sig, rb.phase, rb.cursor, rb.leftover = sig, rebalancePlanning, cursor{}, 0
	rs := &l.stats.Rebalance
	rs.State, rs.ObjectsToMove, rs.BytesToMove, rs.Planned = rebalancePlanning, 0, 0, 0
	if rs.RoundStart.IsZero() {
		rs.RoundStart = now
	}
}

// planPage counts what the objects of ms will move.
func (l *Loop) planPage(p *placement.Planner, mp *cluster.Map, ms []meta.Manifest) {
	var objects, bytes int64
	for _, m := range ms {
		if mv, b, ok := PlanMoves(p, mp, m); ok && len(mv) > 0 {
			objects++
			bytes += b
		}
	}
	l.mu.Lock()
	rs := &l.stats.Rebalance
	rs.Planned += int64(len(ms))
	rs.ObjectsToMove += objects
	rs.BytesToMove += bytes
	l.mu.Unlock()
}

// endScan ends a scan of every object: planning turns to moving (or to
// idle when nothing is to move), moving to idle — or to waiting, when
// objects were left over, until RetryAfter has passed.
func (l *Loop) endScan(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rb, rs := &l.rb, &l.stats.Rebalance
	rb.cursor = cursor{}
	switch {
	case rb.phase == rebalancePlanning && rs.ObjectsToMove > 0:
		rb.phase = rebalanceMoving
	case rb.phase == rebalanceMoving && rb.leftover > 0:
		rb.phase, rb.retryAt = rebalanceWaiting, now.Add(l.cfg.Rebalance.RetryAfter)
	default:
		rb.phase = rebalanceIdle
		if !rs.RoundStart.IsZero() {
			rs.LastRoundSeconds = now.Sub(rs.RoundStart).Seconds()
		}
		rs.RoundStart = time.Time{}
	}
	rs.State = rb.phase
	if rb.phase != rebalanceMoving {
		rs.ObjectsToMove, rs.BytesToMove = 0, 0
	}
	l.refreshRebalanceLocked(now)
}

// movePage moves the objects of ms that placement wants elsewhere, in
// order, at most Concurrency at once, each admitted by the adaptive
// throttle and the byte rate; it stops admitting at deadline. It returns
// how many objects of ms it took in (all of them unless the deadline
// passed or ctx ended) and ctx's error.
func (l *Loop) movePage(ctx context.Context, p *placement.Planner, mp *cluster.Map, ms []meta.Manifest, deadline time.Time) (int, error) {
	// A change of the map (a node down or out, above all) cancels the
	// moves in flight, so repair never waits behind a long copy: their
	// copies become garbage, and the round goes on after repair.
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		l.cancelOnMapChange(mctx, mp.Epoch(), cancel)
	}()
	defer func() { cancel(); <-watched }()
	g, gctx := errgroup.WithContext(mctx)
	g.SetLimit(l.cfg.Concurrency)
	taken := 0
	for _, m := range ms {
		if !l.cfg.Now().Before(deadline) {
			break
		}
		taken++
		mv, bytes, ok := PlanMoves(p, mp, m)
		if !ok {
			l.rebalanced(object.MoveResult{}, nil, true, 0)
			continue
		}
		if len(mv) == 0 {
			continue
		}
		if err := l.thr.admit(gctx, false); err != nil {
			taken--
			break
		}
		g.Go(func() error {
			var took time.Duration
			defer func() { l.thr.done(took) }()
			if err := l.limit.Wait(gctx, bytes); err != nil {
				return err
			}
			start := l.cfg.Now()
			res, err := l.cfg.Rebalance.Mover.MoveShards(gctx, m.Bucket, m.Key, m.Generation, mv)
			took = l.cfg.Now().Sub(start)
			if err != nil && gctx.Err() != nil {
				l.rebalanced(res, nil, true, 0) // cut short (map changed): planned again
				return nil
			}
			if err != nil {
				l.cfg.Logger.Warn("rebalance: move", "bucket", m.Bucket, "key", m.Key, "err", err)
			}
			l.rebalanced(res, err, false, bytes)
			return nil
		})
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return taken, ctx.Err()
	}
	if mctx.Err() != nil {
		// The map changed: the objects cut short are planned again (the
		// round goes on from the first one taken in).
		return 0, nil
	}
	return taken, err
}

// cancelOnMapChange reads the map every Interval until ctx ends and calls
// cancel once its epoch is no longer epoch.
func (l *Loop) cancelOnMapChange(ctx context.Context, epoch uint64, cancel func()) {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if mp, err := l.md.Map(ctx); err == nil && mp.Epoch() != epoch {
			cancel()
			return
		}
	}
}

// rebalanced counts one object of the moving scan: skipped (not the
// rebalancer's to move now), or moved with res and err; planned is the
// bytes the plan meant to move. It publishes the figures at most every
// PublishEvery.
func (l *Loop) rebalanced(res object.MoveResult, err error, skipped bool, planned int64) {
	l.mu.Lock()
	now := l.cfg.Now()
	rb, rs := &l.rb, &l.stats.Rebalance
	switch {
	case skipped:
		rs.Skipped++
		rb.leftover++
	case res.Conflict:
		rs.Conflicts++
		rb.leftover++ // the newer version is planned again next round
	case err != nil:
		rs.Failures++
		rb.leftover++
	}
	if res.Moved > 0 {
		rs.ObjectsMoved++
		rs.ShardsMoved += int64(res.Moved)
	}
	if res.Moved > 0 || res.Bytes > 0 {
		rs.BytesMoved += res.Bytes
		rb.window = append(rb.window, sample{now, res.Bytes})
	}
	if !skipped {
		rs.ObjectsToMove = max(rs.ObjectsToMove-1, 0)
		rs.BytesToMove = max(rs.BytesToMove-planned, 0)
	}
	l.refreshRebalanceLocked(now)
	l.unlockAndPublish(now)
}

// refreshRebalanceLocked recomputes the rebalance rate over the last
// rateWindow and its ETA. Must hold l.mu.
func (l *Loop) refreshRebalanceLocked(now time.Time) {
	rb, rs := &l.rb, &l.stats.Rebalance
	rs.RateBytesPerSec = windowRate(&rb.window, now, l.cfg.Interval)
	rs.ETASeconds = 0
	if rs.BytesToMove > 0 && rs.RateBytesPerSec > 0 {
		rs.ETASeconds = float64(rs.BytesToMove) / rs.RateBytesPerSec
	}
	if rs.State == "" && l.cfg.Rebalance.Mover != nil && l.cfg.Rebalance.Scanner != nil {
		rs.State = rebalanceIdle
	}
}

// windowRate drops the samples of *w older than rateWindow and returns the
// bytes per second of the rest (over rateWindow, or over the time since the
// first sample when that is shorter, but at least min).
func windowRate(w *[]sample, now time.Time, min time.Duration) float64 {
	cut := 0
	for cut < len(*w) && now.Sub((*w)[cut].at) > rateWindow {
		cut++
	}
	*w = (*w)[cut:]
	var sum int64
	for _, s := range *w {
		sum += s.bytes
	}
	span := rateWindow
	if len(*w) > 0 && now.Sub((*w)[0].at) < span {
		span = max(now.Sub((*w)[0].at), min)
	}
	return float64(sum) / span.Seconds()
}
