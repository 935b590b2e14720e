package httpapi

import (
	"context"
	"io"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
)

// ObjectService is the object layer as the S3 API uses it; object.Coordinator
// implements it. Errors wrap the sentinels of meta and object (or the error a
// request body returned), which the error table maps to S3 codes.
//
// Bodies: PutObject and UploadPart read in.Body to io.EOF before they commit
// and commit nothing when a Read fails; that error is returned wrapped. The
// map in.Checksums may gain entries when in.Body returns io.EOF (checksums
// sent in an aws-chunked trailer are known only then), so an implementation
// reads in.Checksums after the body is consumed, never before.
type ObjectService interface {
	// CreateBucket creates an empty bucket; meta.ErrBucketExists if it exists.
	CreateBucket(ctx context.Context, name, region string) error
	// HeadBucket returns the bucket; meta.ErrNoSuchBucket.
	HeadBucket(ctx context.Context, name string) (meta.Bucket, error)
	// DeleteBucket removes an empty bucket; meta.ErrNoSuchBucket,
	// meta.ErrBucketNotEmpty.
	DeleteBucket(ctx context.Context, name string) error
	// ListBuckets returns every bucket, sorted by name.
	ListBuckets(ctx context.Context) ([]meta.Bucket, error)

	// PutObject stores in.Body as in.Bucket/in.Key, replacing any previous
	// version once committed; object.ErrBadDigest, object.ErrIncompleteBody,
	// object.ErrQuorum, meta.ErrNoSuchBucket; with in.If (decided
	// atomically with the commit) meta.ErrPreconditionFailed, or
	// meta.ErrNoSuchKey for an ETag condition on an absent key.
	PutObject(ctx context.Context, in object.PutInput) (meta.Manifest, error)
	// HeadObject returns the current version's manifest; meta.ErrNoSuchKey,
	// meta.ErrNoSuchBucket.
	HeadObject(ctx context.Context, bucket, key string) (meta.Manifest, error)
	// ReadObject streams bytes [off, off+length) of version m to w. It may
	// fail after writing some bytes.
	ReadObject(ctx context.Context, w io.Writer, m meta.Manifest, off, length int64) error
	// DeleteObject removes the key; an absent key is not an error.
	// meta.ErrNoSuchBucket.
	DeleteObject(ctx context.Context, bucket, key string) error
	// ListObjects returns one page of keys in binary order (see meta.ListOptions).
	ListObjects(ctx context.Context, bucket string, opts meta.ListOptions) (meta.ListResult, error)
	// CopyObject copies version src to in.Bucket/in.Key with in's metadata
	// (and under in.If, as PutObject); in.Body is ignored.
	CopyObject(ctx context.Context, src meta.Manifest, in object.PutInput) (meta.Manifest, error)

	// CreateUpload starts a multipart upload and assigns its ID.
	CreateUpload(ctx context.Context, u meta.Upload) (meta.Upload, error)
	// GetUpload returns an upload of bucket/key; meta.ErrNoSuchUpload.
	GetUpload(ctx context.Context, bucket, key, uploadID string) (meta.Upload, error)
	// UploadPart stores part number (1..10000) from in.Body, replacing a
	// previous part with that number; meta.ErrNoSuchUpload.
	UploadPart(ctx context.Context, uploadID string, number int, in object.PutInput) (meta.Part, error)
	// UploadPartCopy stores part number from bytes [off, off+length) of src.
	UploadPartCopy(ctx context.Context, uploadID string, number int, bucket, key string, src meta.Manifest, off, length int64) (meta.Part, error)
	// ListParts returns the upload's parts by part number; meta.ErrNoSuchUpload.
	ListParts(ctx context.Context, bucket, key, uploadID string) ([]meta.Part, error)
	// ListUploads returns one page of the bucket's uploads in progress
	// (see meta.UploadListOptions); meta.ErrNoSuchBucket.
	ListUploads(ctx context.Context, bucket string, opts meta.UploadListOptions) (meta.UploadListResult, error)
	// CompleteUploadIf commits the upload from parts when the key's current
	// version meets cond (the zero value: always); object.ErrInvalidPart,
	// object.ErrInvalidPartOrder, object.ErrEntityTooSmall,
	// meta.ErrNoSuchUpload, and for cond as PutObject's. A refusal leaves
	// the upload in progress.
	CompleteUploadIf(ctx context.Context, bucket, key, uploadID string, parts []object.CompletePart, cond object.Precondition) (meta.Manifest, error)
	// AbortUpload discards the upload and its parts; meta.ErrNoSuchUpload.
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
}
