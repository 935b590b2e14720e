package erasure

// CONTRACT FILE: the exported API below is what other packages build against.
// The implementation replaces the bodies; keep names and signatures (add more
// if needed, but do not change these without telling the coordinator).

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// RecordHeaderSize is the size of the header before every block in a shard
// stream: u32 block length | u32 stripe number | u16 shard index |
// u16 format version | u32 reserved (zero) | u64 XXH3-64 of header[0:16] and the block.
// All integers little-endian. (Implementation may refine the layout but must
// keep it self-describing: a reader that knows nothing of k, m or the block size
// can walk and verify a shard stream record by record.)
const RecordHeaderSize = 24

// ErrTooFewShards: fewer than k shards could be read (or written) intact, so
// the stripe cannot be reconstructed.
var ErrTooFewShards = errors.New("erasure: too few intact shards")

// ErrInvalidLayout: k, m or block size out of range (k ≥ 1, m ≥ 0, k+m ≤ 256,
// block size a positive multiple of 64 up to 16 MiB).
var ErrInvalidLayout = errors.New("erasure: invalid layout")

// ErrCorruptRecord: a record's header is malformed (bad length, version,
// truncated). Wrapped inside a *ChecksumError.
var ErrCorruptRecord = errors.New("erasure: corrupt record")

// ChecksumError says which shard and which block (stripe number) failed
// verification.
type ChecksumError struct {
	Shard  int   // shard index, 0..k+m-1 (-1 if unknown)
	Stripe int64 // stripe (block) number within the shard
	Err    error // underlying cause (ErrCorruptRecord, a mismatch, truncation)
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("erasure: shard %d block %d: checksum: %v", e.Shard, e.Stripe, e.Err)
}
func (e *ChecksumError) Unwrap() error { return e.Err }

// ShardError wraps an I/O error from one shard's reader or writer.
type ShardError struct {
	Shard int
	Op    string // "read", "write", "open"
	Err   error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("erasure: %s shard %d: %v", e.Op, e.Shard, e.Err)
}
func (e *ShardError) Unwrap() error { return e.Err }

// Codec codes objects into k data + m parity shard streams of checksummed
// records, stripe by stripe. A Codec is safe for concurrent use.
type Codec struct {
	k, m, blockSize int
	// implementation fields
}

// DefaultBlockSize is the block size used when none is configured (chosen by benchmark).
const DefaultBlockSize = 256 << 10

// New returns a codec for k data and m parity shards with the given block size.
func New(k, m, blockSize int) (*Codec, error) { panic("unimplemented") }

func (c *Codec) K() int         { return c.k }
func (c *Codec) M() int         { return c.m }
func (c *Codec) BlockSize() int { return c.blockSize }

// Stripes is the number of stripes an object of size bytes has (0 for 0 bytes).
func (c *Codec) Stripes(size int64) int64 { panic("unimplemented") }

// ShardSize is the length in bytes of each shard stream for an object of size bytes.
func (c *Codec) ShardSize(size int64) int64 { panic("unimplemented") }

// EncodeResult reports what Encode wrote.
type EncodeResult struct {
	Size      int64   // object bytes read from the input
	ShardErrs []error // per shard: nil if every record was written, else the first write error (a *ShardError)
}

// Encode reads r to EOF and writes shard i's stream to shards[i]
// (len(shards) == k+m). A nil writer is skipped. A writer that fails is
// dropped (no further writes to it) and its error recorded in ShardErrs;
// Encode goes on while at least minShards writers remain, and fails with
// ErrTooFewShards below that. It fails on a read error from r or when ctx is
// done. Memory is bounded by a few stripes whatever the object size.
// Encode never closes the writers.
func (c *Codec) Encode(ctx context.Context, r io.Reader, shards []io.Writer, minShards int) (EncodeResult, error) {
	panic("unimplemented")
}

// ShardOpener opens shard `shard`'s stream for the byte range [off, off+n) of
// that stream. The range always starts and ends on record boundaries.
// An error marks the shard as failed for the rest of the decode.
type ShardOpener func(ctx context.Context, shard int, off, n int64) (io.ReadCloser, error)

// ShardFailure is one shard that could not be used during a decode.
type ShardFailure struct {
	Shard  int
	Stripe int64 // first stripe at which it failed
	Err    error // *ChecksumError for corruption, else the I/O error
}

// Corrupt reports whether the failure was a checksum/format failure (bitrot)
// rather than an I/O error, timeout or missing shard.
func (f ShardFailure) Corrupt() bool {
	var ce *ChecksumError
	return errors.As(f.Err, &ce)
}

// DecodeReport lists the shards that failed during a decode, so callers can
// report them for repair.
type DecodeReport struct {
	Failures []ShardFailure
}

// Decode writes bytes [off, off+length) of an object of size bytes to w.
// It opens data shards first (no reconstruction on the healthy path), only the
// stripes the range needs, and verifies every record. When a data shard fails
// (open error, read error, checksum error), it opens parity shards from the
// failing stripe on and reconstructs. It fails with ErrTooFewShards (wrapped,
// with the report filled) when fewer than k shards are intact for a stripe.
// Memory is bounded by a few stripes.
func (c *Codec) Decode(ctx context.Context, w io.Writer, size, off, length int64, open ShardOpener) (DecodeReport, error) {
	panic("unimplemented")
}

// Rebuild re-creates the shard streams listed in missing (indexes) for an
// object of size bytes, reading k intact shards through open and writing
// shard missing[i]'s full stream to out[i]. Used by repair.
func (c *Codec) Rebuild(ctx context.Context, size int64, open ShardOpener, missing []int, out []io.Writer) (DecodeReport, error) {
	panic("unimplemented")
}

// RecordReader reads a shard stream record by record, verifying each. It knows
// nothing of k, m or the block size: every record is self-describing.
type RecordReader struct {
	// implementation fields
}

// NewRecordReader verifies the stream read from r. firstStripe is the stripe
// number of the first record (non-zero for ranged reads); shard is the
// expected shard index, or -1 to accept whatever the records say.
func NewRecordReader(r io.Reader, shard int, firstStripe int64) *RecordReader {
	panic("unimplemented")
}

// Next returns the next record's block (valid until the next call), or io.EOF
// after the last record. Corruption is a *ChecksumError.
func (rr *RecordReader) Next() ([]byte, error) { panic("unimplemented") }

// Verifier checks a shard stream written through it, record by record, while
// passing the bytes through unchanged. Storage nodes use it to refuse a
// corrupt upload before it is acknowledged.
type Verifier struct {
	// implementation fields
}

// NewVerifier returns a verifier for a whole shard stream (starting at stripe 0).
func NewVerifier(shard int) *Verifier { panic("unimplemented") }

// Write consumes stream bytes; it fails with *ChecksumError at the first bad record.
func (v *Verifier) Write(p []byte) (int, error) { panic("unimplemented") }

// Close checks that the stream ended on a record boundary.
func (v *Verifier) Close() error { panic("unimplemented") }

// Summary is a digest of the record checksums seen so far (XXH3 over them),
// recorded in indexes as the shard's checksum.
func (v *Verifier) Summary() uint64 { panic("unimplemented") }

// Records is the number of complete records seen.
func (v *Verifier) Records() int64 { panic("unimplemented") }
