package meta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
)

// MaxPartNumber is the largest multipart part number (S3's limit).
const MaxPartNumber = 10000

// validUploadID accepts 1–128 characters of [A-Za-z0-9._-].
func validUploadID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("%w: upload id %q", ErrInvalidArgument, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: upload id %q", ErrInvalidArgument, id)
		}
	}
	return nil
}

// partShards returns the written shards of part p of upload u as index
// entries: Segment holds the part number and UploadID is set.
func partShards(u Upload, p *Part) map[shardAddr]ShardKey {
	out := map[shardAddr]ShardKey{}
	if p == nil {
		return out
	}
	for _, sh := range p.Segment.Shards {
		if sh.Node == "" {
			continue
		}
		out[shardAddr{sh.Node, sh.ID}] = ShardKey{
			Bucket: u.Bucket, Key: u.Key, UploadID: u.ID,
			Segment: p.Segment.Number, Index: sh.Index, Node: sh.Node, ShardID: sh.ID,
		}
	}
	return out
}

// newUploadID returns a fresh upload ID: the initiation time (16 hex
// digits of Unix nanoseconds) then 16 random hex digits, so that an
// upload-ID order within a key is initiation order, as S3 lists uploads.
func newUploadID(created time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24)
	ns := max(created.UnixNano(), 0)
	return fmt.Sprintf("%016x%s", uint64(ns), hex.EncodeToString(b[:]))
}

