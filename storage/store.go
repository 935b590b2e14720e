package storage

// CONTRACT FILE: the exported API below is what other packages build against.
// Keep names and signatures; add what you need.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

var (
	// ErrNotFound: no shard with that id.
	ErrNotFound = errors.New("storage: shard not found")
	// ErrInvalidID: the id is empty, too long (> MaxIDLen), or holds a
	// character outside [A-Za-z0-9._-], or is "." / ".." / starts with ".".
	ErrInvalidID = errors.New("storage: invalid shard id")
	// ErrFull: the disk has no room (ENOSPC) or the store is over its limit;
	// nothing partial was kept.
	ErrFull = errors.New("storage: no space left")
	// ErrFormat: the data directory has an unknown or missing format version.
	ErrFormat = errors.New("storage: unknown data directory format")
	// ErrRange: a ranged read that is out of bounds or not on record boundaries.
	ErrRange = errors.New("storage: invalid range")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("storage: store closed")
)

// MaxIDLen bounds a shard id's length.
const MaxIDLen = 200

// DefaultListLimit is the page size List uses when given a limit ≤ 0.
const DefaultListLimit = 1000

// CorruptError reports a shard whose bytes failed verification.
type CorruptError struct {
	ID  string
	Err error // an *erasure.ChecksumError naming the block
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("storage: shard %s corrupt: %v", e.ID, e.Err)
}
func (e *CorruptError) Unwrap() error { return e.Err }

// Info describes one stored shard.
type Info struct {
	ID       string    `json:"id"`
	Size     int64     `json:"size"`     // bytes of the shard stream
	Checksum uint64    `json:"checksum"` // erasure.Verifier.Summary of its records
	Created  time.Time `json:"created"`
}

// Usage is the store's space accounting.
type Usage struct {
	Shards int64 `json:"shards"`
	Used   int64 `json:"used"` // bytes of shard data
	Free   int64 `json:"free"` // bytes free on the device (or under the limit)
	// Capacity is the device's size (or the limit): unlike Used+Free, it
	// does not move as this store or anything else on the device writes,
	// so a node can report it as its placement weight. 0: unknown.
	Capacity int64 `json:"capacity,omitempty"`
	Full     bool  `json:"full"` // free is below the full threshold, or the store is Damaged
	// Damaged: the store's index met corruption in the background (a
	// compaction read a rotten block): it keeps serving what it can, but
	// takes no new shards (Full), and an operator should drain the node.
	Damaged bool `json:"damaged,omitempty"`
}

// Store keeps shard streams (sequences of erasure records) by id.
type Store interface {
	// Put stores the shard stream read from r under id, replacing any shard
	// with that id atomically. The stream is verified record by record; a
	// corrupt stream is refused (*CorruptError) and nothing is kept. Put
	// returns only once the shard is durable (file and directory fsynced,
	// index committed). On any error no partial shard is visible.
	Put(ctx context.Context, id string, r io.Reader) (Info, error)
	// Get streams bytes [off, off+n) of the shard (n < 0: to the end). The
	// range must start and end on record boundaries. Every record is verified
	// as it is read; corruption surfaces from Read as *CorruptError. The caller
	// closes the reader.
	Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error)
	// Stat returns the shard's info, or ErrNotFound.
	Stat(ctx context.Context, id string) (Info, error)
	// Delete removes the shard. Deleting an absent shard is not an error
	// (idempotent).
	Delete(ctx context.Context, id string) error
	// List returns up to limit shards whose id has the prefix and sorts after
	// `after`, in id order; an empty result means the end.
	List(ctx context.Context, prefix, after string, limit int) ([]Info, error)
	// Usage reports the space used and free.
	Usage(ctx context.Context) (Usage, error)
}
