package erasure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/xxh3"
)

// Record header layout (format version 1, all integers little-endian):
//
//	[0:8)   u64 checksum: XXH3-64 of record[8:], i.e. the rest of the header and the block
//	[8:10)  u16 format version (1)
//	[10:12) u16 shard index
//	[12:16) u32 block length in bytes (> 0, a multiple of 64, ≤ MaxBlockSize)
//	[16:24) u64 stripe number
//
// The checksum comes first so that everything it covers is one contiguous
// byte range and can be hashed in a single call.
const (
	offSum     = 0
	offVersion = 8
	offShard   = 10
	offLength  = 12
	offStripe  = 16
)

// FormatVersion is the record format version written by this package.
const FormatVersion = 1

// MaxBlockSize is the largest block size (and record block length) accepted.
const MaxBlockSize = 16 << 20

// ErrMismatch: a record's stored checksum does not match its contents.
// Wrapped inside a *ChecksumError.
var ErrMismatch = errors.New("erasure: checksum mismatch")

// putHeader fills the header of rec (header followed by the block, so
// len(rec) = RecordHeaderSize + block length) for the given shard and stripe,
// checksum last.
func putHeader(rec []byte, shard int, stripe int64) uint64 {
	binary.LittleEndian.PutUint16(rec[offVersion:], FormatVersion)
	binary.LittleEndian.PutUint16(rec[offShard:], uint16(shard))
	binary.LittleEndian.PutUint32(rec[offLength:], uint32(len(rec)-RecordHeaderSize))
	binary.LittleEndian.PutUint64(rec[offStripe:], uint64(stripe))
	sum := xxh3.Hash(rec[offVersion:])
	binary.LittleEndian.PutUint64(rec[offSum:], sum)
	return sum
}

// header is a parsed record header.
type header struct {
	sum    uint64
	shard  int
	length int
	stripe int64
}

// parseHeader decodes and sanity-checks h (RecordHeaderSize bytes). It does
// not check the checksum, which needs the block.
func parseHeader(h []byte) (header, error) {
	v := binary.LittleEndian.Uint16(h[offVersion:])
	if v != FormatVersion {
		return header{}, fmt.Errorf("%w: format version %d", ErrCorruptRecord, v)
	}
	hd := header{
		sum:    binary.LittleEndian.Uint64(h[offSum:]),
		shard:  int(binary.LittleEndian.Uint16(h[offShard:])),
		length: int(binary.LittleEndian.Uint32(h[offLength:])),
		stripe: int64(binary.LittleEndian.Uint64(h[offStripe:])),
	}
	if hd.length <= 0 || hd.length%64 != 0 || hd.length > MaxBlockSize {
		return header{}, fmt.Errorf("%w: block length %d", ErrCorruptRecord, hd.length)
	}
	if hd.stripe < 0 {
		return header{}, fmt.Errorf("%w: stripe number %d", ErrCorruptRecord, hd.stripe)
	}
	return hd, nil
}

// sequence checks the record-to-record invariants shared by RecordReader and
// Verifier: stripe numbers are consecutive, the shard index matches (when one
// is expected), every record has the length of the first, except that the
// last record may be shorter.
type sequence struct {
	shard int   // expected shard index, -1 for any (then fixed by the first record)
	next  int64 // expected stripe number of the next record
	first int   // length of the first record, 0 before it
	short bool  // a record shorter than the first was seen: no more may follow
}

func (s *sequence) check(h header) error {
	switch {
	case s.short:
		return fmt.Errorf("%w: record after a short (final) record", ErrCorruptRecord)
	case h.stripe != s.next:
		return fmt.Errorf("%w: stripe number %d, want %d", ErrCorruptRecord, h.stripe, s.next)
	case s.shard >= 0 && h.shard != s.shard:
		return fmt.Errorf("%w: shard index %d, want %d", ErrCorruptRecord, h.shard, s.shard)
	case s.first != 0 && h.length > s.first:
		return fmt.Errorf("%w: block length %d exceeds first block length %d", ErrCorruptRecord, h.length, s.first)
	}
	return nil
}