// applyCreateUpload starts a multipart upload with the ID the proposer
// stamped (see Stamp, newUploadID) and Created = the command's time.
// ErrNoSuchBucket; ErrInvalidArgument for an ID already used.
func (s *Store) applyCreateUpload(t *txn, c *Command) (Result, error) {
	u := *c.Upload
	if err := s.bucketExists(u.Bucket); err != nil {
		return Result{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	u.Created = t.now
	if u.ID == "" {
		return Result{}, fmt.Errorf("create upload %s/%s: %w: no upload id stamped", u.Bucket, u.Key, ErrInvalidArgument)
	}
	dup, err := s.has(uploadKey(u.ID))
	if err != nil {
		return Result{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	if dup {
		return Result{}, fmt.Errorf("create upload %s/%s: %w: upload id %s in use", u.Bucket, u.Key, ErrInvalidArgument, u.ID)
	}
	_ = t.b.Set(uploadKey(u.ID), mustJSON(u), nil)
	_ = t.b.Set(uploadIndexKey(u.Bucket, u.Key, u.ID), nil, nil)
	_ = t.b.Set(uploadAgeKey(u), nil, nil)
	t.sync = true
	return Result{Upload: &u}, nil
}

// getUpload reads upload id and checks it belongs to (bucket, key).
// ErrNoSuchUpload, ErrNoSuchBucket.
func (s *Store) getUpload(bucket, key, id string) (Upload, error) {
	if validUploadID(id) != nil {
		return Upload{}, ErrNoSuchUpload
	}
	v, ok, err := s.get(uploadKey(id))
	if err != nil {
		return Upload{}, err
	}
	var u Upload
	if ok {
		if err := decodeJSON(v, &u, "upload "+id); err != nil {
			return Upload{}, err
		}
	}
	if !ok || u.Bucket != bucket || u.Key != key {
		if err := s.bucketExists(bucket); err != nil {
			return Upload{}, err
		}
		return Upload{}, ErrNoSuchUpload
	}
	return u, nil
}

// GetUpload returns the upload. ErrNoSuchUpload (also when it belongs to
// another key), ErrNoSuchBucket.
func (s *Store) GetUpload(ctx context.Context, bucket, key, uploadID string) (Upload, error) {
	if err := ctx.Err(); err != nil {
		return Upload{}, err
	}
	defer s.read()()
	u, err := s.getUpload(bucket, key, uploadID)
	if err != nil {
		return Upload{}, fmt.Errorf("get upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	return u, nil
}

func (s *Store) getPart(id string, number int) (*Part, error) {
	v, ok, err := s.get(partKey(id, number))
	if err != nil || !ok {
		return nil, err
	}
	var p Part
	if err := decodeJSON(v, &p, "part"); err != nil {
		return nil, err
	}
	return &p, nil
}

// applyPutPart records part p (p.UploadID names the upload, p.Segment.Number
// the part, 1..MaxPartNumber). A part with the same number is replaced and
// its shards that p does not reuse become garbage. Created defaults to now.
// ErrNoSuchUpload, ErrNoSuchBucket, ErrInvalidArgument.
func (s *Store) applyPutPart(t *txn, c *Command) (Result, error) {
	bucket, key, p := c.Bucket, c.Key, *c.Part
	num := p.Segment.Number
	u, err := s.getUpload(bucket, key, p.UploadID)
	if err != nil {
		return Result{}, fmt.Errorf("put part %d of %s/%s: %w", num, bucket, key, err)
	}
	old, err := s.getPart(u.ID, num)
	if err != nil {
		return Result{}, fmt.Errorf("put part %d of %s/%s: %w", num, bucket, key, err)
	}
	if p.Created.IsZero() {
		p.Created = t.now
	}
	p.Created = p.Created.UTC().Round(0)
	_ = t.b.Set(partKey(u.ID, num), mustJSON(p), nil)
	olds, news := partShards(u, old), partShards(u, &p)
	s.garbageInBatch(t, olds, news)
	for a, sk := range news {
		_ = t.b.Set(shardIndexKey(a.node, a.id), mustJSON(sk), nil)
	}
	t.sync = true
	return Result{}, nil
}

// garbageInBatch turns the shards of olds that news does not hold into
// garbage and drops their index entries and bad reports.
func (s *Store) garbageInBatch(t *txn, olds, news map[shardAddr]ShardKey) {
	b := t.b
	notBefore := t.now.Add(s.cfg.GarbageGrace)
	for a := range olds {
		if _, kept := news[a]; kept {
			continue
		}
		setGarbage(b, Garbage{Node: a.node, ShardID: a.id, NotBefore: notBefore})
		_ = b.Delete(shardIndexKey(a.node, a.id), nil)
		_ = b.Delete(badKey(a.node, a.id), nil)
	}
}

// parts returns every part of upload id, by number.
func (s *Store) parts(ctx context.Context, id string) ([]Part, error) {
	out := []Part{}
	p := partPrefix(id)
	err := s.scan(ctx, p, prefixEnd(p), func(_, v []byte) (bool, error) {
		var pt Part
		if err := decodeJSON(v, &pt, "part"); err != nil {
			return false, err
		}
		out = append(out, pt)
		return true, nil
	})
	return out, err
}

// ListParts returns the upload's parts by part number. ErrNoSuchUpload,
// ErrNoSuchBucket.
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer s.read()()
	if _, err := s.getUpload(bucket, key, uploadID); err != nil {
		return nil, fmt.Errorf("list parts of %s on %s/%s: %w", uploadID, bucket, key, err)
	}
	ps, err := s.parts(ctx, uploadID)
	if err != nil {
		return nil, fmt.Errorf("list parts of %s on %s/%s: %w", uploadID, bucket, key, err)
	}
	return ps, nil
}

// readUpload reads upload id from r (the store or a snapshot of it).
func readUpload(r pebble.Reader, id string) (Upload, error) {
	v, c, err := r.Get(uploadKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Upload{}, fmt.Errorf("%w: an index names missing upload %s", ErrCorrupt, id)
	}
	if err != nil {
		return Upload{}, err
	}
	defer c.Close()
	var u Upload
	if err := decodeJSON(v, &u, "upload "+id); err != nil {
		return Upload{}, err
	}
	return u, nil
}

// bucketUploads returns every upload in progress of bucket. Must hold s.mu
// (the caller aborts them).
func (s *Store) bucketUploads(ctx context.Context, bucket string) ([]Upload, error) {
	out := []Upload{}
	base := uploadIndexPrefix(bucket, "")
	err := s.scan(ctx, base, prefixEnd(base), func(k, _ []byte) (bool, error) {
		_, id, err := parseUploadIndex(k[len(base):])
		if err != nil {
			return false, err
		}
		u, err := readUpload(s.db, id)
		if err != nil {
			return false, err
		}
		out = append(out, u)
		return true, nil
	})
	return out, err
}

// commonPrefixOf is key's common prefix in a listing by prefix and
// delimiter, or "" when key has none.
func commonPrefixOf(key, prefix, delim string) string {
	if delim == "" || !strings.HasPrefix(key, prefix) {
		return ""
	}
	if i := strings.Index(key[len(prefix):], delim); i >= 0 {
		return key[:len(prefix)+i+len(delim)]
	}
	return ""
}

// ListUploads returns one page of the bucket's uploads in progress (see
// UploadListOptions). It reads one snapshot, so an upload completed or
// aborted meanwhile is either listed whole or not at all. ErrNoSuchBucket.
func (s *Store) ListUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadListResult, error) {
	if err := ctx.Err(); err != nil {
		return UploadListResult{}, err
	}
	defer s.read()()
	if err := s.bucketExists(bucket); err != nil {
		return UploadListResult{}, fmt.Errorf("list uploads of %s: %w", bucket, err)
	}
	res, err := s.listUploads(ctx, bucket, opts)
	if err != nil {
		return UploadListResult{}, fmt.Errorf("list uploads of %s: %w", bucket, err)
	}
	return res, nil
}

func (s *Store) listUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadListResult, error) {
	limit := opts.Limit
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	res := UploadListResult{Uploads: []Upload{}, CommonPrefixes: []string{}}
	base := uploadIndexPrefix(bucket, "")
	lo := uploadIndexPrefix(bucket, opts.Prefix)
	hi := prefixEnd(lo)
	// past returns the first index key after every upload whose key
	// starts with p, or nil when there is none.
	past := func(p string) []byte { return prefixEnd(uploadIndexPrefix(bucket, p)) }
	km := opts.KeyMarker
	if km != "" {
		var start []byte
		switch {
		case isCommonPrefix(km, opts.Prefix, opts.Delimiter):
			start = past(km)
		case opts.UploadIDMarker != "":
			start = keySuccessor(uploadIndexKey(bucket, km, opts.UploadIDMarker))
		default:
			// After every upload of km itself: past its terminator.
			start = prefixEnd(cat(uploadIndexPrefix(bucket, km), []byte{0, 1}))
		}
		if start == nil {
			return res, nil
		}
		if bytes.Compare(start, lo) > 0 {
			lo = start
		}
	}
	if hi != nil && bytes.Compare(lo, hi) >= 0 {
		return res, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: base, UpperBound: hi})
	if err != nil {
		return UploadListResult{}, err
	}
	defer it.Close()
	n, seen := 0, 0
	for ok := it.SeekGE(lo); ok; {
		if seen++; seen%256 == 0 {
			if err := ctx.Err(); err != nil {
				return UploadListResult{}, err
			}
		}
		key, id, err := parseUploadIndex(it.Key()[len(base):])
		if err != nil {
			return UploadListResult{}, err
		}
		cp := commonPrefixOf(key, opts.Prefix, opts.Delimiter)
		if cp != "" && km != "" && cp <= km {
			// Listed before (the marker lies under it): skip it whole.
			next := past(cp)
			if next == nil {
				break
			}
			ok = it.SeekGE(next)
			continue
		}
		if n == limit {
			res.Truncated = true
			break
		}
		n++
		if cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
			res.NextKeyMarker, res.NextUploadIDMarker = cp, ""
			next := past(cp)
			if next == nil {
				break
			}
			ok = it.SeekGE(next)
			continue
		}
		u, err := readUpload(snap, id)
		if err != nil {
			return UploadListResult{}, err
		}
		res.Uploads = append(res.Uploads, u)
		res.NextKeyMarker, res.NextUploadIDMarker = key, id
		ok = it.Next()
	}
	if err := it.Error(); err != nil {
		return UploadListResult{}, err
	}
	if !res.Truncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return res, nil
}

// StaleUploads returns up to limit (≤ 0: MaxListLimit) uploads in progress
// initiated before the given time, oldest first, across every bucket: the
// ones a lifecycle rule for incomplete uploads aborts.
func (s *Store) StaleUploads(ctx context.Context, before time.Time, limit int) ([]Upload, error) {
	if limit <= 0 {
		limit = MaxListLimit
	}
	defer s.read()()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: pfxUploadAge, UpperBound: cat(pfxUploadAge, timeKey(before))})
	if err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	defer it.Close()
	out := []Upload{}
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		id := string(it.Key()[len(pfxUploadAge)+8:])
		u, err := readUpload(snap, id)
		if err != nil {
			return nil, fmt.Errorf("stale uploads: %w", err)
		}
		out = append(out, u)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("stale uploads: %w", err)
	}
	return out, nil
}

