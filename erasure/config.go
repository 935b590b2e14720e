package erasure

import (
	"errors"
	"fmt"

	"github.com/klauspost/reedsolomon"
)

// ErrInvalidArgument: a call's arguments are inconsistent with the codec or
// each other (wrong number of writers, a missing index out of range).
var ErrInvalidArgument = errors.New("erasure: invalid argument")

// ErrInvalidRange: a Decode range lies outside the object.
var ErrInvalidRange = errors.New("erasure: invalid range")

// Config holds a Codec's settings. The zero value of every field but K means
// "use the default".
type Config struct {
	// K is the number of data shards (≥ 1).
	K int
	// M is the number of parity shards (≥ 0, K+M ≤ 256).
	M int
	// BlockSize is the bytes of one shard in one full stripe: a stripe holds
	// K×BlockSize object bytes. A positive multiple of 64 up to MaxBlockSize.
	// Default DefaultBlockSize. Larger blocks amortise per-call costs, smaller
	// ones cut memory per request and the latency to first byte.
	BlockSize int
	// Depth is the number of stripe buffers one Encode call keeps in flight
	// (being read, encoded, or written). Default 4, minimum 2. Encode memory
	// is at most Depth × (K+M) × (RecordHeaderSize+BlockSize) bytes, reused
	// across calls.
	Depth int
	// ReadAhead is the number of records a Decode or Rebuild reads ahead on
	// each open shard stream. Default 2. Decode memory is at most
	// (K+M) × (ReadAhead+2) × (RecordHeaderSize+BlockSize) bytes.
	ReadAhead int
	// EncoderGoroutines bounds the goroutines reedsolomon may use to split
	// one stripe's encode or reconstruction. 0 lets the library choose for
	// the block size (WithAutoGoroutines); 1 keeps each stripe on one
	// goroutine, which is what a busy gateway with many requests wants.
	EncoderGoroutines int
}

// withDefaults returns cfg with defaults filled in, or ErrInvalidLayout.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.Depth == 0 {
		cfg.Depth = 4
	}
	if cfg.ReadAhead == 0 {
		cfg.ReadAhead = 2
	}
	switch {
	case cfg.K < 1 || cfg.M < 0 || cfg.K+cfg.M > 256:
		return cfg, fmt.Errorf("%w: k=%d m=%d", ErrInvalidLayout, cfg.K, cfg.M)
	case cfg.BlockSize <= 0 || cfg.BlockSize%64 != 0 || cfg.BlockSize > MaxBlockSize:
		return cfg, fmt.Errorf("%w: block size %d", ErrInvalidLayout, cfg.BlockSize)
	case cfg.Depth < 2 || cfg.ReadAhead < 1 || cfg.EncoderGoroutines < 0:
		return cfg, fmt.Errorf("%w: depth %d, read-ahead %d, encoder goroutines %d",
			ErrInvalidLayout, cfg.Depth, cfg.ReadAhead, cfg.EncoderGoroutines)
	}
	return cfg, nil
}

// NewWithConfig returns a codec for cfg (see Config for defaults).
func NewWithConfig(cfg Config) (*Codec, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Codec{k: cfg.K, m: cfg.M, blockSize: cfg.BlockSize, cfg: cfg}
	if cfg.M > 0 {
		opt := reedsolomon.WithAutoGoroutines(cfg.BlockSize)
		if cfg.EncoderGoroutines > 0 {
			opt = reedsolomon.WithMaxGoroutines(cfg.EncoderGoroutines)
		}
		// Default (Vandermonde-derived) matrix: the parity bytes are part of
		// the on-disk format pinned by the known-answer test.
		enc, err := reedsolomon.New(cfg.K, cfg.M, opt)
		if err != nil {
			return nil, fmt.Errorf("%w: k=%d m=%d: %v", ErrInvalidLayout, cfg.K, cfg.M, err)
		}
		c.enc = enc
	}
	return c, nil
}

// Config returns the codec's settings with defaults filled in.
func (c *Codec) Config() Config { return c.cfg }

// EncodeBlocks computes the m parity blocks of one stripe in memory:
// blocks[0:k] are the data blocks, blocks[k:k+m] receive parity; all have the
// same length. No records, checksums or I/O: this is the raw Reed-Solomon
// cost that benchmarks compare the pipeline against.
func (c *Codec) EncodeBlocks(blocks [][]byte) error {
	if len(blocks) != c.k+c.m {
		return fmt.Errorf("encode blocks: %d blocks for %d shards: %w", len(blocks), c.k+c.m, ErrInvalidArgument)
	}
	if c.m == 0 {
		return nil
	}
	return c.enc.Encode(blocks)
}

// stripeData is the object bytes in one full stripe.
func (c *Codec) stripeData() int64 { return int64(c.k) * int64(c.blockSize) }

// recordSize is the size of a full record.
func (c *Codec) recordSize() int64 { return int64(RecordHeaderSize + c.blockSize) }

// lastBlockLen is the block length of a final, partial stripe holding rem
// object bytes (0 < rem < k×BlockSize): ceil(rem/k) rounded up to a multiple
// of 64, so SIMD kernels see aligned lengths.
func (c *Codec) lastBlockLen(rem int64) int {
	per := (rem + int64(c.k) - 1) / int64(c.k)
	return int((per + 63) &^ 63)
}

// blockLen is the block length of stripe s of an object of size bytes.
func (c *Codec) blockLen(s, size int64) int {
	sd := c.stripeData()
	if rem := size - s*sd; rem < sd {
		return c.lastBlockLen(rem)
	}
	return c.blockSize
}

// streamLen is the byte length of records [from, through] of a shard stream
// of an object of size bytes. Every record but the object's last is full.
func (c *Codec) streamLen(from, through, size int64) int64 {
	return (through-from)*c.recordSize() + int64(RecordHeaderSize+c.blockLen(through, size))
}
