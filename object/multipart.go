package object

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/shale-store/shale/meta"
)

// MaxPartNumber is the highest part number S3 allows.
const MaxPartNumber = 10000

// CreateUpload starts a multipart upload; meta assigns its id
// (meta.ErrNoSuchBucket).
func (c *Coordinator) CreateUpload(ctx context.Context, u meta.Upload) (meta.Upload, error) {
	if u.Created.IsZero() {
		u.Created = c.cfg.Now().UTC()
	}
	got, err := c.md.CreateUpload(ctx, u)
	if err != nil {
		return meta.Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, err)
	}
	return got, nil
}

// GetUpload returns an upload in progress (meta.ErrNoSuchUpload).
func (c *Coordinator) GetUpload(ctx context.Context, bucket, key, uploadID string) (meta.Upload, error) {
	u, err := c.md.GetUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return meta.Upload{}, fmt.Errorf("get upload %s of %s/%s: %w", uploadID, bucket, key, err)
	}
	return u, nil
}

// UploadPart stores part number (1..MaxPartNumber) of an upload from
// in.Body, coded like a PUT as its own segment (shards named after a fresh
// version id, so a retried part never collides with an earlier attempt; meta
// turns the replaced part's shards into garbage). in.Size, in.ExpectMD5 and
// in.Checksums are used. Errors as PutObject, plus meta.ErrNoSuchUpload and
// meta.ErrInvalidArgument for a bad part number.
func (c *Coordinator) UploadPart(ctx context.Context, uploadID string, number int, in PutInput) (meta.Part, error) {
	return c.uploadPart(ctx, uploadID, number, in, ownMemory)
}

func (c *Coordinator) uploadPart(ctx context.Context, uploadID string, number int, in PutInput, mem memory) (meta.Part, error) {
	if number < 1 || number > MaxPartNumber {
		return meta.Part{}, fmt.Errorf("upload part %d of %s: %w: part number", number, uploadID, meta.ErrInvalidArgument)
	}
	if _, err := c.md.GetUpload(ctx, in.Bucket, in.Key, uploadID); err != nil {
		return meta.Part{}, fmt.Errorf("upload part %d of %s (%s/%s): %w", number, uploadID, in.Bucket, in.Key, err)
	}
	version, err := c.newID()
	if err != nil {
		return meta.Part{}, err
	}
	sw, err := c.putSegment(ctx, version, number, in.Body, in.Size, in.ExpectMD5, mem)
	if err != nil {
		return meta.Part{}, fmt.Errorf("upload part %d of %s (%s/%s): %w", number, uploadID, in.Bucket, in.Key, err)
	}
	part := meta.Part{UploadID: uploadID, Segment: sw.seg, Checksums: in.Checksums, Created: c.cfg.Now().UTC()}
	err = c.md.PutPart(ctx, in.Bucket, in.Key, part)
	committed := err == nil
	if err != nil && !definiteRefusal(err) {
		// Ambiguous: see whether the part landed before collecting it.
		cctx, cancel := c.cleanupCtx(ctx)
		parts, lerr := c.md.ListParts(cctx, in.Bucket, in.Key, uploadID)
		cancel()
		if lerr != nil && !errors.Is(lerr, meta.ErrNoSuchUpload) {
			return meta.Part{}, fmt.Errorf("upload part %d of %s (outcome unknown, shards left in place): %w", number, uploadID, err)
		}
		for _, p := range parts {
			if p.Segment.Number == number && sameShards(p.Segment, sw.seg) {
				committed, part, err = true, p, nil
			}
		}
	}
	gerr := c.settle(ctx, sw, committed)
	if !committed {
		return meta.Part{}, errJoin([]error{fmt.Errorf("upload part %d of %s (%s/%s): %w", number, uploadID, in.Bucket, in.Key, err), gerr})
	}
	return part, nil
}

// sameShards reports whether two segments name the same first written shard.
func sameShards(a, b meta.Segment) bool {
	for i := range min(len(a.Shards), len(b.Shards)) {
		if b.Shards[i].ID != "" {
			return a.Shards[i].ID == b.Shards[i].ID
		}
	}
	return false
}

// UploadPartCopy stores part number from bytes [off, off+length) of src,
// streaming like CopyObject.
func (c *Coordinator) UploadPartCopy(ctx context.Context, uploadID string, number int, bucket, key string, src meta.Manifest, off, length int64) (meta.Part, error) {
	if off < 0 || length < 0 || off+length > src.Size {
		return meta.Part{}, fmt.Errorf("upload part copy %d of %s from %s/%s [%d,+%d): %w", number, uploadID, src.Bucket, src.Key, off, length, ErrInvalidRange)
	}
	var part meta.Part
	err := c.pipeRead(ctx, src, off, length, func(ctx context.Context, r io.Reader) error {
		var err error
		part, err = c.uploadPart(ctx, uploadID, number, PutInput{Bucket: bucket, Key: key, Body: r, Size: length}, heldMemory)
		return err
	})
	if err != nil {
		return meta.Part{}, fmt.Errorf("upload part copy %d of %s from %s/%s: %w", number, uploadID, src.Bucket, src.Key, err)
	}
	return part, nil
}

// ListParts lists an upload's parts by number (meta.ErrNoSuchUpload).
func (c *Coordinator) ListParts(ctx context.Context, bucket, key, uploadID string) ([]meta.Part, error) {
	ps, err := c.md.ListParts(ctx, bucket, key, uploadID)
	if err != nil {
		return nil, fmt.Errorf("list parts of %s (%s/%s): %w", uploadID, bucket, key, err)
	}
	return ps, nil
}

