package meta

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/shale-store/shale/cluster"
)

// applyReportBad records a report of a missing or corrupt shard and
// queues its object for repair. Only Node and ShardID need be set (a
// scrubber knows no more): the rest is resolved through the node→shard
// index. A report for a shard the index does not hold (already replaced,
// deleted or never committed) is ignored. A report against a part of an
// upload in progress is recorded and queues the object when the upload
// completes. Reported defaults to the command's time. Idempotent.
func (s *Store) applyReportBad(t *txn, c *Command) (Result, error) {
	bs := *c.Bad
	v, ok, err := s.get(shardIndexKey(bs.Node, bs.ShardID))
	if err != nil {
		return Result{}, fmt.Errorf("report bad shard %s on %s: %w", bs.ShardID, bs.Node, err)
	}
	if !ok {
		return Result{}, nil
	}
	if err := decodeJSON(v, &bs.ShardKey, "shard index"); err != nil {
		return Result{}, fmt.Errorf("report bad shard %s on %s: %w", bs.ShardID, bs.Node, err)
	}
	if bs.Reported.IsZero() {
		bs.Reported = t.now
	}
	_ = t.b.Set(badKey(bs.Node, bs.ShardID), mustJSON(bs), nil)
	if bs.UploadID == "" {
		if err := s.setDegradedInBatch(t, bs.Bucket, bs.Key, true, bs.Generation); err != nil {
			return Result{}, fmt.Errorf("report bad shard %s on %s: %w", bs.ShardID, bs.Node, err)
		}
	}
	t.sync = true
	return Result{}, nil
}