// indexUploadsByAge builds ua/ for a store written before it existed, in
// bounded batches; the marker is set last, so a crash part way only
// repeats the work on the next open.
func (s *Store) indexUploadsByAge() error {
	done, err := s.has(keyUploadByAge)
	if err != nil || done {
		return err
	}
	b := s.db.NewBatch()
	n := 0
	err = s.scan(context.Background(), pfxUpload, prefixEnd(pfxUpload), func(k, v []byte) (bool, error) {
		var u Upload
		if err := decodeJSON(v, &u, "upload "+string(k)); err != nil {
			return false, err
		}
		_ = b.Set(uploadAgeKey(u), nil, nil)
		if n++; n%10_000 == 0 {
			if err := s.commit(b); err != nil {
				return false, err
			}
			b = s.db.NewBatch()
		}
		return true, nil
	})
	if err != nil {
		b.Close()
		return fmt.Errorf("index uploads by age: %w", err)
	}
	_ = b.Set(keyUploadByAge, nil, nil)
	if err := s.commit(b); err != nil {
		return fmt.Errorf("index uploads by age: %w", err)
	}
	return nil
}

// applyCompleteUpload commits m (built by the caller from the chosen parts) as
// Commit does (under the command's condition, if any) and removes the upload
// in the same batch; shards of parts that m does not reference become
// garbage. A refused condition changes nothing: the upload stays. ErrNoSuchUpload (also for an
// upload of another key), ErrNoSuchBucket, ErrInvalidArgument; ErrConflict
// (nothing changes) when m references a shard that no part of the upload
// holds now — a part was re-uploaded after the caller listed the parts.
func (s *Store) applyCompleteUpload(t *txn, c *Command) (Result, error) {
	m, err := s.completeUpload(t, c.UploadID, *c.Manifest, c.If)
	if err != nil {
		return Result{}, err
	}
	return Result{Manifest: &m}, nil
}

