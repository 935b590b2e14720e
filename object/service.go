package object

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/shale-store/shale/meta"
)

// Service is the object layer as the S3 front door (httpapi) uses it: the
// Coordinator's S3 operations, with results in this package's own types
// (Info, Bucket, ListResult, Upload, UploadListResult, Part) and errors
// that match this package's sentinels, so the front door knows objects,
// not the metadata store's records. Each method is the Coordinator's of
// the same name, with the same contract; the errors it returns are the
// Coordinator's, and those that wrap one of meta's sentinels also match
// the object sentinel of that name (ErrUnavailable for meta's
// ErrUnavailable and ErrNotLeader), meta's still wrapped. Callers that
// need manifests (repair, rebalance, cmd) use the Coordinator.
//
// A Service is safe for concurrent use.
type Service struct {
	c *Coordinator
}

// NewService returns the front door's view of c.
func NewService(c *Coordinator) *Service { return &Service{c: c} }

// errForeignInfo: an Info that Service did not return was passed where the
// version it names is read.
var errForeignInfo = errors.New("object: Info does not come from the object layer")

// CreateBucket creates a bucket; ErrBucketExists.
func (s *Service) CreateBucket(ctx context.Context, name, region string) error {
	return frontErr(s.c.CreateBucket(ctx, name, region))
}

// HeadBucket returns a bucket; ErrNoSuchBucket.
func (s *Service) HeadBucket(ctx context.Context, name string) (Bucket, error) {
	b, err := s.c.HeadBucket(ctx, name)
	if err != nil {
		return Bucket{}, frontErr(err)
	}
	return bucketOf(b), nil
}

// DeleteBucket deletes an empty bucket; ErrNoSuchBucket, ErrBucketNotEmpty.
func (s *Service) DeleteBucket(ctx context.Context, name string) error {
	return frontErr(s.c.DeleteBucket(ctx, name))
}

// ListBuckets lists every bucket.
func (s *Service) ListBuckets(ctx context.Context) ([]Bucket, error) {
	bs, err := s.c.ListBuckets(ctx)
	if err != nil {
		return nil, frontErr(err)
	}
	out := make([]Bucket, len(bs))
	for i, b := range bs {
		out[i] = bucketOf(b)
	}
	return out, nil
}

// PutObject stores in.Body as a new version of in.Bucket/in.Key (see
// Coordinator.PutObject); ErrNoSuchBucket, and with in.If
// ErrPreconditionFailed or ErrNoSuchKey.
func (s *Service) PutObject(ctx context.Context, in PutInput) (Info, error) {
	m, err := s.c.PutObject(ctx, in)
	if err != nil {
		return Info{}, frontErr(err)
	}
	return infoOf(m), nil
}

// HeadObject returns the key's current version; ErrNoSuchKey,
// ErrNoSuchBucket.
func (s *Service) HeadObject(ctx context.Context, bucket, key string) (Info, error) {
	m, err := s.c.HeadObject(ctx, bucket, key)
	if err != nil {
		return Info{}, frontErr(err)
	}
	return infoOf(m), nil
}

// ReadObject streams bytes [off, off+length) of the version o describes to
// w (see Coordinator.ReadObject). o must come from this Service.
func (s *Service) ReadObject(ctx context.Context, w io.Writer, o Info, off, length int64) error {
	if o.man == nil {
		return fmt.Errorf("read %s/%s: %w", o.Bucket, o.Key, errForeignInfo)
	}
	return frontErr(s.c.ReadObject(ctx, w, *o.man, off, length))
}

// DeleteObject removes the key; an absent key is not an error.
// ErrNoSuchBucket.
func (s *Service) DeleteObject(ctx context.Context, bucket, key string) error {
	return frontErr(s.c.DeleteObject(ctx, bucket, key))
}