// advance records that h was accepted.
func (s *sequence) advance(h header) {
	if s.first == 0 {
		s.first = h.length
	} else if h.length < s.first {
		s.short = true
	}
	if s.shard < 0 {
		s.shard = h.shard
	}
	s.next++
}

// summer accumulates the digest of record checksums that Verifier.Summary
// and EncodeResult.Summaries report.
type summer struct {
	h xxh3.Hasher
	b [8]byte
}

func (s *summer) add(sum uint64) {
	binary.LittleEndian.PutUint64(s.b[:], sum)
	_, _ = s.h.Write(s.b[:])
}

func (s *summer) sum() uint64 { return s.h.Sum64() }

// SummaryOf returns the digest of a shard stream's record checksums, in
// stream order: the value Verifier.Summary reports for that stream.
func SummaryOf(sums []uint64) uint64 {
	var s summer
	for _, v := range sums {
		s.add(v)
	}
	return s.sum()
}

// RecordReader reads a shard stream record by record, verifying each. It knows
// nothing of k, m or the block size: every record is self-describing.
// Besides each checksum it checks that stripe numbers are consecutive from
// firstStripe, that the shard index is the expected one, and that only the
// last record is shorter than the first. Errors are sticky.
type RecordReader struct {
	r   io.Reader
	seq sequence
	hdr [RecordHeaderSize]byte
	buf []byte
	err error
}

// NewRecordReader verifies the stream read from r. firstStripe is the stripe
// number of the first record (non-zero for ranged reads); shard is the
// expected shard index, or -1 to accept whatever the records say.
func NewRecordReader(r io.Reader, shard int, firstStripe int64) *RecordReader {
	return &RecordReader{r: r, seq: sequence{shard: shard, next: firstStripe}}
}

// Next returns the next record's block (valid until the next call), or io.EOF
// after the last record. Corruption, including a stream truncated inside a
// record, is a *ChecksumError; any other read error is returned as is.
func (rr *RecordReader) Next() ([]byte, error) {
	block, err := rr.readInto(rr.buf, 0)
	if err == nil {
		rr.buf = block[:cap(block)]
	}
	return block, err
}

// Stripe is the stripe number the next record must carry.
func (rr *RecordReader) Stripe() int64 { return rr.seq.next }

// readInto reads the next record, reusing dst's capacity for the block when
// it is large enough, and returns the verified block. want > 0 demands that
// exact block length (checked before the block is read).
func (rr *RecordReader) readInto(dst []byte, want int) ([]byte, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	block, err := rr.read(dst, want)
	if err != nil {
		rr.err = err
		return nil, err
	}
	return block, nil
}

func (rr *RecordReader) fail(err error) error {
	shard := rr.seq.shard
	return &ChecksumError{Shard: shard, Stripe: rr.seq.next, Err: err}
}

