package object

// CONTRACT FILE: the exported API below is what httpapi, repair and cmd build
// against. The implementation fills it in; keep names and signatures, add what
// you need.

import (
	"errors"
	"io"
)

var (
	// ErrQuorum: fewer than the write quorum of shard writes were durable, so
	// the object was not committed (its shards are garbage). S3: SlowDown.
	ErrQuorum = errors.New("object: write quorum not met")
	// ErrNoPlacement: the cluster map has too few placeable nodes. S3: SlowDown.
	ErrNoPlacement = errors.New("object: not enough nodes to place shards")
	// ErrBadDigest: the body's MD5 did not match PutInput.ExpectMD5; nothing committed.
	ErrBadDigest = errors.New("object: content MD5 mismatch")
	// ErrIncompleteBody: the body was shorter or longer than the declared size.
	ErrIncompleteBody = errors.New("object: body size does not match declared size")
	// ErrInvalidPart: a completed part is unknown or its ETag differs.
	ErrInvalidPart = errors.New("object: invalid part")
	// ErrInvalidPartOrder: completed parts are not in ascending order.
	ErrInvalidPartOrder = errors.New("object: parts not in ascending order")
	// ErrEntityTooSmall: a part other than the last is smaller than MinPartSize.
	ErrEntityTooSmall = errors.New("object: part too small")
	// ErrUnreadable: fewer than k shards of a stripe could be read; the read
	// failed part-way (S3: InternalError / connection reset).
	ErrUnreadable = errors.New("object: too few shards readable")
	// ErrBusy: the memory budget stayed spent for Config.BudgetWait, so the
	// operation gave up before it started (or, after waiting on its client,
	// before it went on). S3: SlowDown.
	ErrBusy = errors.New("object: memory budget busy")
)

// MinPartSize is S3's minimum size of every part but the last: 5 MiB.
const MinPartSize = 5 << 20

// PutInput is one object (or part) upload.
type PutInput struct {
	Bucket, Key string
	// Body is read to EOF. A reader may fail its last Read with an error of
	// its own (say a checksum mismatch); then nothing is committed and that
	// error is returned (wrapped).
	Body io.Reader
	Size int64 // declared size, or -1 when unknown
	// ExpectMD5, when set, must equal the MD5 of the body (Content-MD5).
	ExpectMD5   []byte
	ContentType string
	Headers     map[string]string
	UserMeta    map[string]string
	Checksums   map[string]string // verified by the caller; stored as given
	// If makes the write conditional on the key's current version (the
	// zero value: unconditional). Ignored by UploadPart.
	If Precondition
}

// Precondition is a conditional write's requirement on the key's current
// version: S3's If-None-Match: * (Absent) or If-Match: <etag> (ETag). Meta
// decides it in the same step as the commit, so of two racing writes that
// both require the key to be absent exactly one commits. A write refused
// by it commits nothing (its shards become garbage) and fails with
// meta.ErrPreconditionFailed, or meta.ErrNoSuchKey for an ETag condition
// on a key with no current version.
type Precondition struct {
	Absent bool
	// ETag is compared without quotes and case-insensitively.
	ETag string
}

// IsZero reports whether p requires nothing.
func (p Precondition) IsZero() bool { return !p.Absent && p.ETag == "" }

// CompletePart is one entry of a CompleteMultipartUpload request.
type CompletePart struct {
	Number int
	ETag   string // bare hex (quotes stripped)
}

// The Coordinator (coordinator.go) provides, with ctx first everywhere:
//
//	CreateBucket(ctx, name, region string) error
//	HeadBucket(ctx, name string) (meta.Bucket, error)
//	DeleteBucket(ctx, name string) error
//	ListBuckets(ctx) ([]meta.Bucket, error)
//	PutObject(ctx, in PutInput) (meta.Manifest, error)
//	HeadObject(ctx, bucket, key string) (meta.Manifest, error)
//	// ReadObject streams bytes [off, off+length) of the version m to w.
//	ReadObject(ctx, w io.Writer, m meta.Manifest, off, length int64) error
//	DeleteObject(ctx, bucket, key string) error          // absent key: nil
//	ListObjects(ctx, bucket string, opts meta.ListOptions) (meta.ListResult, error)
//	// CopyObject copies version src to in.Bucket/in.Key with in's metadata
//	// (in.Body is ignored).
//	CopyObject(ctx, src meta.Manifest, in PutInput) (meta.Manifest, error)
//	CreateUpload(ctx, u meta.Upload) (meta.Upload, error)
//	GetUpload(ctx, bucket, key, uploadID string) (meta.Upload, error)
//	// UploadPart stores part `number` (1..10000) from in.Body (in.Size, in.ExpectMD5, in.Checksums used).
//	UploadPart(ctx, uploadID string, number int, in PutInput) (meta.Part, error)
//	// UploadPartCopy stores part `number` from bytes [off, off+length) of src.
//	UploadPartCopy(ctx, uploadID string, number int, bucket, key string, src meta.Manifest, off, length int64) (meta.Part, error)
//	ListParts(ctx, bucket, key, uploadID string) ([]meta.Part, error)
//	ListUploads(ctx, bucket string, opts meta.UploadListOptions) (meta.UploadListResult, error) // one page
//	CompleteUpload(ctx, bucket, key, uploadID string, parts []CompletePart) (meta.Manifest, error)
//	// CompleteUploadIf is CompleteUpload under a Precondition; a refusal
//	// leaves the upload to be completed or aborted later.
//	CompleteUploadIf(ctx, bucket, key, uploadID string, parts []CompletePart, cond Precondition) (meta.Manifest, error)
//	AbortUpload(ctx, bucket, key, uploadID string) error
//
// and, for the repair loop and operators (repair.go, coordinator.go):
//
//	RepairObject(ctx, bucket, key string, bad []meta.BadShard, lost LostFunc) (RepairResult, error)
//	Stats() Stats
//	Config() Config