// ListObjects returns one page of a bucket's keys; ErrNoSuchBucket.
func (s *Service) ListObjects(ctx context.Context, bucket string, opts ListOptions) (ListResult, error) {
	r, err := s.c.ListObjects(ctx, bucket, meta.ListOptions{
		Prefix: opts.Prefix, Delimiter: opts.Delimiter, After: opts.After, Limit: opts.Limit,
	})
	if err != nil {
		return ListResult{}, frontErr(err)
	}
	out := ListResult{CommonPrefixes: r.CommonPrefixes, Truncated: r.Truncated, NextAfter: r.NextAfter}
	if r.Objects != nil {
		out.Objects = make([]ObjectEntry, len(r.Objects))
		for i, e := range r.Objects {
			out.Objects[i] = ObjectEntry{Key: e.Key, Size: e.Size, ETag: e.ETag, Created: e.Created}
		}
	}
	return out, nil
}

// CopyObject copies the version src describes to in.Bucket/in.Key with
// in's metadata (see Coordinator.CopyObject). src must come from this
// Service.
func (s *Service) CopyObject(ctx context.Context, src Info, in PutInput) (Info, error) {
	if src.man == nil {
		return Info{}, fmt.Errorf("copy %s/%s: %w", src.Bucket, src.Key, errForeignInfo)
	}
	m, err := s.c.CopyObject(ctx, *src.man, in)
	if err != nil {
		return Info{}, frontErr(err)
	}
	return infoOf(m), nil
}

// CreateUpload starts a multipart upload and returns it with its ID and
// creation time; ErrNoSuchBucket.
func (s *Service) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	got, err := s.c.CreateUpload(ctx, meta.Upload{
		ID: u.ID, Bucket: u.Bucket, Key: u.Key, ContentType: u.ContentType,
		Headers: u.Headers, UserMeta: u.UserMeta, Checksums: u.Checksums, Created: u.Created,
	})
	if err != nil {
		return Upload{}, frontErr(err)
	}
	return uploadOf(got), nil
}

// GetUpload returns an upload in progress of bucket/key; ErrNoSuchUpload.
func (s *Service) GetUpload(ctx context.Context, bucket, key, uploadID string) (Upload, error) {
	u, err := s.c.GetUpload(ctx, bucket, key, uploadID)
	if err != nil {
		return Upload{}, frontErr(err)
	}
	return uploadOf(u), nil
}

// UploadPart stores part number of an upload from in.Body (see
// Coordinator.UploadPart); ErrNoSuchUpload, ErrInvalidArgument.
func (s *Service) UploadPart(ctx context.Context, uploadID string, number int, in PutInput) (Part, error) {
	p, err := s.c.UploadPart(ctx, uploadID, number, in)
	if err != nil {
		return Part{}, frontErr(err)
	}
	return partOf(p), nil
}

// UploadPartCopy stores part number from bytes [off, off+length) of the
// version src describes (see Coordinator.UploadPartCopy). src must come
// from this Service.
func (s *Service) UploadPartCopy(ctx context.Context, uploadID string, number int, bucket, key string, src Info, off, length int64) (Part, error) {
	if src.man == nil {
		return Part{}, fmt.Errorf("upload part copy %d of %s from %s/%s: %w", number, uploadID, src.Bucket, src.Key, errForeignInfo)
	}
	p, err := s.c.UploadPartCopy(ctx, uploadID, number, bucket, key, *src.man, off, length)
	if err != nil {
		return Part{}, frontErr(err)
	}
	return partOf(p), nil
}

// ListParts lists an upload's parts by number; ErrNoSuchUpload.
func (s *Service) ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error) {
	ps, err := s.c.ListParts(ctx, bucket, key, uploadID)
	if err != nil {
		return nil, frontErr(err)
	}
	var out []Part
	if ps != nil {
		out = make([]Part, len(ps))
		for i, p := range ps {
			out[i] = partOf(p)
		}
	}
	return out, nil
}

// ListUploads returns one page of the bucket's uploads in progress;
// ErrNoSuchBucket.
func (s *Service) ListUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadListResult, error) {
	r, err := s.c.ListUploads(ctx, bucket, meta.UploadListOptions{
		Prefix: opts.Prefix, Delimiter: opts.Delimiter,
		KeyMarker: opts.KeyMarker, UploadIDMarker: opts.UploadIDMarker, Limit: opts.Limit,
	})
	if err != nil {
		return UploadListResult{}, frontErr(err)
	}
	out := UploadListResult{
		CommonPrefixes: r.CommonPrefixes, Truncated: r.Truncated,
		NextKeyMarker: r.NextKeyMarker, NextUploadIDMarker: r.NextUploadIDMarker,
	}
	if r.Uploads != nil {
		out.Uploads = make([]Upload, len(r.Uploads))
		for i, u := range r.Uploads {
			out.Uploads[i] = uploadOf(u)
		}
	}
	return out, nil
}

