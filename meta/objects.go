package meta

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble"

	"github.com/shale-store/shale/cluster"
)

// MaxListLimit is the largest page List returns (S3's max-keys ceiling).
const MaxListLimit = 1000

// shardAddr is where a shard lives.
type shardAddr struct {
	node cluster.NodeID
	id   string
}

// placedShards returns the written shards of m (Node != ""), by location.
func placedShards(m *Manifest) map[shardAddr]ShardKey {
	out := map[shardAddr]ShardKey{}
	if m == nil {
		return out
	}
	for si, seg := range m.Segments {
		for _, sh := range seg.Shards {
			if sh.Node == "" {
				continue
			}
			out[shardAddr{sh.Node, sh.ID}] = ShardKey{
				Bucket: m.Bucket, Key: m.Key, Generation: m.Generation,
				Segment: si, Index: sh.Index, Node: sh.Node, ShardID: sh.ID,
			}
		}
	}
	return out
}

// hasMissing reports whether any segment of m is short of a shard.
func hasMissing(m *Manifest) bool {
	for _, seg := range m.Segments {
		for _, sh := range seg.Shards {
			if sh.Node == "" {
				return true
			}
		}
	}
	return false
}

// validateManifest checks the shape meta relies on.
func validateManifest(m *Manifest) error {
	if err := validBucket(m.Bucket); err != nil {
		return err
	}
	if err := validKey(m.Key); err != nil {
		return err
	}
	if m.Size < 0 {
		return fmt.Errorf("%w: negative size", ErrInvalidArgument)
	}
	for si, seg := range m.Segments {
		if err := validateSegment(seg); err != nil {
			return fmt.Errorf("segment %d: %w", si, err)
		}
	}
	return nil
}

func validateSegment(seg Segment) error {
	if seg.K <= 0 || seg.M < 0 || len(seg.Shards) != seg.K+seg.M {
		return fmt.Errorf("%w: coding %d+%d with %d shards", ErrInvalidArgument, seg.K, seg.M, len(seg.Shards))
	}
	for i, sh := range seg.Shards {
		if err := validateShard(sh, i); err != nil {
			return err
		}
	}
	return nil
}

func validateShard(sh ShardRef, want int) error {
	if want >= 0 && sh.Index != want {
		return fmt.Errorf("%w: shard %d has index %d", ErrInvalidArgument, want, sh.Index)
	}
	if sh.Node == "" {
		return nil
	}
	if err := cluster.ValidateNodeID(sh.Node); err != nil {
		return fmt.Errorf("%w: shard %d: %v", ErrInvalidArgument, sh.Index, err)
	}
	if sh.ID == "" {
		return fmt.Errorf("%w: shard %d on %s has no id", ErrInvalidArgument, sh.Index, sh.Node)
	}
	return nil
}

// replaceInBatch records in b everything that follows from the object at
// (bucket, key) changing from old to nu (either may be nil): shards of old
// that nu does not keep become garbage and leave the node→shard index and
// the bad-report list; nu's shards are (re)indexed with its generation,
// and so are the bad reports against them; the repair queue entry is set
// when nu is short of shards or has a reported bad shard, and removed
// otherwise. The manifest key itself is the caller's.
// Must hold s.mu.
func (s *Store) replaceInBatch(t *txn, bucket, key string, old, nu *Manifest) error {
	b := t.b
	olds, news := placedShards(old), placedShards(nu)
	s.garbageInBatch(t, olds, news)
	bad := false
	for a, sk := range news {
		_ = b.Set(shardIndexKey(a.node, a.id), mustJSON(sk), nil)
		v, ok, err := s.get(badKey(a.node, a.id))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		bad = true
		// A report follows its shard into nu: one made against a part of
		// an upload (part number, upload id) is re-addressed to the
		// manifest's segment index and generation, which repair matches.
		var bs BadShard
		if err := decodeJSON(v, &bs, "bad report"); err != nil {
			return err
		}
		if bs.ShardKey != sk {
			bs.ShardKey = sk
			_ = b.Set(badKey(a.node, a.id), mustJSON(bs), nil)
		}
	}
	need := nu != nil && (bad || hasMissing(nu))
	gen := uint64(0)
	if nu != nil {
		gen = nu.Generation
	}
	return s.setDegradedInBatch(t, bucket, key, need, gen)
}

