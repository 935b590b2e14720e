package repair

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
)

// GarbageMeta is what garbage collection needs of the metadata service
// (*meta.Store, meta/remote's client).
type GarbageMeta interface {
	Map(ctx context.Context) (*cluster.Map, error)
	// GarbageNodes lists every node with at least one queued entry.
	GarbageNodes(ctx context.Context) ([]cluster.NodeID, error)
	ListGarbagePage(ctx context.Context, q meta.GarbageQuery) ([]meta.Garbage, error)
	// HasShard reports whether the node→shard index holds the shard (a
	// committed object's or an upload part's); the collector never deletes
	// such a shard, whatever the garbage queue says.
	HasShard(ctx context.Context, node cluster.NodeID, shardID string) (bool, error)
	RemoveGarbage(ctx context.Context, g []meta.Garbage) error
}

// GarbageConfig tunes a GarbageCollector. Zero fields take the defaults on
// each.
type GarbageConfig struct {
	// OutTimeout bounds each delete on an out node, which may be dead
	// without the map saying so. Default 2s.
	OutTimeout time.Duration
	// OutRetry is how long an out node is left alone after a delete there
	// failed. Default 1m.
	OutRetry time.Duration
	// Concurrency bounds the deletes in flight. Default 8.
	Concurrency int
	// Now is the clock that decides which entries are due. Default
	// time.Now.
	Now func() time.Time
}

func (c *GarbageConfig) setDefaults() {
	if c.OutTimeout <= 0 {
		c.OutTimeout = 2 * time.Second
	}
	if c.OutRetry <= 0 {
		c.OutRetry = time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// GarbageCollector deletes the shards of meta's garbage queue from their
// nodes. It keeps, between calls, which out nodes it has put off and which
// node it serves first; losing that (a restart, a new leader) only costs
// one more try on an out node. Safe for concurrent use, though one
// collector per cluster is the design (the leader's).
type GarbageCollector struct {
	cfg   GarbageConfig
	md    GarbageMeta
	nodes object.Nodes

	mu      sync.Mutex                   // guards outNext, turn
	outNext map[cluster.NodeID]time.Time // out nodes put off, until when
	turn    int                          // rotates the node served first
}

// NewGarbageCollector returns a collector that reads the queue from md and
// deletes through nodes.
func NewGarbageCollector(cfg GarbageConfig, md GarbageMeta, nodes object.Nodes) *GarbageCollector {
	cfg.setDefaults()
	return &GarbageCollector{cfg: cfg, md: md, nodes: nodes, outNext: map[cluster.NodeID]time.Time{}}
}

// nodeGarbage is one node's part of a Collect call: the node and its due
// entries, read page by page.
type nodeGarbage struct {
	id      cluster.NodeID
	n       cluster.Node
	known   bool
	after   *meta.Garbage // listing cursor
	more    bool          // the last page was full
	entries []meta.Garbage
}

// Collect deletes up to limit (≤ 0: 1000) due garbage shards (NotBefore
// passed) from their nodes and forgets them in meta. Deleting is
// idempotent, so a crash between the delete and the removal only repeats
// work. Just before each delete it asks meta whether the shard is
// referenced after all (HasShard); such an entry is forgotten and the
// shard kept, so a commit that lands after its shards were queued (a lost
// reply) loses nothing unless it lands after the entry fell due.
//
// It works node by node (meta lists the queue by node), so no node's
// backlog keeps the others waiting: the limit is shared out among the nodes
// that have due garbage and can be tried now, in equal shares, a node with
// less than its share leaving the rest to the others; the node served first
// rotates from call to call. Shards on down nodes are skipped without
// reading their entries, and retried on a later call. Entries for nodes the
// map no longer knows are dropped. An out node may be dead or alive again
// (it stays out until an operator's "in"), and the map cannot tell which,
// so its stale shards are tried one by one, each delete bounded by
// OutTimeout; the first failure ends the try and leaves the node alone for
// OutRetry (its entries are not even listed then), so a dead out node costs
// at most one OutTimeout per OutRetry, and its entries stay queued without
// being reported as errors. It returns the number of entries removed;
// failures of single deletions on other nodes are returned joined, after
// the successful ones were removed.
func (gc *GarbageCollector) Collect(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 1000
	}
	now := gc.cfg.Now()
	work, err := gc.nodesToTry(ctx, now)
	if err != nil {
		return 0, err
	}
	if err := gc.listDue(ctx, work, limit, now); err != nil {
		return 0, err
	}
	done, errs := gc.delete(ctx, work, now)
	if len(done) > 0 {
		if err := gc.md.RemoveGarbage(ctx, done); err != nil {
			return 0, errors.Join(append(errs, fmt.Errorf("collect garbage: forget %d entries: %w", len(done), err))...)
		}
	}
	return len(done), errors.Join(errs...)
}

// nodesToTry returns the nodes whose garbage this call may touch — known or
// not, but neither down nor out and put off — starting with the one whose
// turn it is.
func (gc *GarbageCollector) nodesToTry(ctx context.Context, now time.Time) ([]*nodeGarbage, error) {
	ids, err := gc.md.GarbageNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("collect garbage: %w", err)
	}
	mp, err := gc.md.Map(ctx)
	if err != nil {
		return nil, fmt.Errorf("collect garbage: fetch cluster map: %w", err)
	}
	var work []*nodeGarbage
	for _, id := range ids {
		n, known := mp.Node(id)
		switch {
		case !known:
		case n.State == cluster.Out:
			if !gc.outDue(id, now) {
				continue
			}
		case !n.State.Readable():
			continue // down: retried on a later call
		}
		work = append(work, &nodeGarbage{id: id, n: n, known: known, more: true})
	}
	if len(work) > 0 {
		gc.mu.Lock()
		turn := gc.turn % len(work)
		gc.turn++
		gc.mu.Unlock()
		work = append(work[turn:], work[:turn]...)
	}
	return work, nil
}