// CompleteUploadIf commits the upload from parts when the key's current
// version meets cond (see Coordinator.CompleteUploadIf); ErrInvalidPart,
// ErrInvalidPartOrder, ErrEntityTooSmall, ErrNoSuchUpload, ErrConflict,
// and for cond ErrPreconditionFailed or ErrNoSuchKey.
func (s *Service) CompleteUploadIf(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, cond Precondition) (Info, error) {
	m, err := s.c.CompleteUploadIf(ctx, bucket, key, uploadID, parts, cond)
	if err != nil {
		return Info{}, frontErr(err)
	}
	return infoOf(m), nil
}

// AbortUpload drops an upload; its parts become garbage. ErrNoSuchUpload.
func (s *Service) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	return frontErr(s.c.AbortUpload(ctx, bucket, key, uploadID))
}

func bucketOf(b meta.Bucket) Bucket {
	return Bucket{Name: b.Name, Created: b.Created, Region: b.Region}
}

// infoOf presents manifest m; the Info keeps its own copy of m for reads.
func infoOf(m meta.Manifest) Info {
	sizes := make([]int64, len(m.Segments))
	for i, seg := range m.Segments {
		sizes[i] = seg.Size
	}
	return Info{
		Bucket: m.Bucket, Key: m.Key, VersionID: m.VersionID, Size: m.Size, ETag: m.ETag,
		ContentType: m.ContentType, Headers: m.Headers, UserMeta: m.UserMeta, Checksums: m.Checksums,
		Created: m.Created, PartSizes: sizes, man: &m,
	}
}

func uploadOf(u meta.Upload) Upload {
	return Upload{
		ID: u.ID, Bucket: u.Bucket, Key: u.Key, ContentType: u.ContentType,
		Headers: u.Headers, UserMeta: u.UserMeta, Checksums: u.Checksums, Created: u.Created,
	}
}

func partOf(p meta.Part) Part {
	return Part{Number: p.Segment.Number, Size: p.Segment.Size, ETag: p.Segment.ETag, Checksums: p.Checksums, Created: p.Created}
}

// metaSentinel pairs one of meta's sentinels with the object sentinel that
// stands for it at the front door.
type metaSentinel struct{ meta, object error }

// metaSentinels lists every meta sentinel the front door tells apart. It
// is a function, not a variable, so that nothing can change it.
func metaSentinels() [10]metaSentinel {
	return [...]metaSentinel{
		{meta.ErrNoSuchBucket, ErrNoSuchBucket},
		{meta.ErrBucketExists, ErrBucketExists},
		{meta.ErrBucketNotEmpty, ErrBucketNotEmpty},
		{meta.ErrNoSuchKey, ErrNoSuchKey},
		{meta.ErrNoSuchUpload, ErrNoSuchUpload},
		{meta.ErrInvalidArgument, ErrInvalidArgument},
		{meta.ErrPreconditionFailed, ErrPreconditionFailed},
		{meta.ErrConflict, ErrConflict},
		{meta.ErrUnavailable, ErrUnavailable},
		{meta.ErrNotLeader, ErrUnavailable},
	}
}

// frontError is an error that wraps one of meta's sentinels, as Service
// returns it: it reads as, and unwraps to, the error it wraps, and is also
// each object sentinel that stands for a meta sentinel in that error's
// tree (metaSentinels).
type frontError struct{ err error }

func (e *frontError) Error() string { return e.err.Error() }
func (e *frontError) Unwrap() error { return e.err }

func (e *frontError) Is(target error) bool {
	for _, p := range metaSentinels() {
		if target == p.object && errors.Is(e.err, p.meta) {
			return true
		}
	}
	return false
}

// frontErr is err as Service returns it: a frontError when err wraps one of
// meta's sentinels, else err itself (nil stays nil).
func frontErr(err error) error {
	if err == nil {
		return nil
	}
	for _, p := range metaSentinels() {
		if errors.Is(err, p.meta) {
			return &frontError{err: err}
		}
	}
	return err
}
