package repair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// ShardLister is the part of a node's shard store (storage.Store) the
// inventory reads: List's contract is storage.Store's (up to limit shards
// after `after` in id order, possibly fewer; an empty page is the end).
type ShardLister interface {
	List(ctx context.Context, prefix, after string, limit int) ([]storage.Info, error)
}

// Listers dials the shard store of a node for listing. Lister must be cheap
// (callers cache connections), safe for concurrent use and do no I/O that can
// hang.
type Listers interface {
	Lister(n cluster.Node) (ShardLister, error)
}

// ListerFunc adapts a function to Listers.
type ListerFunc func(n cluster.Node) (ShardLister, error)

// Lister calls f(n).
func (f ListerFunc) Lister(n cluster.Node) (ShardLister, error) { return f(n) }

// InventoryMeta is what the inventory needs of meta (*meta.Store).
type InventoryMeta interface {
	Map(ctx context.Context) (*cluster.Map, error)
	// HasShard is a point read of the node→shard index: shards of committed
	// objects and of parts of uploads in progress.
	HasShard(ctx context.Context, node cluster.NodeID, shardID string) (bool, error)
	ListGarbage(ctx context.Context, limit int) ([]meta.Garbage, error)
	// AddGarbage skips shards the index holds, checked under meta's lock.
	AddGarbage(ctx context.Context, g []meta.Garbage) error
}