// listDue reads the due entries of the nodes in work, sharing limit among
// them: rounds of equal shares until the limit is spent or every node's
// due entries are read.
func (gc *GarbageCollector) listDue(ctx context.Context, work []*nodeGarbage, limit int, now time.Time) error {
	for budget := limit; budget > 0; {
		active := 0
		for _, w := range work {
			if w.more {
				active++
			}
		}
		if active == 0 {
			return nil
		}
		share := (budget + active - 1) / active
		for _, w := range work {
			if !w.more || budget == 0 {
				continue
			}
			want := min(share, budget)
			page, err := gc.md.ListGarbagePage(ctx, meta.GarbageQuery{Node: w.id, After: w.after, DueBy: now, Limit: want})
			if err != nil {
				return fmt.Errorf("collect garbage on %s: %w", w.id, err)
			}
			w.entries = append(w.entries, page...)
			budget -= len(page)
			w.more = len(page) >= want
			if len(page) > 0 {
				w.after = &page[len(page)-1]
			}
		}
	}
	return nil
}

// delete deletes the listed entries' shards (those of unknown nodes need
// no delete) and returns the entries that may be forgotten and the errors
// to report.
func (gc *GarbageCollector) delete(ctx context.Context, work []*nodeGarbage, now time.Time) ([]meta.Garbage, []error) {
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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(gc.cfg.Concurrency)
	for _, w := range work {
		switch {
		case len(w.entries) == 0:
			continue
		case !w.known:
			for _, gb := range w.entries {
				record(gb, nil)
			}
			continue
		}
		st, err := gc.nodes.Store(w.n)
		if w.n.State == cluster.Out {
			if err != nil {
				gc.outTried(w.id, now, false)
				continue
			}
			g.Go(func() error {
				for _, gb := range w.entries {
					if held, err := gc.live(gctx, gb); err != nil || held {
						record(gb, err)
						continue
					}
					dctx, cancel := context.WithTimeout(gctx, gc.cfg.OutTimeout)
					err := st.Delete(dctx, gb.ShardID)
					cancel()
					if err != nil {
						gc.outTried(w.id, now, false)
						return nil
					}
					record(gb, nil)
				}
				gc.outTried(w.id, now, true)
				return nil
			})
			continue
		}
		if err != nil {
			record(meta.Garbage{}, fmt.Errorf("collect %d shards on %s: dial: %w", len(w.entries), w.id, err))
			continue
		}
		for _, gb := range w.entries {
			g.Go(func() error {
				if held, err := gc.live(gctx, gb); err != nil || held {
					record(gb, err)
					return nil
				}
				if err := st.Delete(gctx, gb.ShardID); err != nil {
					record(gb, fmt.Errorf("collect %s on %s: %w", gb.ShardID, gb.Node, err))
					return nil
				}
				record(gb, nil)
				return nil
			})
		}
	}
	_ = g.Wait() // the goroutines record their errors; none is returned
	return done, errs
}

// live reports whether meta's index holds gb's shard. Such an entry is
// stale (a commit that referenced the shard landed after it was queued —
// e.g. one whose reply was lost and whose writer queued its shards): it is
// forgotten without deleting the shard.
func (gc *GarbageCollector) live(ctx context.Context, gb meta.Garbage) (bool, error) {
	held, err := gc.md.HasShard(ctx, gb.Node, gb.ShardID)
	if err != nil {
		return false, fmt.Errorf("collect %s on %s: check references: %w", gb.ShardID, gb.Node, err)
	}
	return held, nil
}

// outDue reports whether the out node id may be tried at now.
func (gc *GarbageCollector) outDue(id cluster.NodeID, now time.Time) bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return !now.Before(gc.outNext[id])
}

// outTried records the outcome of a try on the out node id: a failure puts
// it off for OutRetry, a success makes it due at once.
func (gc *GarbageCollector) outTried(id cluster.NodeID, now time.Time, ok bool) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if ok {
		delete(gc.outNext, id)
		return
	}
	gc.outNext[id] = now.Add(gc.cfg.OutRetry)
}