// ListUploads returns one page of the uploads in progress (see
// meta.UploadListOptions).
func (c *Coordinator) ListUploads(ctx context.Context, bucket string, opts meta.UploadListOptions) (meta.UploadListResult, error) {
	res, err := c.md.ListUploads(ctx, bucket, opts)
	if err != nil {
		return meta.UploadListResult{}, fmt.Errorf("list uploads of %s: %w", bucket, err)
	}
	return res, nil
}

// AbortUpload drops an upload; its parts become garbage (meta.ErrNoSuchUpload).
func (c *Coordinator) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	if err := c.md.AbortUpload(ctx, bucket, key, uploadID); err != nil {
		return fmt.Errorf("abort upload %s (%s/%s): %w", uploadID, bucket, key, err)
	}
	return nil
}

// MultipartETag is S3's ETag of a multipart object: the hex MD5 of the
// concatenated binary MD5s of its parts, "-" and the number of parts.
// partETags are bare hex MD5s.
func MultipartETag(partETags []string) (string, error) {
	h := md5.New()
	for _, e := range partETags {
		b, err := hex.DecodeString(e)
		if err != nil || len(b) != md5.Size {
			return "", fmt.Errorf("%w: ETag %q is not an MD5", ErrInvalidPart, e)
		}
		h.Write(b)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(partETags)), nil
}

// normETag strips quotes and lower-cases an ETag for comparison.
func normETag(s string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(s), `"`))
}

// CompleteUpload assembles the listed parts into a new version of
// bucket/key and commits it (parts not listed become garbage). It checks
// that part numbers ascend strictly (ErrInvalidPartOrder), that every part
// was uploaded with the given ETag (ErrInvalidPart), and that every part but
// the last has at least MinPartSize bytes (ErrEntityTooSmall). The ETag is
// MultipartETag of the parts; the size their sum. meta.ErrConflict (nothing
// committed, the upload stays) when a listed part was re-uploaded between
// this call's listing of the parts and its commit; the caller may retry.
func (c *Coordinator) CompleteUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletePart) (meta.Manifest, error) {
	return c.CompleteUploadIf(ctx, bucket, key, uploadID, parts, Precondition{})
}

// CompleteUploadIf is CompleteUpload when the key's current version meets
// cond (see Precondition), decided by meta with the commit: a refusal
// (meta.ErrPreconditionFailed, or meta.ErrNoSuchKey for an ETag
// condition on an absent key) commits nothing and leaves the upload and
// its parts, to be completed or aborted later.
func (c *Coordinator) CompleteUploadIf(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, cond Precondition) (meta.Manifest, error) {
	op := fmt.Sprintf("complete upload %s (%s/%s)", uploadID, bucket, key)
	if len(parts) == 0 {
		return meta.Manifest{}, fmt.Errorf("%s: %w: no parts", op, ErrInvalidPart)
	}
	for i := 1; i < len(parts); i++ {
		if parts[i].Number <= parts[i-1].Number {
			return meta.Manifest{}, fmt.Errorf("%s: %w: part %d after %d", op, ErrInvalidPartOrder, parts[i].Number, parts[i-1].Number)
		}
	}
	u, err := c.md.GetUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return meta.Manifest{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.precheck(ctx, bucket, key, cond); err != nil {
		return meta.Manifest{}, fmt.Errorf("%s: %w", op, err)
	}
	stored, err := c.md.ListParts(ctx, bucket, key, uploadID)
	if err != nil {
		return meta.Manifest{}, fmt.Errorf("%s: %w", op, err)
	}
	byNumber := make(map[int]meta.Part, len(stored))
	for _, p := range stored {
		byNumber[p.Segment.Number] = p
	}
	man := meta.Manifest{
		Bucket: bucket, Key: key,
		ContentType: u.ContentType, Headers: u.Headers, UserMeta: u.UserMeta,
		Created: c.cfg.Now().UTC(),
	}
	etags := make([]string, 0, len(parts))
	for i, cp := range parts {
		p, ok := byNumber[cp.Number]
		if !ok {
			return meta.Manifest{}, fmt.Errorf("%s: %w: part %d was not uploaded", op, ErrInvalidPart, cp.Number)
		}
		if normETag(cp.ETag) != normETag(p.Segment.ETag) {
			return meta.Manifest{}, fmt.Errorf("%s: %w: part %d has ETag %s, not %s", op, ErrInvalidPart, cp.Number, p.Segment.ETag, cp.ETag)
		}
		if i < len(parts)-1 && p.Segment.Size < MinPartSize {
			return meta.Manifest{}, fmt.Errorf("%s: %w: part %d has %d bytes, minimum %d", op, ErrEntityTooSmall, cp.Number, p.Segment.Size, MinPartSize)
		}
		etags = append(etags, p.Segment.ETag)
		man.Size += p.Segment.Size
		man.Segments = append(man.Segments, p.Segment)
	}
	if man.ETag, err = MultipartETag(etags); err != nil {
		return meta.Manifest{}, fmt.Errorf("%s: %w", op, err)
	}
	if man.VersionID, err = c.newID(); err != nil {
		return meta.Manifest{}, err
	}
	var got meta.Manifest
	if cond.IsZero() {
		got, err = c.md.CompleteUpload(ctx, uploadID, man)
	} else {
		got, err = c.md.CompleteUploadIf(ctx, uploadID, man, cond.condition())
	}
	if err != nil {
		return meta.Manifest{}, fmt.Errorf("%s: %w", op, err)
	}
	return got, nil
}