func (rr *RecordReader) read(dst []byte, want int) ([]byte, error) {
	n, err := io.ReadFull(rr.r, rr.hdr[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err == io.ErrUnexpectedEOF:
		return nil, rr.fail(fmt.Errorf("%w: truncated header (%d bytes)", ErrCorruptRecord, n))
	case err != nil:
		return nil, err
	}
	h, err := parseHeader(rr.hdr[:])
	if err != nil {
		return nil, rr.fail(err)
	}
	if err := rr.seq.check(h); err != nil {
		return nil, rr.fail(err)
	}
	if want > 0 && h.length != want {
		return nil, rr.fail(fmt.Errorf("%w: block length %d, want %d", ErrCorruptRecord, h.length, want))
	}
	if cap(dst) < RecordHeaderSize+h.length {
		dst = make([]byte, RecordHeaderSize+h.length)
	}
	rec := dst[:RecordHeaderSize+h.length]
	copy(rec, rr.hdr[:])
	if n, err := io.ReadFull(rr.r, rec[RecordHeaderSize:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, rr.fail(fmt.Errorf("%w: truncated block (%d of %d bytes)", ErrCorruptRecord, n, h.length))
		}
		return nil, err
	}
	if got := xxh3.Hash(rec[offVersion:]); got != h.sum {
		return nil, rr.fail(fmt.Errorf("%w: stored %016x, computed %016x", ErrMismatch, h.sum, got))
	}
	rr.seq.advance(h)
	return rec[RecordHeaderSize:], nil
}

// Verifier checks a shard stream written through it, record by record, while
// passing the bytes through unchanged. Storage nodes use it to refuse a
// corrupt upload before it is acknowledged. It holds no block in memory: the
// checksum is computed incrementally. Errors are sticky.
type Verifier struct {
	seq     sequence
	hdr     [RecordHeaderSize]byte
	hn      int    // header bytes collected for the current record
	cur     header // current record's header, valid once hn == RecordHeaderSize
	left    int    // block bytes of the current record still to come
	h       xxh3.Hasher
	summary summer
	records int64
	err     error
}

// NewVerifier returns a verifier for a whole shard stream (starting at stripe
// 0). shard is the expected shard index, or -1 to accept whatever the records
// say.
func NewVerifier(shard int) *Verifier {
	return &Verifier{seq: sequence{shard: shard}}
}

func (v *Verifier) fail(err error) error {
	v.err = &ChecksumError{Shard: v.seq.shard, Stripe: v.seq.next, Err: err}
	return v.err
}

// Write consumes stream bytes; it fails with *ChecksumError at the first bad
// record, returning the number of bytes consumed before the failing record's
// end.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n := 0
	for n < len(p) {
		if v.hn < RecordHeaderSize {
			c := copy(v.hdr[v.hn:], p[n:])
			v.hn += c
			n += c
			if v.hn < RecordHeaderSize {
				break
			}
			h, err := parseHeader(v.hdr[:])
			if err != nil {
				return n, v.fail(err)
			}
			if err := v.seq.check(h); err != nil {
				return n, v.fail(err)
			}
			v.cur, v.left = h, h.length
			v.h.Reset()
			_, _ = v.h.Write(v.hdr[offVersion:])
			continue
		}
		c := min(v.left, len(p)-n)
		_, _ = v.h.Write(p[n : n+c])
		v.left -= c
		n += c
		if v.left == 0 {
			if got := v.h.Sum64(); got != v.cur.sum {
				return n, v.fail(fmt.Errorf("%w: stored %016x, computed %016x", ErrMismatch, v.cur.sum, got))
			}
			v.seq.advance(v.cur)
			v.summary.add(v.cur.sum)
			v.records++
			v.hn = 0
		}
	}
	return n, nil
}

// Close checks that the stream ended on a record boundary. It does not close
// anything else.
func (v *Verifier) Close() error {
	if v.err != nil {
		return v.err
	}
	if v.hn != 0 {
		return v.fail(fmt.Errorf("%w: stream ends inside a record", ErrCorruptRecord))
	}
	return nil
}

// Summary is a digest of the record checksums seen so far (XXH3 over them),
// recorded in indexes as the shard's checksum. It equals SummaryOf of the
// stream's record checksums and EncodeResult.Summaries for the shard.
func (v *Verifier) Summary() uint64 { return v.summary.sum() }

// Records is the number of complete records seen.
func (v *Verifier) Records() int64 { return v.records }

// RecordLen is the length (header + block) of the stream's first record —
// that of every record but possibly the last — once that record is
// complete; 0 before.
func (v *Verifier) RecordLen() int64 {
	if v.records == 0 {
		return 0
	}
	return int64(RecordHeaderSize + v.seq.first)
}

// Summer computes a shard's summary (Verifier.Summary, SummaryOf)
// incrementally from its record checksums given in stream order, for a
// reader that sees a shard's records in pieces (several ranged reads) and
// holds no more than this state between them. The zero value is ready.
type Summer struct{ s summer }

// Add takes the checksum of the stream's next record.
func (s *Summer) Add(recordSum uint64) { s.s.add(recordSum) }

// Sum is the summary of the record checksums added so far.
func (s *Summer) Sum() uint64 { return s.s.sum() }

// RecordChecksum returns the checksum a record header stores (hdr holds at
// least the record's first 8 bytes): the value a shard's summary is taken
// over. It verifies nothing: a RecordReader checks that the record's bytes
// match it.
func RecordChecksum(hdr []byte) uint64 { return binary.LittleEndian.Uint64(hdr[offSum:]) }