// InventoryConfig tunes the inventory. Zero fields take the defaults on
// each.
type InventoryConfig struct {
	// Grace is how old (by the shard's Created time, the node's clock) an
	// unreferenced shard must be before it is queued as garbage. It must be
	// longer than any write takes from a shard's Put returning to the commit
	// that references it (a PUT's manifest, a part, a repair's shard
	// update) — seconds in practice, bounded by object.Config.WriteStall
	// and meta latency — plus the clock skew between nodes and meta.
	// Default 1h.
	Grace time.Duration
	// Every is the least time from the start of one sweep (one listing of
	// every readable node) to the start of the next. Default 10m.
	Every time.Duration
	// PagesPerStep bounds the List calls of one Step, so a step never
	// dominates the repair pass it runs in. Default 4.
	PagesPerStep int
	// PageSize is the limit passed to List. Default 1000.
	PageSize int
	// ListTimeout bounds one List call; a node that does not answer is
	// skipped for this sweep. Default 10s.
	ListTimeout time.Duration
	// GarbageScan bounds the queued garbage entries a step reads (once, and
	// only when it found an unreferenced old shard) to skip shards that are
	// already queued. Beyond it the check is best effort: a shard may then
	// be queued twice, which only costs a second, idempotent delete.
	// Default 10,000.
	GarbageScan int
	// Now is meta's clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *InventoryConfig) setDefaults() {
	if c.Grace <= 0 {
		c.Grace = time.Hour
	}
	if c.Every <= 0 {
		c.Every = 10 * time.Minute
	}
	if c.PagesPerStep <= 0 {
		c.PagesPerStep = 4
	}
	if c.PageSize <= 0 {
		c.PageSize = 1000
	}
	if c.ListTimeout <= 0 {
		c.ListTimeout = 10 * time.Second
	}
	if c.GarbageScan <= 0 {
		c.GarbageScan = 10_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Inventory finds orphan shards — stored on a node, older than Grace, and
// referenced by no manifest, no part of an upload in progress and no queued
// garbage entry — and queues them as garbage, so the collector
// (GarbageCollector.Collect) deletes them. Orphans are what a
// gateway that crashed mid-PUT (or mid-repair) leaves behind: it wrote shards
// and never committed them nor queued them as garbage.
//
// A sweep lists every node that is readable (up, full, draining) when the
// sweep reaches it, page by page, in shard id order. Each Step does a
// bounded slice of the current sweep; a new sweep starts at most once per
// Every. Down and out nodes are skipped: their shards cannot be listed, and
// their queued garbage is the collector's business.
//
// Why the grace makes this safe: every writer stores a shard before the
// commit that references it (a PUT commits its manifest, a part upload its
// part, a repair its shard update). A shard the index does not hold is
// either garbage or part of a write whose commit is still to come; the
// latter is younger than Grace, because a write that has held its shards
// longer than any write takes has failed. The orphan is queued due at once
// (NotBefore = Created+Grace, already past), which also makes queuing it
// again on a later sweep a no-op.
//
// What it trusts: that meta's node→shard index is complete (a meta restored
// from an old backup would make the shards of newer objects look like
// orphans — run with the inventory off then), and that node clocks are
// within much less than Grace of meta's (a node whose clock is behind makes
// its shards look older).
//
// An Inventory's methods may be called from several goroutines; Steps run
// one at a time.
type Inventory struct {
	cfg   InventoryConfig
	md    InventoryMeta
	nodes Listers

	stepMu   sync.Mutex // held for a whole Step; guards the fields below
	sweeping bool
	started  time.Time        // start of the current or last sweep (zero: none yet)
	todo     []cluster.NodeID // nodes left in the current sweep, current first
	after    string           // cursor in todo[0]
	sweep    SweepStats       // the sweep in progress

	statsMu sync.Mutex // guards stats
	stats   InventoryStats
}

// SweepStats counts one sweep.
type SweepStats struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"` // zero while it runs
	Nodes    int       `json:"nodes"`    // nodes listed to the end
	Listed   int64     `json:"listed"`   // shards listed
	Queued   int64     `json:"queued"`   // orphans queued as garbage
	Failed   int       `json:"failed"`   // nodes skipped after an error
}

// InventoryStats is the inventory's running total.
type InventoryStats struct {
	Sweeps int64 `json:"sweeps"` // finished
	Queued int64 `json:"queued"` // orphans queued, all sweeps
	// Last is the last finished sweep.
	Last SweepStats `json:"last"`
}

// StepResult says what one Step did.
type StepResult struct {
	Pages  int // List calls made
	Listed int // shards listed
	Queued int // orphans queued as garbage
	// Finished: the sweep ended in this step.
	Finished bool
}

// NewInventory returns an inventory; call Step (the repair loop does, once
// per pass, when Config.Inventory is set).
func NewInventory(cfg InventoryConfig, md InventoryMeta, nodes Listers) *Inventory {
	cfg.setDefaults()
	return &Inventory{cfg: cfg, md: md, nodes: nodes}
}

// Step advances the sweep by at most PagesPerStep pages, starting a new
// sweep when none runs and Every has passed since the last one started. A
// node whose dial or List fails is skipped for the rest of the sweep and its
// error returned (joined) once the step is done; a failure of meta ends the
// step at once and the step after retries the same page.
func (inv *Inventory) Step(ctx context.Context) (StepResult, error) {
	inv.stepMu.Lock()
	defer inv.stepMu.Unlock()
	var res StepResult
	now := inv.cfg.Now()
	if !inv.sweeping && !inv.started.IsZero() && now.Sub(inv.started) < inv.cfg.Every {
		return res, nil
	}
	mp, err := inv.md.Map(ctx)
	if err != nil {
		return res, fmt.Errorf("orphan inventory: %w", err)
	}
	if !inv.sweeping {
		inv.sweeping, inv.started, inv.after = true, now, ""
		inv.todo = inv.todo[:0]
		for _, n := range mp.Nodes() {
			inv.todo = append(inv.todo, n.ID)
		}
		inv.sweep = SweepStats{Started: now}
	}
	var (
		queued map[garbageAddr]bool // loaded on first need
		errs   []error
	)
	for res.Pages < inv.cfg.PagesPerStep && len(inv.todo) > 0 {
		id := inv.todo[0]
		n, ok := mp.Node(id)
		if !ok || !n.State.Readable() {
			inv.nextNode()
			continue
		}
		l, err := inv.nodes.Lister(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("orphan inventory of %s: dial: %w", id, err))
			inv.sweep.Failed++
			inv.nextNode()
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, inv.cfg.ListTimeout)
		page, err := l.List(lctx, "", inv.after, inv.cfg.PageSize)
		cancel()
		res.Pages++
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("orphan inventory of %s after %q: %w", id, inv.after, err))
			inv.sweep.Failed++
			inv.nextNode()
			continue
		}
		if len(page) == 0 {
			inv.sweep.Nodes++
			inv.nextNode()
			continue
		}
		var orphans []meta.Garbage
		for _, in := range page {
			if in.Created.IsZero() || now.Sub(in.Created) < inv.cfg.Grace {
				continue
			}
			held, err := inv.md.HasShard(ctx, id, in.ID)
			if err != nil {
				return res, errors.Join(append(errs, fmt.Errorf("orphan inventory of %s: %w", id, err))...)
			}
			if held {
				continue
			}
			if queued == nil {
				if queued, err = inv.queuedGarbage(ctx); err != nil {
					return res, errors.Join(append(errs, fmt.Errorf("orphan inventory of %s: %w", id, err))...)
				}
			}
			if queued[garbageAddr{id, in.ID}] {
				continue
			}
			orphans = append(orphans, meta.Garbage{Node: id, ShardID: in.ID, NotBefore: in.Created.Add(inv.cfg.Grace)})
		}
		if len(orphans) > 0 {
			if err := inv.md.AddGarbage(ctx, orphans); err != nil {
				return res, errors.Join(append(errs, fmt.Errorf("orphan inventory of %s: %w", id, err))...)
			}
		}
		inv.after = page[len(page)-1].ID
		res.Listed += len(page)
		res.Queued += len(orphans)
		inv.sweep.Listed += int64(len(page))
		inv.sweep.Queued += int64(len(orphans))
		inv.statsMu.Lock()
		inv.stats.Queued += int64(len(orphans))
		inv.statsMu.Unlock()
	}
	if len(inv.todo) == 0 {
		inv.sweeping, res.Finished = false, true
		inv.sweep.Finished = inv.cfg.Now()
		inv.statsMu.Lock()
		inv.stats.Sweeps++
		inv.stats.Last = inv.sweep
		inv.statsMu.Unlock()
		if inv.sweep.Queued > 0 {
			inv.cfg.Logger.Info("orphan inventory: queued unreferenced shards as garbage",
				"orphans", inv.sweep.Queued, "listed", inv.sweep.Listed, "nodes", inv.sweep.Nodes)
		}
	}
	return res, errors.Join(errs...)
}

// nextNode moves the sweep to the next node.
func (inv *Inventory) nextNode() {
	inv.todo = inv.todo[1:]
	inv.after = ""
}

type garbageAddr struct {
	node cluster.NodeID
	id   string
}

// queuedGarbage returns the first GarbageScan queued garbage entries as a
// set.
func (inv *Inventory) queuedGarbage(ctx context.Context) (map[garbageAddr]bool, error) {
	gs, err := inv.md.ListGarbage(ctx, inv.cfg.GarbageScan)
	if err != nil {
		return nil, err
	}
	out := make(map[garbageAddr]bool, len(gs))
	for _, g := range gs {
		out[garbageAddr{g.Node, g.ShardID}] = true
	}
	return out, nil
}

// Stats returns the running totals.
func (inv *Inventory) Stats() InventoryStats {
	inv.statsMu.Lock()
	defer inv.statsMu.Unlock()
	return inv.stats
}
