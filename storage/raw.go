package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/shale-store/shale/erasure"
)

// Raw is a range of a shard as it is stored, handed out unverified by
// Disk.GetRaw: for a node to send on to a reader that verifies every record
// itself. Read it through Reader, then Close it.
type Raw struct {
	n int64
	r io.Reader
	c io.Closer // may be nil
}

// Len is the number of bytes in the range: exactly what Reader yields when
// nothing fails.
func (r *Raw) Len() int64 { return r.n }

// Reader returns the range's bytes. For a file shard of a Disk on the
// operating system's file system it is an *io.LimitedReader over the
// shard's *os.File, positioned at the range's start, which net/http (and
// net.TCPConn.ReadFrom) hands to sendfile(2); otherwise another reader. It
// does not watch a context: the copy it feeds stops when its destination
// fails. A reader that ends before Len bytes (the file was cut short after
// GetRaw looked at it) or fails part-way must not be taken for the whole
// range.
func (r *Raw) Reader() io.Reader { return r.r }

// Close releases the file, if any. Idempotent.
func (r *Raw) Close() error {
	c := r.c
	r.c = nil
	if c == nil {
		return nil
	}
	return c.Close()
}

// GetRaw returns bytes [off, off+n) of shard id (n < 0: to the end) as
// they are stored, without verifying them — the node's fast read path: the
// reader at the other end checks every record (package remote's contract),
// and the scrubber finds rot nobody reads. The range is checked against the
// index layout exactly as Get checks it (record boundaries, else ErrRange);
// a shard file whose size differs from the index's is reported as
// *CorruptError before any byte is handed out. An inline shard's bytes come
// from the index, whose blocks pebble checks on every read from disk.
//
// With the default DiskConfig.FS the shard file is opened with os.Open,
// bypassing the vfs (whose Open probes the file system on every open) so
// that Raw.Reader is a plain *os.File the kernel can send; with any other
// FS (tests wrap it with errorfs) the file is opened and read through that
// FS, so faults injected there reach raw reads too. Get, the Store method,
// keeps verifying every record.
func (d *Disk) GetRaw(ctx context.Context, id string, off, n int64) (*Raw, error) {
	if err := ValidateID(id); err != nil {
		return nil, fmt.Errorf("get raw shard: %w", err)
	}
	r, err := d.getRaw(ctx, id, off, n)
	if err != nil {
		return nil, fmt.Errorf("get raw shard %s: %w", id, err)
	}
	return r, nil
}

// rawFile is what getRaw opened: an *os.File, or a file of the FS.
type rawFile interface {
	io.ReaderAt
	io.Closer
	Stat() (os.FileInfo, error)
}

func (d *Disk) getRaw(ctx context.Context, id string, off, n int64) (*Raw, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, data, f, err := d.locate(id, d.openRaw)
	if err != nil {
		return nil, err
	}
	_, _, length, err := e.lay.span(off, n)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, err
	}
	if e.inline {
		return &Raw{n: length, r: bytes.NewReader(data[off : off+length])}, nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.Size() != e.lay.size {
		f.Close()
		var stripe int64
		if e.lay.recLen > 0 {
			stripe = min(fi.Size(), e.lay.size) / e.lay.recLen
		}
		return nil, &CorruptError{ID: id, Err: &erasure.ChecksumError{Shard: -1, Stripe: stripe,
			Err: fmt.Errorf("%w: shard file is %d bytes, the index says %d", erasure.ErrCorruptRecord, fi.Size(), e.lay.size)}}
	}
	if of, ok := f.(*os.File); ok {
		if _, err := of.Seek(off, io.SeekStart); err != nil {
			of.Close()
			return nil, err
		}
		return &Raw{n: length, r: &io.LimitedReader{R: of, N: length}, c: of}, nil
	}
	return &Raw{n: length, r: io.NewSectionReader(f, off, length), c: f}, nil
}

// openRaw opens a shard file for GetRaw: with os.Open on the operating
// system's file system (the default FS), else through the FS.
func (d *Disk) openRaw(path string) (rawFile, error) {
	if d.osFiles {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return d.fs.Open(path)
}
