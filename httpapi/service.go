package httpapi

import (
	"context"
	"io"

	"github.com/shale-store/shale/object"
)

// ObjectService is the object layer as the S3 API uses it; object.Service
// implements it. It speaks the object layer's vocabulary only: errors wrap
// the sentinels of object (or the error a request body returned), which the
// error table maps to S3 codes.
//
// Bodies: PutObject and UploadPart read in.Body to io.EOF before they commit
// and commit nothing when a Read fails; that error is returned wrapped. The
// map in.Checksums may gain entries when in.Body returns io.EOF (checksums
// sent in an aws-chunked trailer are known only then), so an implementation
// reads in.Checksums after the body is consumed, never before.
type ObjectService interface {
	// CreateBucket creates an empty bucket; object.ErrBucketExists if it exists.
	CreateBucket(ctx context.Context, name, region string) error
	// HeadBucket returns the bucket; object.ErrNoSuchBucket.
	HeadBucket(ctx context.Context, name string) (object.Bucket, error)
	// DeleteBucket removes an empty bucket; object.ErrNoSuchBucket,
	// object.ErrBucketNotEmpty.
	DeleteBucket(ctx context.Context, name string) error
	// ListBuckets returns every bucket, sorted by name.
	ListBuckets(ctx context.Context) ([]object.Bucket, error)

	// PutObject stores in.Body as in.Bucket/in.Key, replacing any previous
	// version once committed; object.ErrBadDigest, object.ErrIncompleteBody,
	// object.ErrQuorum, object.ErrNoSuchBucket; with in.If (decided
	// atomically with the commit) object.ErrPreconditionFailed, or
	// object.ErrNoSuchKey for an ETag condition on an absent key.
	PutObject(ctx context.Context, in object.PutInput) (object.Info, error)
	// HeadObject returns the current version; object.ErrNoSuchKey,
	// object.ErrNoSuchBucket.
	HeadObject(ctx context.Context, bucket, key string) (object.Info, error)
	// ReadObject streams bytes [off, off+length) of the version o (as
	// HeadObject returned it) to w. It may fail after writing some bytes.
	ReadObject(ctx context.Context, w io.Writer, o object.Info, off, length int64) error
	// DeleteObject removes the key; an absent key is not an error.
	// object.ErrNoSuchBucket.
	DeleteObject(ctx context.Context, bucket, key string) error
	// ListObjects returns one page of keys in binary order (see object.ListOptions).
	ListObjects(ctx context.Context, bucket string, opts object.ListOptions) (object.ListResult, error)
	// CopyObject copies version src to in.Bucket/in.Key with in's metadata
	// (and under in.If, as PutObject); in.Body is ignored.
	CopyObject(ctx context.Context, src object.Info, in object.PutInput) (object.Info, error)

	// CreateUpload starts a multipart upload and assigns its ID.
	CreateUpload(ctx context.Context, u object.Upload) (object.Upload, error)
	// GetUpload returns an upload of bucket/key; object.ErrNoSuchUpload.
	GetUpload(ctx context.Context, bucket, key, uploadID string) (object.Upload, error)
	// UploadPart stores part number (1..10000) from in.Body, replacing a
	// previous part with that number; object.ErrNoSuchUpload.
	UploadPart(ctx context.Context, uploadID string, number int, in object.PutInput) (object.Part, error)
	// UploadPartCopy stores part number from bytes [off, off+length) of src.
	UploadPartCopy(ctx context.Context, uploadID string, number int, bucket, key string, src object.Info, off, length int64) (object.Part, error)
	// ListParts returns the upload's parts by part number; object.ErrNoSuchUpload.
	ListParts(ctx context.Context, bucket, key, uploadID string) ([]object.Part, error)
	// ListUploads returns one page of the bucket's uploads in progress
	// (see object.UploadListOptions); object.ErrNoSuchBucket.
	ListUploads(ctx context.Context, bucket string, opts object.UploadListOptions) (object.UploadListResult, error)
	// CompleteUploadIf commits the upload from parts when the key's current
	// version meets cond (the zero value: always); object.ErrInvalidPart,
	// object.ErrInvalidPartOrder, object.ErrEntityTooSmall,
	// object.ErrNoSuchUpload, object.ErrConflict, and for cond as
	// PutObject's. A refusal leaves the upload in progress.
	CompleteUploadIf(ctx context.Context, bucket, key, uploadID string, parts []object.CompletePart, cond object.Precondition) (object.Info, error)
	// AbortUpload discards the upload and its parts; object.ErrNoSuchUpload.
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
}
