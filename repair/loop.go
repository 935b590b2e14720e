package repair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/pace"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
)

// Meta is what the loop needs of the metadata service (*meta.Store).
type Meta interface {
	Map(ctx context.Context) (*cluster.Map, error)
	Get(ctx context.Context, bucket, key string) (meta.Manifest, error)
	Degraded(ctx context.Context, limit int) ([]meta.DegradedEntry, error)
	ResolveDegraded(ctx context.Context, bucket, key string, gen uint64) error
	BadReports(ctx context.Context, limit int) ([]meta.BadShard, error)
	NodeShards(ctx context.Context, node cluster.NodeID, after string, limit int) ([]meta.ShardKey, error)
	Admin(ctx context.Context, id cluster.NodeID, a meta.AdminAction) error
	// SetRepairStats publishes (and persists) the loop's figures;
	// RepairStats returns the last ones published, by this loop or by one
	// before a restart (ok=false: none ever).
	SetRepairStats(rs meta.RepairStats)
	RepairStats() (rs meta.RepairStats, ok bool)
	// StaleUploads lists up to limit uploads in progress initiated before
	// a time, oldest first; AbortUpload aborts one (its parts' shards
	// become garbage).
	StaleUploads(ctx context.Context, before time.Time, limit int) ([]meta.Upload, error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
}

// Repairer rebuilds one object: *object.Coordinator.
type Repairer interface {
	RepairObject(ctx context.Context, bucket, key string, bad []meta.BadShard, lost object.LostFunc) (object.RepairResult, error)
}

// Config tunes the loop. Zero fields take the defaults on each.
type Config struct {
	// Interval between passes. Default 1s.
	Interval time.Duration
	// Concurrency is the number of objects repaired at once. Default 2.
	Concurrency int
	// PublishEvery is how often, at most, the loop publishes its figures
	// to meta during a pass (each publication is a replicated write, which
	// costs about as much as a repair's own commit); the end of every pass
	// publishes too. Default 1s; negative: after every object.
	PublishEvery time.Duration
	// Rate caps repair traffic (bytes of shards re-created per second) so
	// foreground requests keep their latency. 0: unthrottled. Objects at k
	// healthy shards or fewer bypass it (urgent mode).
	Rate int64
	// Throttle tunes the adaptive throttle (on by default): Concurrency
	// objects in flight while Foreground shows no foreground work, fewer and
	// with pauses while it does. Objects at k healthy shards or fewer bypass
	// it, as they bypass Rate.
	Throttle ThrottleConfig
	// Foreground is the throttle's signal. Nil: the cluster is never busy,
	// and repair runs at Concurrency.
	Foreground Foreground
	// MaxPerPass bounds the candidates examined in one pass. Default 10,000.
	MaxPerPass int
	// Garbage, when set, collects up to GarbagePerPass due garbage entries
	// in every pass, after the orphan inventory. Nil: no collection.
	Garbage *GarbageCollector
	// GarbagePerPass bounds the garbage entries collected per pass. Default 1,000.
	GarbagePerPass int
	// Inventory, when set, does one bounded Step of the orphan inventory
	// in every pass, before garbage collection (which then deletes the
	// orphans it queued). Nil: no inventory.
	Inventory *Inventory
	// AbortUploadsAfter is the age (from initiation) at which a multipart
	// upload still in progress is aborted, as an S3 lifecycle rule
	// AbortIncompleteMultipartUpload would: its parts' shards become
	// garbage. Default 7 days; negative: never. Meta's clock stamps an
	// upload's initiation, Now reads the age: both are the meta host's.
	AbortUploadsAfter time.Duration
	// UploadsPerPass bounds the uploads aborted per pass. Default 100.
	UploadsPerPass int
	// Rebalance, when its Mover and Scanner are set, runs the rebalancer
	// (rebalance.go) in every pass that finds nothing to repair.
	Rebalance RebalanceConfig
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	if c.PublishEvery == 0 {
		c.PublishEvery = time.Second
	}
	if c.MaxPerPass <= 0 {
		c.MaxPerPass = 10_000
	}
	if c.GarbagePerPass <= 0 {
		c.GarbagePerPass = 1000
	}
	if c.AbortUploadsAfter == 0 {
		c.AbortUploadsAfter = DefaultAbortUploadsAfter
	}
	if c.UploadsPerPass <= 0 {
		c.UploadsPerPass = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Rebalance.setDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// DefaultAbortUploadsAfter is Config.AbortUploadsAfter's default.
const DefaultAbortUploadsAfter = 7 * 24 * time.Hour

// Loop is the repair loop beside meta.
type Loop struct {
	cfg   Config
	md    Meta
	rep   Repairer
	limit *pace.Limiter
	thr   *throttle

	mu        sync.Mutex
	resumed   bool // stats, episode and lastEnd were taken from meta
	stats     meta.RepairStats
	window    []sample // bytes repaired recently, for the rate
	firstSeen map[string]time.Time
	episode   time.Time // when the current repair episode began (zero: none)
	// lastEnd is when the map was read by the pass that ended the last
	// episode: a node that went out (cluster.Node.Since) before it was
	// part of that episode.
	lastEnd time.Time
	outSeen map[cluster.NodeID]bool

	lastFailures int // failures logged last, and when
	lastLogged   time.Time
	published    time.Time // when record last published the figures

	rb rebalancer // where the rebalance round is (rebalance.go)
}

type sample struct {
	at    time.Time
	bytes int64
}

// NewLoop returns a loop; Run drives it.
func NewLoop(cfg Config, md Meta, rep Repairer) *Loop {
	cfg.setDefaults()
	return &Loop{
		cfg: cfg, md: md, rep: rep,
		limit:     pace.New(pace.Config{Rate: cfg.Rate, Now: cfg.Now}),
		thr:       newThrottle(cfg.Throttle, cfg.Concurrency, cfg.Foreground, cfg.Now),
		firstSeen: map[string]time.Time{},
	}
}

// Run makes a pass every Interval until ctx is done. Errors of one pass are
// logged and the next pass tries again. Run may be called again once it
// has returned — a new term of leadership (internal/leader) — and then
// starts as a new loop would: what the loop knew in memory may be stale
// (another leader may have repaired and published meanwhile), so it
// resumes from the figures in meta.
func (l *Loop) Run(ctx context.Context) error {
	l.newTerm()
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := l.Pass(ctx); err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("repair pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PassResult says what one pass did.
type PassResult struct {
	Candidates int
	Repaired   int
	Shards     int
	Bytes      int64
	Conflicts  int
	Failures   int
	Garbage    int
	Orphans    int // unreferenced shards the inventory queued as garbage
	// StaleUploads is the number of incomplete multipart uploads aborted
	// for their age (Config.AbortUploadsAfter).
	StaleUploads int
	// More: the pass stopped looking at MaxPerPass objects, so others may
	// need repair too (the next pass finds them); the episode goes on.
	More bool
}

// Pass does one round of the leader's background work, in order of
// urgency (DESIGN.md: repair, then rebalance, then lifecycle, then
// garbage), each a step below: it reads the membership, repairs what the
// repair queue holds riskiest first, moves shards whose placement changed
// when there was nothing to repair (rebalanceStep), aborts stale multipart uploads, steps the orphan
// inventory, collects garbage, retires drained nodes and publishes its
// figures. An error of the first two steps ends the pass (the next pass
// starts over from meta); the later steps log theirs and the pass goes on.
func (l *Loop) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	l.resume()
	l.thr.observe()
	now := l.cfg.Now() // before the map: a node out after now is not in it
	mp, err := l.observeMembership(ctx, now)
	if err != nil {
		return res, fmt.Errorf("repair pass: %w", err)
	}
	if err := l.repairQueue(ctx, mp, now, &res); err != nil {
		return res, err
	}
	if res.Candidates == 0 && !res.More { // repair first, always
		if err := l.rebalanceStep(ctx, mp); err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("rebalance", "err", err)
		}
	}
	res.StaleUploads = l.abortStaleUploads(ctx, now)
	res.Orphans = l.stepInventory(ctx)
	res.Garbage = l.collectGarbage(ctx)
	l.retireDrained(ctx, mp)
	l.endPass(res, now)
	return res, nil
}

// observeMembership reads the cluster map and starts a repair episode for
// every node newly out or draining (noteOutNodes).
func (l *Loop) observeMembership(ctx context.Context, now time.Time) (*cluster.Map, error) {
	mp, err := l.md.Map(ctx)
	if err != nil {
		return nil, err
	}
	l.noteOutNodes(mp, now)
	return mp, nil
}

// objKey names an object in the loop's maps.
func objKey(bucket, key string) string { return bucket + "\x00" + key }

// repairQueue finds the objects that need repair (candidates) and repairs
// them riskiest first (repairAll), counting into res; an object that
// needs nothing more leaves meta's degraded queue. Repairs that failed are
// logged (logFailures) and retried next pass; an error is returned only
// when meta could not be read or ctx ended.
func (l *Loop) repairQueue(ctx context.Context, mp *cluster.Map, now time.Time, res *PassResult) error {
	reports, err := l.md.BadReports(ctx, l.cfg.MaxPerPass)
	if err != nil {
		return fmt.Errorf("repair pass: %w", err)
	}
	badByKey := map[string][]meta.BadShard{}
	for _, b := range reports {
		k := objKey(b.Bucket, b.Key)
		badByKey[k] = append(badByKey[k], b)
	}
	cands, queued, err := l.candidates(ctx, mp, now, badByKey, res)
	if err != nil {
		return fmt.Errorf("repair pass: %w", err)
	}
	first, err := l.repairAll(ctx, cands, badByKey, queued, res)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("repair pass: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	l.logFailures(res.Failures, first, now)
	return nil
}

// candidates assesses every object that may need repair — the degraded
// queue, plus every object with a shard on an out or draining node, at
// most MaxPerPass (res.More says there are more) — and returns those that
// do, setting the queue figures, and the objKeys of those that were in
// meta's degraded queue. An object that needs nothing is resolved in meta's
// degraded queue.
func (l *Loop) candidates(ctx context.Context, mp *cluster.Map, now time.Time, badByKey map[string][]meta.BadShard, res *PassResult) ([]Candidate, map[string]bool, error) {
	type ref struct{ bucket, key string }
	seen := map[ref]bool{}
	var keys []ref
	addKey := func(bucket, key string) {
		r := ref{bucket, key}
		switch {
		case seen[r]:
		case len(keys) >= l.cfg.MaxPerPass:
			res.More = true
		default:
			seen[r] = true
			keys = append(keys, r)
		}
	}
	deg, err := l.md.Degraded(ctx, l.cfg.MaxPerPass)
	if err != nil {
		return nil, nil, err
	}
	queued := make(map[string]bool, len(deg))
	for _, d := range deg {
		addKey(d.Bucket, d.Key)
		queued[objKey(d.Bucket, d.Key)] = true
	}
	res.More = res.More || len(deg) >= l.cfg.MaxPerPass
	for _, n := range mp.InState(cluster.Out, cluster.Draining) {
		after := ""
		for !res.More {
			sks, err := l.md.NodeShards(ctx, n.ID, after, 1000)
			if err != nil {
				return nil, nil, fmt.Errorf("shards of %s: %w", n.ID, err)
			}
			if len(sks) == 0 {
				break
			}
			for _, sk := range sks {
				if sk.Key != "" {
					addKey(sk.Bucket, sk.Key)
				}
			}
			after = sks[len(sks)-1].ShardID
		}
	}

	var cands []Candidate
	var queueBytes int64
	for _, r := range keys {
		m, err := l.md.Get(ctx, r.bucket, r.key)
		if errors.Is(err, meta.ErrNoSuchKey) || errors.Is(err, meta.ErrNoSuchBucket) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		bad := badByKey[objKey(r.bucket, r.key)]
		isBad := func(seg, idx int) bool {
			for _, b := range bad {
				if b.Generation <= m.Generation && b.Segment == seg && b.Index == idx && seg < len(m.Segments) &&
					idx < len(m.Segments[seg].Shards) && m.Segments[seg].Shards[idx].ID == b.ShardID {
					return true
				}
			}
			return false
		}
		since := l.since(objKey(r.bucket, r.key), now)
		c, need := Assess(m, mp, isBad, since)
		if !need {
			if err := l.md.ResolveDegraded(ctx, m.Bucket, m.Key, m.Generation); err != nil {
				return nil, nil, err
			}
			l.forget(objKey(r.bucket, r.key))
			continue
		}
		cands = append(cands, c)
		queueBytes += c.LostBytes
	}
	res.Candidates = len(cands)
	l.setQueue(len(cands), queueBytes)
	return cands, queued, nil
}

// repairAll repairs cands in Plan's order, at most Concurrency at a time,
// each admitted by the adaptive throttle (fewer in flight, with pauses,
// while there is foreground work) and then through the byte-rate
// throttle, both unless urgent, and counts the outcomes into res.
// An object made whole leaves meta's degraded queue (ResolveDegraded) when
// it was in it (queued) or had bad reports; an object that entered the
// queue after the pass read it is resolved by the next pass, which finds it
// whole. No meta write is made under mu, so the workers' commits overlap.
// It returns the first repair's error (for logFailures) and the error
// that stopped it: ctx's, the throttle's or meta's.
func (l *Loop) repairAll(ctx context.Context, cands []Candidate, badByKey map[string][]meta.BadShard, queued map[string]bool, res *PassResult) (firstErr, err error) {
	var mu sync.Mutex // guards res, firstErr
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(l.cfg.Concurrency)
	for _, c := range Plan(cands) {
		// Admission here, in Plan's order, keeps the riskiest first.
		if err := l.thr.admit(gctx, c.Urgent()); err != nil {
			break // gctx ended: g.Wait says why
		}
		g.Go(func() error {
			var took time.Duration // the repair's own time, for the throttle's pause
			defer func() { l.thr.done(took) }()
			if !c.Urgent() {
				if err := l.limit.Wait(gctx, c.LostBytes); err != nil {
					return err
				}
			}
			k := objKey(c.Bucket, c.Key)
			start := l.cfg.Now()
			rr, err := l.rep.RepairObject(gctx, c.Bucket, c.Key, badByKey[k], nil)
			took = l.cfg.Now().Sub(start)
			gone := errors.Is(err, meta.ErrNoSuchKey) || errors.Is(err, meta.ErrNoSuchBucket)
			whole := err == nil && !rr.Conflict && rr.Remaining == 0
			l.record(rr, err, gone, gone || whole, c.LostBytes)
			var rerr error // of ResolveDegraded
			if whole && (queued[k] || len(badByKey[k]) > 0) {
				rerr = l.md.ResolveDegraded(gctx, c.Bucket, c.Key, rr.Generation)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Shards += rr.Rebuilt
			res.Bytes += rr.Bytes
			switch {
			case gone:
				l.forget(k)
			case err != nil:
				res.Failures++
				if firstErr == nil {
					firstErr = fmt.Errorf("%s/%s: %w", c.Bucket, c.Key, err)
				}
			case rr.Conflict:
				res.Conflicts++ // the next pass looks at the new version
			case rr.Remaining == 0:
				res.Repaired++
				if rerr != nil {
					return rerr
				}
				l.forget(k)
			}
			return nil
		})
	}
	err = g.Wait()
	return firstErr, err
}

// abortStaleUploads is the lifecycle step: it aborts the uploads that
// abortStale finds too old and returns how many; its error is logged.
func (l *Loop) abortStaleUploads(ctx context.Context, now time.Time) int {
	n, err := l.abortStale(ctx, now)
	if err != nil && ctx.Err() == nil {
		l.cfg.Logger.Warn("abort stale uploads", "err", err)
	}
	return n
}

// stepInventory does one bounded step of the orphan inventory (if any),
// before garbage collection so the orphans it queues are deleted once due,
// and returns the orphans it queued; its error is logged.
func (l *Loop) stepInventory(ctx context.Context) int {
	if l.cfg.Inventory == nil {
		return 0
	}
	sr, err := l.cfg.Inventory.Step(ctx)
	if err != nil && ctx.Err() == nil {
		l.cfg.Logger.Warn("orphan inventory", "err", err)
	}
	return sr.Queued
}

// collectGarbage deletes up to GarbagePerPass due garbage shards (if a
// collector is set) and returns how many entries it removed; its error is
// logged.
func (l *Loop) collectGarbage(ctx context.Context) int {
	if l.cfg.Garbage == nil {
		return 0
	}
	n, err := l.cfg.Garbage.Collect(ctx, l.cfg.GarbagePerPass)
	if err != nil {
		l.cfg.Logger.Warn("collect garbage", "err", err)
	}
	return n
}

// retireDrained marks out every draining node of mp that holds no object's
// shard any more. Parts of uploads still in progress do not hold it back
// (repair does not move them, and an abandoned upload would keep the node
// draining forever): once their upload completes, their node being out
// makes repair re-create them like any other shard. Errors are logged.
func (l *Loop) retireDrained(ctx context.Context, mp *cluster.Map) {
	for _, nd := range mp.InState(cluster.Draining) {
		drained, err := l.holdsOnlyParts(ctx, nd.ID)
		if err == nil && drained {
			if err := l.md.Admin(ctx, nd.ID, meta.ActionOut); err != nil {
				l.cfg.Logger.Warn("retire drained node", "node", nd.ID, "err", err)
			}
		}
	}
}

// abortStale aborts up to UploadsPerPass uploads initiated more than
// AbortUploadsAfter before now, oldest first, and returns how many it
// aborted. One completed or aborted meanwhile is skipped.
func (l *Loop) abortStale(ctx context.Context, now time.Time) (int, error) {

	if l.cfg.AbortUploadsAfter < 0 {
		return 0, nil
	}
	us, err := l.md.StaleUploads(ctx, now.Add(-l.cfg.AbortUploadsAfter), l.cfg.UploadsPerPass)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range us {
		err := l.md.AbortUpload(ctx, u.Bucket, u.Key, u.ID)
		if errors.Is(err, meta.ErrNoSuchUpload) || errors.Is(err, meta.ErrNoSuchBucket) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("abort upload %s of %s/%s: %w", u.ID, u.Bucket, u.Key, err)
		}
		l.cfg.Logger.Info("aborted stale multipart upload", "bucket", u.Bucket, "key", u.Key, "upload", u.ID, "initiated", u.Created)
		n++
	}
	return n, nil
}

// holdsOnlyParts reports whether every shard meta places on node belongs to
// an upload still in progress (or there are none).
func (l *Loop) holdsOnlyParts(ctx context.Context, node cluster.NodeID) (bool, error) {
	after := ""
	for {
		sks, err := l.md.NodeShards(ctx, node, after, 1000)
		if err != nil {
			return false, err
		}
		for _, sk := range sks {
			if sk.UploadID == "" {
				return false, nil
			}
		}
		if len(sks) < 1000 {
			return true, nil
		}
		after = sks[len(sks)-1].ShardID
	}
}

// logFailures says once per pass how many repairs failed, and repeats an
// unchanged count at most every logEvery: a cluster too small to re-place an
// out node's shards would otherwise log every object every second.
func (l *Loop) logFailures(n int, first error, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == 0 {
		l.lastFailures = 0
		return
	}
	if n == l.lastFailures && now.Sub(l.lastLogged) < logEvery {
		return
	}
	l.lastFailures, l.lastLogged = n, now
	l.cfg.Logger.Warn("repair pass: objects not repaired (retried next pass)", "count", n, "first", first)
}

const logEvery = 30 * time.Second

// newTerm forgets what the loop learnt in memory, so the next pass resumes
// from meta.
func (l *Loop) newTerm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resumed = false
	l.window = nil
	l.firstSeen = map[string]time.Time{}
	l.episode, l.lastEnd = time.Time{}, time.Time{}
	l.outSeen = nil
	l.lastFailures, l.lastLogged = 0, time.Time{}
	l.rb = rebalancer{} // the next pass plans a round from scratch
}

// resume takes, once, the figures a loop before this one published (a
// restart of meta restarts the loop): the counters carry on, and so do the
// episode in progress and the end of the last one.
func (l *Loop) resume() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.resumed {
		return
	}
	l.resumed = true
	rs, ok := l.md.RepairStats()
	if !ok {
		return
	}
	rs.RateBytesPerSec, rs.ETASeconds, rs.QueueBytes, rs.QueueObjects = 0, 0, 0, 0
	rs.Throttle = meta.RepairThrottle{}
	r := &rs.Rebalance
	r.State, r.ObjectsToMove, r.BytesToMove, r.Planned, r.RateBytesPerSec, r.ETASeconds = "", 0, 0, 0, 0, 0
	r.RoundStart = time.Time{}
	l.stats = rs
	l.episode, l.lastEnd = rs.EpisodeStart, rs.LastEpisodeEnd
}

// noteOutNodes starts a repair episode when a node newly goes out or starts
// draining. The episode begins when the node did (its Since, kept by meta),
// so a loop that starts late — after a restart of meta — still times it
// from the node's departure. A node that went out before the last episode
// ended was part of it. Nodes without a Since (recorded by an older meta)
// that a fresh loop finds out already are taken as old news.
func (l *Loop) noteOutNodes(mp *cluster.Map, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.outSeen == nil
	cur := map[cluster.NodeID]bool{}
	for _, n := range mp.InState(cluster.Out, cluster.Draining) {
		cur[n.ID] = true
		if l.outSeen[n.ID] || (first && n.Since.IsZero()) {
			continue
		}
		start := now
		if !n.Since.IsZero() && n.Since.Before(now) {
			start = n.Since
		}
		if !l.lastEnd.IsZero() && !start.After(l.lastEnd) {
			continue
		}
		if l.episode.IsZero() || start.Before(l.episode) {
			l.episode = start
		}
	}
	l.outSeen = cur
	l.stats.EpisodeStart = l.episode
}

func (l *Loop) since(k string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.firstSeen[k]
	if !ok {
		t = now
		l.firstSeen[k] = t
	}
	return t
}

func (l *Loop) forget(k string) {
	l.mu.Lock()
	delete(l.firstSeen, k)
	l.mu.Unlock()
}

// record counts one object's repair and publishes the figures to meta when
// PublishEvery has passed since it last did: a throttled pass can run for
// minutes, and status must show its progress (queue left, rate, ETA) then,
// not the figures of the pass before; but a publication is a replicated
// write, and one per object would cost as much as the repairs' own commits.
// done says the object needs nothing more (whole, or gone): it leaves the
// queue with its lost bytes. gone is not a failure.
func (l *Loop) record(rr object.RepairResult, err error, gone, done bool, lost int64) {
	l.mu.Lock()
	now := l.cfg.Now()
	l.stats.ShardsRepaired += int64(rr.Rebuilt)
	l.stats.BytesRepaired += rr.Bytes
	if rr.Bytes > 0 {
		l.window = append(l.window, sample{now, rr.Bytes})
	}
	if err == nil && rr.Rebuilt > 0 && !rr.Conflict {
		l.stats.ObjectsRepaired++
	}
	if rr.Conflict {
		l.stats.Conflicts++
	}
	if err != nil && !gone {
		l.stats.Failures++
	}
	if done {
		l.stats.QueueObjects = max(l.stats.QueueObjects-1, 0)
		l.stats.QueueBytes = max(l.stats.QueueBytes-lost, 0)
	}
	l.refreshLocked(now)
	l.unlockAndPublish(now)
}

// unlockAndPublish releases l.mu (which the caller holds) and publishes
// the figures to meta when PublishEvery has passed since they last were.
func (l *Loop) unlockAndPublish(now time.Time) {
	st := l.stats
	publish := l.cfg.PublishEvery < 0 || now.Sub(l.published) >= l.cfg.PublishEvery
	if publish {
		l.published = now
	}
	l.mu.Unlock()
	if publish {
		l.md.SetRepairStats(st)
	}
}

const rateWindow = 30 * time.Second

// setQueue starts a pass's queue: its candidates and their lost bytes.
func (l *Loop) setQueue(objects int, bytes int64) {
	l.mu.Lock()
	l.stats.QueueObjects = int64(objects)
	l.stats.QueueBytes = bytes
	l.refreshLocked(l.cfg.Now())
	st := l.stats
	l.mu.Unlock()
	l.md.SetRepairStats(st)
}

// refreshLocked recomputes the rate over the last rateWindow and the ETA
// (queue bytes left over the rate; 0 when nothing is left or no rate is
// known yet), and stamps the figures. Must hold l.mu.
func (l *Loop) refreshLocked(now time.Time) {
	l.stats.RateBytesPerSec = windowRate(&l.window, now, l.cfg.Interval)
	l.stats.ETASeconds = 0
	if l.stats.QueueBytes > 0 && l.stats.RateBytesPerSec > 0 {
		l.stats.ETASeconds = float64(l.stats.QueueBytes) / l.stats.RateBytesPerSec
	}
	l.stats.Updated = now
	ts := l.thr.status()
	l.stats.Throttle = meta.RepairThrottle{State: ts.State, Limit: ts.Limit, InFlight: ts.InFlight,
		ForegroundRate: ts.FGRate, PauseSeconds: ts.Pause.Seconds(), Reason: ts.Reason}
	l.refreshRebalanceLocked(now)
}

// endPass publishes the pass's figures. A pass that found nothing to do, or
// repaired everything it found and did not stop at MaxPerPass, ends the
// episode in progress: the time from
// its start is the time-to-repair. start is when the pass read the map.
func (l *Loop) endPass(res PassResult, start time.Time) {
	l.mu.Lock()
	now := l.cfg.Now()
	if !res.More && (res.Candidates == 0 || res.Candidates == res.Repaired) {
		l.stats.QueueBytes, l.stats.QueueObjects = 0, 0
		if !l.episode.IsZero() {
			l.stats.LastTimeToRepairSeconds = now.Sub(l.episode).Seconds()
			l.episode, l.lastEnd = time.Time{}, start
			l.stats.EpisodeStart, l.stats.LastEpisodeEnd = l.episode, l.lastEnd
		}
	}
	l.refreshLocked(now)
	st := l.stats
	l.mu.Unlock()
	l.md.SetRepairStats(st)
}

// Stats returns the loop's latest figures.
func (l *Loop) Stats() meta.RepairStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}