// BadReports returns up to limit recorded bad-shard reports, by node then
// shard id (limit ≤ 0: 1000). A report disappears when its shard is
// replaced or its object deleted, or by ResolveDegraded.
func (s *Store) BadReports(ctx context.Context, limit int) ([]BadShard, error) {
	if limit <= 0 {
		limit = 1000
	}
	defer s.read()()
	out := []BadShard{}
	err := s.scan(ctx, pfxBad, prefixEnd(pfxBad), func(_, v []byte) (bool, error) {
		var bs BadShard
		if err := decodeJSON(v, &bs, "bad report"); err != nil {
			return false, err
		}
		out = append(out, bs)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bad reports: %w", err)
	}
	return out, nil
}

// NodeShards lists the shards meta believes are on node — of committed
// objects and of parts of uploads in progress — ordered by shard id,
// starting strictly after the shard id after, up to limit (≤ 0: 1000). It
// is one prefix scan of the node→shard index.
func (s *Store) NodeShards(ctx context.Context, node cluster.NodeID, after string, limit int) ([]ShardKey, error) {
	if err := cluster.ValidateNodeID(node); err != nil {
		return nil, fmt.Errorf("shards of %s: %w: %v", node, ErrInvalidArgument, err)
	}
	if limit <= 0 {
		limit = 1000
	}
	defer s.read()()
	p := shardIndexPrefix(node)
	lo := p
	if after != "" {
		lo = keySuccessor(shardIndexKey(node, after))
	}
	out := []ShardKey{}
	err := s.scan(ctx, lo, prefixEnd(p), func(_, v []byte) (bool, error) {
		var sk ShardKey
		if err := decodeJSON(v, &sk, "shard index"); err != nil {
			return false, err
		}
		out = append(out, sk)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("shards of %s after %q: %w", node, after, err)
	}
	return out, nil
}

// HasShard reports whether the node→shard index holds shardID on node — a
// shard of a committed object or of a part of an upload in progress. It is
// one point read. The answer may be stale by the time the caller acts on it;
// AddGarbage checks the index again under its lock, so a shard that became
// referenced meanwhile is still never queued.
func (s *Store) HasShard(ctx context.Context, node cluster.NodeID, shardID string) (bool, error) {
	if err := cluster.ValidateNodeID(node); err != nil || shardID == "" {
		return false, fmt.Errorf("has shard %q on %s: %w", shardID, node, ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	defer s.read()()
	ok, err := s.has(shardIndexKey(node, shardID))
	if err != nil {
		return false, fmt.Errorf("has shard %s on %s: %w", shardID, node, err)
	}
	return ok, nil
}

// applyAddGarbage queues shards for deletion (a PUT that failed before its
// commit leaves them). A zero NotBefore becomes the command's time +
// GarbageGrace. Entries without a node or shard id, and shards the
// node→shard index still holds (referenced by a manifest or a part), are
// skipped, so live data is never queued. Idempotent for equal entries.
func (s *Store) applyAddGarbage(t *txn, c *Command) (Result, error) {
	for _, g := range c.Garbage {
		if g.Node == "" || g.ShardID == "" || cluster.ValidateNodeID(g.Node) != nil {
			continue
		}
		live, err := s.has(shardIndexKey(g.Node, g.ShardID))
		if err != nil {
			return Result{}, fmt.Errorf("add garbage %s on %s: %w", g.ShardID, g.Node, err)
		}
		if live {
			continue
		}
		if g.NotBefore.IsZero() {
			g.NotBefore = t.now.Add(s.cfg.GarbageGrace)
		}
		g.NotBefore = g.NotBefore.UTC().Round(0)
		setGarbage(t.b, g)
	}
	t.sync = true
	return Result{}, nil
}

// setGarbage queues g in b under both of its keys (by time, and by node
// then time).
func setGarbage(b *pebble.Batch, g Garbage) {
	v := mustJSON(g)
	_ = b.Set(garbageKey(g), v, nil)
	_ = b.Set(nodeGarbageKey(g), v, nil)
}

// ListGarbage returns up to limit (≤ 0: 1000) garbage entries, earliest
// NotBefore first, including entries not yet due: the collector must not
// delete a shard before its NotBefore, and may stop at the first entry that
// is not due since all later ones are later still.
func (s *Store) ListGarbage(ctx context.Context, limit int) ([]Garbage, error) {
	return s.ListGarbagePage(ctx, GarbageQuery{Limit: limit})
}

// ListGarbagePage returns one page of the garbage queue: up to q.Limit (≤ 0:
// 1000) entries of node q.Node (or of every node), strictly after q.After in
// the listing's order, leaving out those not due by q.DueBy when it is set.
// It is one bounded range scan: entries of other nodes and entries not yet
// due are not read at all. ErrInvalidArgument for a malformed node id.
func (s *Store) ListGarbagePage(ctx context.Context, q GarbageQuery) ([]Garbage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	p, key := pfxGarbage, garbageKey
	if q.Node != "" {
		if err := cluster.ValidateNodeID(q.Node); err != nil {
			return nil, fmt.Errorf("list garbage of %s: %w: %v", q.Node, ErrInvalidArgument, err)
		}
		p, key = nodeGarbagePrefix(q.Node), nodeGarbageKey
	}
	lo, hi := p, prefixEnd(p)
	if q.After != nil {
		a := *q.After
		if q.Node != "" {
			a.Node = q.Node
		}
		lo = keySuccessor(key(a))
	}
	if !q.DueBy.IsZero() {
		hi = dueBound(p, q.DueBy)
	}
	out := []Garbage{}
	if bytes.Compare(lo, hi) >= 0 {
		return out, nil
	}
	defer s.read()()
	err := s.scan(ctx, lo, hi, func(_, v []byte) (bool, error) {
		var g Garbage
		if err := decodeJSON(v, &g, "garbage"); err != nil {
			return false, err
		}
		out = append(out, g)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list garbage of %q: %w", q.Node, err)
	}
	return out, nil
}

// GarbageNodes returns, by id, every node with at least one queued garbage
// entry. It seeks from one node's entries to the next, so it reads one key
// per node whatever the length of the queue.
func (s *Store) GarbageNodes(ctx context.Context) ([]cluster.NodeID, error) {
	defer s.read()()
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: pfxNodeGarbage, UpperBound: prefixEnd(pfxNodeGarbage)})
	if err != nil {
		return nil, fmt.Errorf("garbage nodes: %w", err)
	}
	out := []cluster.NodeID{}
	for ok := it.First(); ok; {
		if err := ctx.Err(); err != nil {
			_ = it.Close()
			return nil, err
		}
		rest := it.Key()[len(pfxNodeGarbage):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			_ = it.Close()
			return nil, fmt.Errorf("garbage nodes: %w: key %q", ErrCorrupt, it.Key())
		}
		node := cluster.NodeID(rest[:i])
		out = append(out, node)
		ok = it.SeekGE(prefixEnd(nodeGarbagePrefix(node)))
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return nil, fmt.Errorf("garbage nodes: %w", err)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("garbage nodes: %w", err)
	}
	return out, nil
}

// applyRemoveGarbage forgets entries (after the collector deleted the
// shards). Entries are matched exactly (node, shard id and NotBefore as
// returned by ListGarbage); unknown entries are ignored.
func (s *Store) applyRemoveGarbage(t *txn, c *Command) (Result, error) {
	for _, g := range c.Garbage {
		_ = t.b.Delete(garbageKey(g), nil)
		_ = t.b.Delete(nodeGarbageKey(g), nil)
	}
	t.sync = true
	return Result{}, nil
}

// Degraded returns up to limit (≤ 0: 1000) entries of the repair queue,
// oldest first. Ordering by risk is the repair planner's job.
func (s *Store) Degraded(ctx context.Context, limit int) ([]DegradedEntry, error) {
	if limit <= 0 {
		limit = 1000
	}
	defer s.read()()
	out := []DegradedEntry{}
	err := s.scan(ctx, pfxDegradedAge, prefixEnd(pfxDegradedAge), func(_, v []byte) (bool, error) {
		var e DegradedEntry
		if err := decodeJSON(v, &e, "degraded entry"); err != nil {
			return false, err
		}
		out = append(out, e)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repair queue: %w", err)
	}
	return out, nil
}

// applyResolveDegraded: repair has examined generation gen of the object
// and made (or found) it whole: the queue entry is removed if it is for
// generation ≤ gen (a newer entry stays), and when gen is still the
// current generation the bad reports against its shards are forgotten.
// Resolving an object that is not queued is a no-op.
func (s *Store) applyResolveDegraded(t *txn, c *Command) (Result, error) {
	bucket, key, gen := c.Bucket, c.Key, c.Generation
	v, ok, err := s.get(degradedKey(bucket, key))
	if err != nil {
		return Result{}, fmt.Errorf("resolve %s/%s: %w", bucket, key, err)
	}
	if ok {
		var e DegradedEntry
		if err := decodeJSON(v, &e, "degraded entry"); err != nil {
			return Result{}, fmt.Errorf("resolve %s/%s: %w", bucket, key, err)
		}
		if e.Generation <= gen {
			_ = t.b.Delete(degradedKey(bucket, key), nil)
			_ = t.b.Delete(degradedAgeKey(e), nil)
		}
	}
	m, err := s.getManifest(bucket, key)
	if err != nil {
		return Result{}, fmt.Errorf("resolve %s/%s: %w", bucket, key, err)
	}
	if m != nil && m.Generation == gen {
		for a := range placedShards(m) {
			_ = t.b.Delete(badKey(a.node, a.id), nil)
		}
	}
	t.sync = true
	return Result{}, nil
}

// Status summarises the cluster: nodes and epoch, objects by their fewest
// healthy shards over segments (healthy: written, on a node whose state is
// readable, and not reported bad), the repair-queue depth (the larger of
// the degraded queue and the repair loop's candidates) and the garbage
// count. Cost: it scans every manifest, every bad report and the queue and
// garbage keys — O(objects), so it is for operators and tests, not for a
// hot path.
func (s *Store) Status(ctx context.Context) (Status, error) {
	defer s.read()()
	s.mu.Lock()
	mp, err := s.mapLocked()
	var rs *RepairStats
	if s.repair != nil {
		c := *s.repair
		rs = &c
	}
	s.mu.Unlock()
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	st := Status{Nodes: mp.Nodes(), Epoch: mp.Epoch(), ObjectsByHealthyShards: map[int]int64{}, ObjectsBySpareShards: map[int]int64{}, Repair: rs}
	bad := map[shardAddr]bool{}
	err = s.scan(ctx, pfxBad, prefixEnd(pfxBad), func(_, v []byte) (bool, error) {
		var bs BadShard
		if err := decodeJSON(v, &bs, "bad report"); err != nil {
			return false, err
		}
		bad[shardAddr{bs.Node, bs.ShardID}] = true
		return true, nil
	})
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	err = s.scan(ctx, pfxObject, prefixEnd(pfxObject), func(k, v []byte) (bool, error) {
		m, err := decodeManifest(v)
		if err != nil {
			return false, fmt.Errorf("at %q: %w", k, err)
		}
		st.Objects++
		h, spare := shardHealth(&m, mp, bad)
		st.ObjectsByHealthyShards[h]++
		st.ObjectsBySpareShards[spare]++
		return true, nil
	})
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	if st.DegradedQueue, err = s.count(ctx, pfxDegraded); err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	st.RepairQueue = st.DegradedQueue
	if rs != nil {
		st.RepairQueue = max(st.RepairQueue, rs.QueueObjects)
	}
	if st.Garbage, err = s.count(ctx, pfxGarbage); err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// RepairStats returns the repair loop's last report (ok=false when none was
// ever made; SetRepairStats records one, without a sync in local mode: a
// crash may lose the last few reports, never the record). After a restart
// (the restart grace, OpGrace) it is the persisted report with the
// transient figures (rate, ETA, queue) zeroed, until the loop reports
// again.
func (s *Store) RepairStats() (rs RepairStats, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repair == nil {
		return RepairStats{}, false
	}
	return *s.repair, true
}

// loadRepairStats reads the persisted report as it is; the restart grace
// zeroes its transient figures.
func (s *Store) loadRepairStats() error {
	v, ok, err := s.get(keyRepairStats)
	if err != nil || !ok {
		return err
	}
	var rs RepairStats
	if err := decodeJSON(v, &rs, "repair stats"); err != nil {
		return err
	}
	s.repair = &rs
	return nil
}

// indexGarbageByNode builds gn/ from g/ once, for a store written before
// gn/ existed, in bounded batches; the marker is set last, so a crash part
// way only repeats the work on the next open.
func (s *Store) indexGarbageByNode() error {
	done, err := s.has(keyGarbageByNode)
	if err != nil || done {
		return err
	}
	var batch []Garbage
	flush := func() error {
		b := s.db.NewBatch()
		for _, g := range batch {
			_ = b.Set(nodeGarbageKey(g), mustJSON(g), nil)
		}
		batch = batch[:0]
		return s.commit(b)
	}
	err = s.scan(context.Background(), pfxGarbage, prefixEnd(pfxGarbage), func(_, v []byte) (bool, error) {
		var g Garbage
		if err := decodeJSON(v, &g, "garbage"); err != nil {
			return false, err
		}
		if cluster.ValidateNodeID(g.Node) != nil {
			return true, nil
		}
		if batch = append(batch, g); len(batch) >= 10_000 {
			return true, flush()
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("index garbage by node: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("index garbage by node: %w", err)
	}
	b := s.db.NewBatch()
	_ = b.Set(keyGarbageByNode, nil, nil)
	if err := s.commit(b); err != nil {
		return fmt.Errorf("index garbage by node: %w", err)
	}
	return nil
}

// shardHealth returns the smallest number of healthy shards of any of m's
// segments, and the smallest spare count (healthy shards beyond the
// segment's k: its m when whole, 0 at k, negative when unreadable); both 0
// for a manifest without segments.
func shardHealth(m *Manifest, mp *cluster.Map, bad map[shardAddr]bool) (healthy, spare int) {
	least, leastSpare := -1, 0
	for i, seg := range m.Segments {
		n := 0
		for _, sh := range seg.Shards {
			if sh.Node == "" || bad[shardAddr{sh.Node, sh.ID}] {
				continue
			}
			if nd, ok := mp.Node(sh.Node); ok && nd.State.Readable() {
				n++
			}
		}
		if least < 0 || n < least {
			least = n
		}
		if i == 0 || n-seg.K < leastSpare {
			leastSpare = n - seg.K
		}
	}
	if least < 0 {
		return 0, 0
	}
	return least, leastSpare
}
