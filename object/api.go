package object

// CONTRACT FILE: the exported API below is what httpapi, repair and cmd build
// against. The implementation fills it in; keep names and signatures, add what
// you need.

import (
	"errors"
	"io"
	"time"

	"github.com/shale-store/shale/meta"
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

// Errors of the S3 front door (Service). Each stands for the meta sentinel
// of the same name in meta's answer, which the error still wraps: errors.Is
// holds for both. S3 codes are httpapi's to decide.
var (
	// ErrNoSuchBucket: the bucket does not exist.
	ErrNoSuchBucket = errors.New("object: no such bucket")
	// ErrBucketExists: CreateBucket named a bucket that exists.
	ErrBucketExists = errors.New("object: bucket already exists")
	// ErrBucketNotEmpty: DeleteBucket named a bucket that holds objects.
	ErrBucketNotEmpty = errors.New("object: bucket not empty")
	// ErrNoSuchKey: the key has no current version; also a write under an
	// ETag Precondition to a key with none.
	ErrNoSuchKey = errors.New("object: no such key")
	// ErrNoSuchUpload: no multipart upload of that id for that bucket and
	// key (never created, completed or aborted).
	ErrNoSuchUpload = errors.New("object: no such upload")
	// ErrInvalidArgument: an argument the metadata service refuses (a part
	// number out of range, a Precondition with both Absent and ETag …).
	ErrInvalidArgument = errors.New("object: invalid argument")
	// ErrPreconditionFailed: a conditional write's Precondition did not
	// hold at its commit; nothing was committed.
	ErrPreconditionFailed = errors.New("object: precondition failed")
	// ErrConflict: a concurrent change won (CompleteUpload: a listed part
	// was uploaded again meanwhile); nothing changed, a retry may succeed.
	ErrConflict = errors.New("object: conflicting concurrent change")
	// ErrUnavailable: the metadata service could not be reached or has no
	// leader (an election, a lost majority); the call may or may not have
	// been applied.
	ErrUnavailable = errors.New("object: metadata service unavailable")
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
// ErrPreconditionFailed, or ErrNoSuchKey for an ETag condition on a key
// with no current version (the Coordinator's errors are meta's sentinels
// of those names; Service's match both).
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

// Bucket is one bucket as the front door shows it.
type Bucket struct {
	Name    string
	Created time.Time
	Region  string // the region it was created in; "" when none was given
}

// Info is one committed version of an object as the front door shows it:
// what GET and HEAD present and what a listing, a copy or a conditional
// write compares. It holds no layout (segments, coding, shards); it does
// carry, unexported, the version it describes, so ReadObject, CopyObject
// and UploadPartCopy read exactly that version. Only an Info returned by
// Service names a version those can read. Its maps are shared with that
// version's record: read them, do not change them.
type Info struct {
	Bucket, Key string
	// VersionID names this version: unique per commit, chosen by the
	// writer. Two Infos of one key with the same VersionID describe the
	// same bytes.
	VersionID string
	Size      int64
	// ETag is bare (no quotes): the hex MD5 of the bytes for a simple PUT
	// or a copy, MultipartETag for a multipart upload.
	ETag        string
	ContentType string            // as stored; "" when the writer sent none
	Headers     map[string]string // Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires
	UserMeta    map[string]string // x-amz-meta-*: lower-case names without the prefix
	Checksums   map[string]string // "CRC32" → base64 …, as PutInput.Checksums stored them
	Created     time.Time         // when the version was committed: S3's Last-Modified
	// PartSizes are the sizes of the object's parts in order: one per part
	// of a multipart upload, one for a simple PUT or a copy. Their sum is
	// Size.
	PartSizes []int64

	man *meta.Manifest
}

// ListOptions selects one page of a bucket's objects, in UTF-8 binary key
// order.
type ListOptions struct {
	Prefix    string
	Delimiter string
	After     string // exclusive start key (start-after, marker or continuation)
	Limit     int    // most keys plus common prefixes returned (1..1000)
}

// ObjectEntry is one listed object: its current version.
type ObjectEntry struct {
	Key     string
	Size    int64
	ETag    string // bare
	Created time.Time
}

// ListResult is one page of a listing. Objects and CommonPrefixes are each
// sorted; together they hold at most ListOptions.Limit entries.
type ListResult struct {
	Objects        []ObjectEntry
	CommonPrefixes []string
	Truncated      bool
	// NextAfter is the key (or common prefix) to pass as After for the
	// next page; set when Truncated.
	NextAfter string
}

// Upload is a multipart upload in progress. CreateUpload takes the fields
// it stores (Bucket, Key, ContentType, Headers, UserMeta, Checksums) and
// fills in ID and Created.
type Upload struct {
	ID          string
	Bucket, Key string
	ContentType string
	Headers     map[string]string
	UserMeta    map[string]string
	// Checksums names the checksum algorithm the upload was created with
	// ("CRC32" → ""), if any.
	Checksums map[string]string
	Created   time.Time
}

// UploadListOptions selects one page of a bucket's uploads in progress, in
// S3's order: by key in UTF-8 binary order, then by upload ID, which within
// a key is initiation order.
type UploadListOptions struct {
	Prefix    string
	Delimiter string
	// KeyMarker and UploadIDMarker say where the page starts (S3's
	// key-marker and upload-id-marker). Without UploadIDMarker the page
	// starts after every upload of KeyMarker (after everything under it
	// when KeyMarker is a common prefix); with it, after that upload of
	// KeyMarker. UploadIDMarker without KeyMarker is ignored. A common
	// prefix at or before KeyMarker is not listed again.
	KeyMarker      string
	UploadIDMarker string
	// Limit bounds uploads plus common prefixes; ≤ 0 or above 1000 means
	// 1000.
	Limit int
}

// UploadListResult is one page of uploads. Uploads and CommonPrefixes are
// each in listing order; together they hold at most the limit.
type UploadListResult struct {
	Uploads        []Upload
	CommonPrefixes []string
	Truncated      bool
	// NextKeyMarker and NextUploadIDMarker, set when Truncated, continue
	// the listing: the last upload listed, or the last common prefix and
	// an empty ID.
	NextKeyMarker      string
	NextUploadIDMarker string
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number    int    // 1..MaxPartNumber
	Size      int64  // bytes
	ETag      string // bare hex MD5 of the part's bytes
	Checksums map[string]string
	Created   time.Time
}

// The Coordinator (coordinator.go) provides, with ctx first everywhere, the
// object operations in meta's records (repair, rebalance and cmd use them
// with the manifests they need):
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
//
// Service (service.go) is the S3 front door's view of the same operations:
// results in this package's types above (Info for a manifest; Bucket,
// ListResult, Upload, UploadListResult and Part for meta's records of those
// names) and errors that match this package's sentinels, so httpapi
// imports no meta.