func (s *Store) completeUpload(t *txn, uploadID string, m Manifest, cond *CommitCondition) (Manifest, error) {
	ctx := context.Background()
	u, err := s.getUpload(m.Bucket, m.Key, uploadID)
	if err != nil {
		return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w", uploadID, m.Bucket, m.Key, err)
	}
	ps, err := s.parts(ctx, u.ID)
	if err != nil {
		return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w", uploadID, m.Bucket, m.Key, err)
	}
	// Every shard m references must belong to a part recorded now: a
	// manifest built from parts listed before one of them was replaced (its
	// shards already queued as garbage) would otherwise commit shards the
	// collector is about to delete.
	used := placedShards(&m)
	held := map[shardAddr]bool{}
	for i := range ps {
		for a := range partShards(u, &ps[i]) {
			held[a] = true
		}
	}
	for a := range used {
		if !held[a] {
			return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w: shard %s on %s is in no part of the upload (replaced meanwhile?)", uploadID, m.Bucket, m.Key, ErrConflict, a.id, a.node)
		}
	}
	b := t.b
	for i := range ps {
		olds := partShards(u, &ps[i])
		s.garbageInBatch(t, olds, used)
		for a := range olds {
			// Shards m uses are re-indexed under the manifest below.
			_ = b.Delete(shardIndexKey(a.node, a.id), nil)
		}
		_ = b.Delete(partKey(u.ID, ps[i].Segment.Number), nil)
	}
	_ = b.Delete(uploadKey(u.ID), nil)
	_ = b.Delete(uploadIndexKey(u.Bucket, u.Key, u.ID), nil)
	_ = b.Delete(uploadAgeKey(u), nil)
	out, err := s.commitInBatch(t, m, cond)
	if err != nil {
		return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w", uploadID, m.Bucket, m.Key, err)
	}
	return out, nil
}

// abortInBatch stages the removal of upload u and its parts; every part
// shard becomes garbage. Must hold s.mu.
func (s *Store) abortInBatch(ctx context.Context, t *txn, u Upload) error {
	b := t.b
	ps, err := s.parts(ctx, u.ID)
	if err != nil {
		return err
	}
	t.sync = true
	for i := range ps {
		s.garbageInBatch(t, partShards(u, &ps[i]), nil)
		_ = b.Delete(partKey(u.ID, ps[i].Segment.Number), nil)
	}
	_ = b.Delete(uploadKey(u.ID), nil)
	_ = b.Delete(uploadIndexKey(u.Bucket, u.Key, u.ID), nil)
	_ = b.Delete(uploadAgeKey(u), nil)
	return nil
}

// applyAbortUpload removes the upload; its parts' shards become garbage.
// ErrNoSuchUpload, ErrNoSuchBucket.
func (s *Store) applyAbortUpload(t *txn, c *Command) (Result, error) {
	bucket, key, uploadID := c.Bucket, c.Key, c.UploadID
	u, err := s.getUpload(bucket, key, uploadID)
	if err != nil {
		return Result{}, fmt.Errorf("abort upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	if err := s.abortInBatch(context.Background(), t, u); err != nil {
		return Result{}, fmt.Errorf("abort upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	return Result{}, nil
}