// setDegradedInBatch puts (need) or removes (!need) the repair-queue entry
// of (bucket, key). An entry already queued keeps its Since, so an object
// does not lose its place in the queue by being reported again.
func (s *Store) setDegradedInBatch(t *txn, bucket, key string, need bool, gen uint64) error {
	b, now := t.b, t.now
	v, ok, err := s.get(degradedKey(bucket, key))
	if err != nil {
		return err
	}
	var e DegradedEntry
	if ok {
		if err := decodeJSON(v, &e, "degraded entry"); err != nil {
			return err
		}
		_ = b.Delete(degradedAgeKey(e), nil)
	}
	if !need {
		if ok {
			_ = b.Delete(degradedKey(bucket, key), nil)
		}
		return nil
	}
	if !ok {
		e = DegradedEntry{Bucket: bucket, Key: key, Since: now}
	}
	e.Generation = gen
	js := mustJSON(e)
	_ = b.Set(degradedKey(bucket, key), js, nil)
	_ = b.Set(degradedAgeKey(e), js, nil)
	return nil
}

// getManifest reads the current manifest of (bucket, key).
func (s *Store) getManifest(bucket, key string) (*Manifest, error) {
	v, ok, err := s.get(objectKey(bucket, key))
	if err != nil || !ok {
		return nil, err
	}
	m, err := decodeManifest(v)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// applyCommit makes m the current version of its key (last writer wins by
// commit order), assigns its Generation (greater than any generation this
// store has handed out before, so it grows per key even across delete and
// recreate) and returns it. Created defaults to the command's time. The
// replaced version's shards that m does not reuse become garbage in the
// same batch; a manifest short of shards is queued for repair in the same
// batch. With a condition (Command.If) the key's current version is checked
// first, in the same apply: ErrPreconditionFailed or ErrNoSuchKey (see
// CommitCondition), and nothing changes. ErrNoSuchBucket, ErrInvalidArgument.
func (s *Store) applyCommit(t *txn, c *Command) (Result, error) {
	m := *c.Manifest
	out, err := s.commitInBatch(t, m, c.If)
	if err != nil {
		return Result{}, fmt.Errorf("commit %s/%s: %w", m.Bucket, m.Key, err)
	}
	return Result{Manifest: &out}, nil
}

// commitInBatch stages the commit of m in t when the key's current
// version meets cond (nil: no condition). Must hold s.mu.
func (s *Store) commitInBatch(t *txn, m Manifest, cond *CommitCondition) (Manifest, error) {
	if err := s.bucketExists(m.Bucket); err != nil {
		return Manifest{}, err
	}
	old, err := s.getManifest(m.Bucket, m.Key)
	if err != nil {
		return Manifest{}, err
	}
	if err := checkCondition(cond, old); err != nil {
		return Manifest{}, err
	}
	if m.Created.IsZero() {
		m.Created = t.now
	}
	m.Created = m.Created.UTC().Round(0)
	m.Generation = s.nextGen(t)
	v, err := encodeManifest(m)
	if err != nil {
		return Manifest{}, err
	}
	_ = t.b.Set(objectKey(m.Bucket, m.Key), v, nil)
	_ = t.b.Set(keyGen, be64(m.Generation), nil)
	if err := s.replaceInBatch(t, m.Bucket, m.Key, old, &m); err != nil {
		return Manifest{}, err
	}
	t.sync = true
	return m, nil
}

// checkCondition decides a conditional commit against the key's current
// version cur (nil: none). See CommitCondition.
func checkCondition(cond *CommitCondition, cur *Manifest) error {
	switch {
	case cond == nil:
		return nil
	case cond.Absent && cur != nil:
		return fmt.Errorf("%w: if absent: the key has a current version (etag %s)", ErrPreconditionFailed, cur.ETag)
	case cond.ETag != "" && cur == nil:
		return fmt.Errorf("%w: if etag %s: the key has no current version", ErrNoSuchKey, cond.ETag)
	case cond.ETag != "" && cur.ETag != cond.ETag:
		return fmt.Errorf("%w: if etag %s: the current version's is %s", ErrPreconditionFailed, cond.ETag, cur.ETag)
	}
	return nil
}

// nextGen hands out the next generation within t.
func (s *Store) nextGen(t *txn) uint64 {
	if t.gen == 0 {
		t.gen = s.gen
	}
	t.gen++
	return t.gen
}

// Get returns the current manifest. ErrNoSuchKey, ErrNoSuchBucket.
func (s *Store) Get(ctx context.Context, bucket, key string) (Manifest, error) {
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	defer s.read()()
	m, err := s.getManifest(bucket, key)
	if err != nil {
		return Manifest{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	if m == nil {
		if err := s.bucketExists(bucket); err != nil {
			return Manifest{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
		}
		return Manifest{}, fmt.Errorf("get %s/%s: %w", bucket, key, ErrNoSuchKey)
	}
	return *m, nil
}

// applyDelete removes the key; its shards become garbage and it leaves the repair
// queue. An absent key gives ok=false and no error. ErrNoSuchBucket.
func (s *Store) applyDelete(t *txn, c *Command) (Result, error) {
	bucket, key := c.Bucket, c.Key
	old, err := s.getManifest(bucket, key)
	if err != nil {
		return Result{}, fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	if old == nil {
		if err := s.bucketExists(bucket); err != nil {
			return Result{}, fmt.Errorf("delete %s/%s: %w", bucket, key, err)
		}
		return Result{}, nil
	}
	_ = t.b.Delete(objectKey(bucket, key), nil)
	if err := s.replaceInBatch(t, bucket, key, old, nil); err != nil {
		return Result{}, fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	t.sync = true
	return Result{OK: true}, nil
}

// List returns one page of the bucket's objects in binary key order, read
// from the index alone (no manifest is decoded). With a Delimiter, keys that
// contain it after the Prefix are rolled up into CommonPrefixes, each
// counted once against Limit. After is exclusive; when After is itself a
// common prefix (as returned in NextAfter) everything under it is skipped.
// Limit ≤ 0 means MaxListLimit; larger values are clamped to it.
// ErrNoSuchBucket.
func (s *Store) List(ctx context.Context, bucket string, opts ListOptions) (ListResult, error) {
	if err := ctx.Err(); err != nil {
		return ListResult{}, err
	}
	defer s.read()()
	if err := s.bucketExists(bucket); err != nil {
		return ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	limit := opts.Limit
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	res := ListResult{Objects: []ObjectEntry{}, CommonPrefixes: []string{}}
	base := objectPrefix(bucket)
	lo := cat(base, []byte(opts.Prefix))
	hi := prefixEnd(lo)
	if opts.After != "" {
		start := keySuccessor(cat(base, []byte(opts.After)))
		if isCommonPrefix(opts.After, opts.Prefix, opts.Delimiter) {
			// After is a common prefix: skip everything under it.
			start = prefixEnd(cat(base, []byte(opts.After)))
			if start == nil {
				return res, nil
			}
		}
		if bytes.Compare(start, lo) > 0 {
			lo = start
		}
	}
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return res, nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: base, UpperBound: hi})
	if err != nil {
		return ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	defer it.Close()
	n := 0
	for ok := it.SeekGE(lo); ok; {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return ListResult{}, err
			}
		}
		key := string(it.Key()[len(base):])
		cp := ""
		if opts.Delimiter != "" {
			if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				cp = key[:len(opts.Prefix)+i+len(opts.Delimiter)]
			}
		}
		if n == limit {
			res.Truncated = true
			break
		}
		n++
		if cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
			res.NextAfter = cp
			next := prefixEnd(cat(base, []byte(cp)))
			if next == nil {
				break
			}
			ok = it.SeekGE(next)
			continue
		}
		size, etag, created, _, err := decodeEntryHead(it.Value())
		if err != nil {
			return ListResult{}, fmt.Errorf("list %s at %q: %w", bucket, key, err)
		}
		res.Objects = append(res.Objects, ObjectEntry{Key: key, Size: size, ETag: etag, Created: created})
		res.NextAfter = key
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	if !res.Truncated {
		res.NextAfter = ""
	}
	return res, nil
}

// applyUpdateShards is repair's compare-and-swap: when the key's generation is
// still gen it replaces the given shards (each by Index within its
// segment), assigns a new generation and returns the new manifest; replaced
// shards become garbage and the repair-queue entry is recomputed. Otherwise
// (overwritten or deleted meanwhile) it returns ErrConflict and changes
// nothing. ErrInvalidArgument for an update that does not fit the manifest.
func (s *Store) applyUpdateShards(t *txn, c *Command) (Result, error) {
	bucket, key, gen, upd := c.Bucket, c.Key, c.Generation, c.Updates
	nu, err := s.updateShards(t, bucket, key, gen, upd)
	if err != nil {
		return Result{}, err
	}
	return Result{Manifest: &nu}, nil
}

func (s *Store) updateShards(t *txn, bucket, key string, gen uint64, upd []ShardUpdate) (Manifest, error) {
	old, err := s.getManifest(bucket, key)
	if err != nil {
		return Manifest{}, fmt.Errorf("update shards of %s/%s: %w", bucket, key, err)
	}
	if old == nil || old.Generation != gen {
		return Manifest{}, fmt.Errorf("update shards of %s/%s at generation %d: %w", bucket, key, gen, ErrConflict)
	}
	nu := *old
	nu.Segments = append([]Segment(nil), old.Segments...)
	copied := map[int]bool{}
	for _, u := range upd {
		if u.Segment < 0 || u.Segment >= len(nu.Segments) {
			return Manifest{}, fmt.Errorf("update shards of %s/%s: %w: segment %d of %d", bucket, key, ErrInvalidArgument, u.Segment, len(nu.Segments))
		}
		seg := &nu.Segments[u.Segment]
		if !copied[u.Segment] {
			seg.Shards = append([]ShardRef(nil), seg.Shards...)
			copied[u.Segment] = true
		}
		for _, sh := range u.Shards {
			if sh.Index < 0 || sh.Index >= len(seg.Shards) {
				return Manifest{}, fmt.Errorf("update shards of %s/%s: %w: shard index %d", bucket, key, ErrInvalidArgument, sh.Index)
			}
			if err := validateShard(sh, -1); err != nil {
				return Manifest{}, fmt.Errorf("update shards of %s/%s: %w", bucket, key, err)
			}
			seg.Shards[sh.Index] = sh
		}
	}
	nu.Generation = s.nextGen(t)
	v, err := encodeManifest(nu)
	if err != nil {
		return Manifest{}, err
	}
	_ = t.b.Set(objectKey(bucket, key), v, nil)
	_ = t.b.Set(keyGen, be64(nu.Generation), nil)
	if err := s.replaceInBatch(t, bucket, key, old, &nu); err != nil {
		return Manifest{}, fmt.Errorf("update shards of %s/%s: %w", bucket, key, err)
	}
	t.sync = true
	return nu, nil
}

// ScanManifests returns up to limit current manifests of every bucket,
// ordered by bucket name then key (binary), starting strictly after
// (afterBucket, afterKey); ("", "") starts at the beginning. An empty result
// means the scan is complete. Repair and Status walk all objects with it.
// limit ≤ 0 means 1000.
func (s *Store) ScanManifests(ctx context.Context, afterBucket, afterKey string, limit int) ([]Manifest, error) {
	defer s.read()()
	if limit <= 0 {
		limit = 1000
	}
	lo := pfxObject
	if afterBucket != "" {
		lo = keySuccessor(objectKey(afterBucket, afterKey))
	}
	out := []Manifest{}
	err := s.scan(ctx, lo, prefixEnd(pfxObject), func(k, v []byte) (bool, error) {
		m, err := decodeManifest(v)
		if err != nil {
			return false, fmt.Errorf("at %q: %w", k, err)
		}
		out = append(out, m)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan manifests after %s/%s: %w", afterBucket, afterKey, err)
	}
	return out, nil
}

// isCommonPrefix reports whether k has the shape of a common prefix for
// (prefix, delim): prefix, then text without delim, then delim, ending there.
func isCommonPrefix(k, prefix, delim string) bool {
	if delim == "" || !strings.HasPrefix(k, prefix) {
		return false
	}
	rest := k[len(prefix):]
	i := strings.Index(rest, delim)
	return i >= 0 && i+len(delim) == len(rest)
}
