package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// CreateUpload starts a multipart upload; it assigns a random ID when u.ID
// is empty and sets Created. ErrNoSuchBucket; ErrInvalidArgument for a bad
// or already used ID.
func (s *Store) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	if err := validKey(u.Key); err != nil {
		return Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	if u.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24)
		u.ID = hex.EncodeToString(b[:])
	}
	if err := validUploadID(u.ID); err != nil {
		return Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	if err := ctx.Err(); err != nil {
		return Upload{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.bucketExists(u.Bucket); err != nil {
		return Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	dup, err := s.has(uploadKey(u.ID))
	if err != nil {
		return Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	if dup {
		return Upload{}, fmt.Errorf("create upload %s/%s: %w: upload id %s in use", u.Bucket, u.Key, ErrInvalidArgument, u.ID)
	}
	u.Created = s.now()
	b := s.db.NewBatch()
	_ = b.Set(uploadKey(u.ID), mustJSON(u), nil)
	_ = b.Set(uploadIndexKey(u.Bucket, u.Key, u.ID), nil, nil)
	if err := s.commit(b); err != nil {
		return Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	return u, nil
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

// PutPart records part p (p.UploadID names the upload, p.Segment.Number
// the part, 1..MaxPartNumber). A part with the same number is replaced and
// its shards that p does not reuse become garbage. Created defaults to now.
// ErrNoSuchUpload, ErrNoSuchBucket, ErrInvalidArgument.
func (s *Store) PutPart(ctx context.Context, bucket, key string, p Part) error {
	num := p.Segment.Number
	if num < 1 || num > MaxPartNumber {
		return fmt.Errorf("put part %d of %s/%s: %w: part number", num, bucket, key, ErrInvalidArgument)
	}
	if err := validateSegment(p.Segment); err != nil {
		return fmt.Errorf("put part %d of %s/%s: %w", num, bucket, key, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.getUpload(bucket, key, p.UploadID)
	if err != nil {
		return fmt.Errorf("put part %d of %s/%s: %w", num, bucket, key, err)
	}
	old, err := s.getPart(u.ID, num)
	if err != nil {
		return fmt.Errorf("put part %d of %s/%s: %w", num, bucket, key, err)
	}
	now := s.now()
	if p.Created.IsZero() {
		p.Created = now
	}
	p.Created = p.Created.UTC().Round(0)
	b := s.db.NewBatch()
	_ = b.Set(partKey(u.ID, num), mustJSON(p), nil)
	olds, news := partShards(u, old), partShards(u, &p)
	s.garbageInBatch(b, olds, news, now)
	for a, sk := range news {
		_ = b.Set(shardIndexKey(a.node, a.id), mustJSON(sk), nil)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("put part %d of %s/%s: %w", num, bucket, key, err)
	}
	return nil
}

// garbageInBatch turns the shards of olds that news does not hold into
// garbage and drops their index entries and bad reports.
func (s *Store) garbageInBatch(b *pebble.Batch, olds, news map[shardAddr]ShardKey, now time.Time) {
	notBefore := now.Add(s.cfg.GarbageGrace)
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
	if _, err := s.getUpload(bucket, key, uploadID); err != nil {
		return nil, fmt.Errorf("list parts of %s on %s/%s: %w", uploadID, bucket, key, err)
	}
	ps, err := s.parts(ctx, uploadID)
	if err != nil {
		return nil, fmt.Errorf("list parts of %s on %s/%s: %w", uploadID, bucket, key, err)
	}
	return ps, nil
}

func (s *Store) listUploads(ctx context.Context, bucket, prefix string) ([]Upload, error) {
	out := []Upload{}
	p := uploadIndexPrefix(bucket, prefix)
	err := s.scan(ctx, p, prefixEnd(p), func(k, _ []byte) (bool, error) {
		i := len(k) - 1
		for i > 0 && !(k[i-1] == 0 && k[i] == 1) {
			i--
		}
		id := string(k[i+1:])
		v, ok, err := s.get(uploadKey(id))
		if err != nil {
			return false, err
		}
		if !ok {
			return false, fmt.Errorf("%w: upload index names missing upload %s", ErrCorrupt, id)
		}
		var u Upload
		if err := decodeJSON(v, &u, "upload "+id); err != nil {
			return false, err
		}
		out = append(out, u)
		return true, nil
	})
	return out, err
}

// ListUploads returns the bucket's uploads in progress whose key starts
// with prefix, by key then upload ID. ErrNoSuchBucket.
func (s *Store) ListUploads(ctx context.Context, bucket, prefix string) ([]Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.bucketExists(bucket); err != nil {
		return nil, fmt.Errorf("list uploads of %s: %w", bucket, err)
	}
	us, err := s.listUploads(ctx, bucket, prefix)
	if err != nil {
		return nil, fmt.Errorf("list uploads of %s: %w", bucket, err)
	}
	return us, nil
}

// CompleteUpload commits m (built by the caller from the chosen parts) as
// Commit does and removes the upload in the same batch; shards of parts
// that m does not reference become garbage. ErrNoSuchUpload (also for an
// upload of another key), ErrNoSuchBucket, ErrInvalidArgument; ErrConflict
// (nothing changes) when m references a shard that no part of the upload
// holds now — a part was re-uploaded after the caller listed the parts.
func (s *Store) CompleteUpload(ctx context.Context, uploadID string, m Manifest) (Manifest, error) {
	if err := validateManifest(&m); err != nil {
		return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w", uploadID, m.Bucket, m.Key, err)
	}
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
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
	b := s.db.NewBatch()
	for i := range ps {
		olds := partShards(u, &ps[i])
		s.garbageInBatch(b, olds, used, s.now())
		for a := range olds {
			// Shards m uses are re-indexed under the manifest below.
			_ = b.Delete(shardIndexKey(a.node, a.id), nil)
		}
		_ = b.Delete(partKey(u.ID, ps[i].Segment.Number), nil)
	}
	_ = b.Delete(uploadKey(u.ID), nil)
	_ = b.Delete(uploadIndexKey(u.Bucket, u.Key, u.ID), nil)
	out, err := s.commitInBatch(b, m)
	if err != nil {
		b.Close()
		return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w", uploadID, m.Bucket, m.Key, err)
	}
	if err := s.commit(b); err != nil {
		return Manifest{}, fmt.Errorf("complete upload %s of %s/%s: %w", uploadID, m.Bucket, m.Key, err)
	}
	s.gen = out.Generation
	return out, nil
}

// abortInBatch stages the removal of upload u and its parts; every part
// shard becomes garbage. Must hold s.mu.
func (s *Store) abortInBatch(ctx context.Context, b *pebble.Batch, u Upload) error {
	ps, err := s.parts(ctx, u.ID)
	if err != nil {
		return err
	}
	now := s.now()
	for i := range ps {
		s.garbageInBatch(b, partShards(u, &ps[i]), nil, now)
		_ = b.Delete(partKey(u.ID, ps[i].Segment.Number), nil)
	}
	_ = b.Delete(uploadKey(u.ID), nil)
	_ = b.Delete(uploadIndexKey(u.Bucket, u.Key, u.ID), nil)
	return nil
}

// AbortUpload removes the upload; its parts' shards become garbage.
// ErrNoSuchUpload, ErrNoSuchBucket.
func (s *Store) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.getUpload(bucket, key, uploadID)
	if err != nil {
		return fmt.Errorf("abort upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	b := s.db.NewBatch()
	if err := s.abortInBatch(ctx, b, u); err != nil {
		b.Close()
		return fmt.Errorf("abort upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	if err := s.commit(b); err != nil {
		return fmt.Errorf("abort upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	return nil
}
