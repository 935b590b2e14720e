package erasure

// CONTRACT FILE: the exported API below is what other packages build against.
// The implementation replaces the bodies; keep names and signatures (add more
// if needed, but do not change these without telling the coordinator).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// RecordHeaderSize is the size of the header before every block in a shard
// stream. Layout (format version 1, little-endian; see record.go):
// u64 XXH3-64 of the rest of the record (header[8:24] and the block) |
// u16 format version | u16 shard index | u32 block length | u64 stripe number.
// It is self-describing: a reader that knows nothing of k, m or the block
// size can walk and verify a shard stream record by record.
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
	cfg             Config
	enc             reedsolomon.Encoder // shared: safe for concurrent use
	stripes         sync.Pool           // *stripe buffers of full size: Encode's stripes, Decode's and Rebuild's records
}

// DefaultBlockSize is the block size used when none is configured (chosen by benchmark).
const DefaultBlockSize = 256 << 10

// New returns a codec for k data and m parity shards with the given block size.
func New(k, m, blockSize int) (*Codec, error) {
	return NewWithConfig(Config{K: k, M: m, BlockSize: blockSize})
}

func (c *Codec) K() int         { return c.k }
func (c *Codec) M() int         { return c.m }
func (c *Codec) BlockSize() int { return c.blockSize }

// Stripes is the number of stripes an object of size bytes has (0 for 0 bytes).
func (c *Codec) Stripes(size int64) int64 {
	if size <= 0 {
		return 0
	}
	sd := c.stripeData()
	return (size + sd - 1) / sd
}

// ShardSize is the length in bytes of each shard stream for an object of size bytes.
func (c *Codec) ShardSize(size int64) int64 {
	n := c.Stripes(size)
	if n == 0 {
		return 0
	}
	return c.streamLen(0, n-1, size)
}

// EncodeResult reports what Encode wrote.
type EncodeResult struct {
	Size      int64   // object bytes read from the input
	ShardErrs []error // per shard: nil if every record was written, else the first write error (a *ShardError)
	// Summaries holds, per shard written in full, the digest of its record
	// checksums (what Verifier.Summary reports for that stream); 0 for a nil
	// or failed writer.
	Summaries []uint64
}

// Encode reads r to EOF and writes shard i's stream to shards[i]
// (len(shards) == k+m). A nil writer is skipped. A writer that fails is
// dropped (no further writes to it) and its error recorded in ShardErrs;
// Encode goes on while at least minShards writers remain, and fails with
// ErrTooFewShards below that. It fails on a read error from r or when ctx is
// done. Memory is bounded by a few stripes whatever the object size.
// Encode never closes the writers.
func (c *Codec) Encode(ctx context.Context, r io.Reader, shards []io.Writer, minShards int) (EncodeResult, error) {
	return c.encode(ctx, r, -1, shards, minShards)
}

// EncodeSize is Encode for an input of known length: r must hold exactly
// size bytes (size < 0: unknown, the same as Encode). It reads r to EOF all
// the same — one more Read after the last byte, so a reader that verifies
// the stream at its end does so before EncodeSize returns — and fails when r
// ends early (wrapping io.ErrUnexpectedEOF) or has more. Knowing the size,
// it takes no more stripe buffers than the object has stripes, and a small
// object gets one buffer sized to it instead of a full pooled stripe. The
// streams written are byte for byte those Encode writes for the same bytes.
// It uses at most EncodeMemory(size) bytes of buffers, and takes a stripe's
// buffer only once the stripe's first byte has been read, so a caller that
// hands it whole stripes at a time holds no buffer while its input is slow.
func (c *Codec) EncodeSize(ctx context.Context, r io.Reader, size int64, shards []io.Writer, minShards int) (EncodeResult, error) {
	return c.encode(ctx, r, size, shards, minShards)
}

// EncodeMemory is the most stripe-buffer memory, in bytes, that one
// EncodeSize call for an object of size bytes (size < 0: unknown, or
// Encode) holds at once: min(Depth, stripes) × (k+m) × the record slot size.
// Callers that bound memory across calls reserve this much first.
func (c *Codec) EncodeMemory(size int64) int64 { return c.encodeMemory(size) }

// DecodeMemory is the most record-buffer memory, in bytes, that one Decode
// of bytes [off, off+length) of an object of size bytes holds at once: at
// most ReadAhead+2 records (fewer when the range has fewer stripes) on each
// of the k+m shard streams. Rebuild of a whole object holds at most
// DecodeMemory(size, 0, size).
func (c *Codec) DecodeMemory(size, off, length int64) int64 {
	return c.decodeMemory(size, off, length)
}

// ShardOpener opens shard `shard`'s stream for the byte range [off, off+n) of
// that stream. The range always starts and ends on record boundaries.
// An error marks the shard as failed for the rest of the decode.
// The reader is read from one goroutine; it should honour ctx, and its Close
// may be called while a Read is in progress (to abort it). Decode and Rebuild
// close every reader they open before returning.
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
	return c.decode(ctx, w, size, off, length, open)
}

// Rebuild re-creates the shard streams listed in missing (indexes) for an
// object of size bytes, reading k intact shards through open and writing
// shard missing[i]'s full stream to out[i]. Used by repair.
func (c *Codec) Rebuild(ctx context.Context, size int64, open ShardOpener, missing []int, out []io.Writer) (DecodeReport, error) {
	return c.rebuild(ctx, size, open, missing, out)
}
