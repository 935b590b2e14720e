package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shale-store/shale/erasure"
)

// layout is where a shard stream's records start. The erasure format makes
// every record as long as the first except the last, which may be shorter, so
// three numbers locate every record boundary.
type layout struct {
	size    int64 // bytes of the stream
	recLen  int64 // bytes of every record but the last (header + block); 0 when records == 0
	records int64
}

// valid reports whether the three numbers describe a possible stream.
func (l layout) valid() bool {
	if l.records == 0 {
		return l.size == 0 && l.recLen == 0
	}
	if l.recLen <= erasure.RecordHeaderSize || l.records < 0 {
		return false
	}
	last := l.size - (l.records-1)*l.recLen
	return last > erasure.RecordHeaderSize && last <= l.recLen
}

// boundary returns the index of the record starting at off (records when off
// is the end of the stream), or false when off is not a record boundary.
func (l layout) boundary(off int64) (int64, bool) {
	switch {
	case off == l.size:
		return l.records, true
	case off < 0 || off > l.size || l.recLen == 0 || off%l.recLen != 0:
		return 0, false
	}
	return off / l.recLen, true
}

// recordLen is the length of record i.
func (l layout) recordLen(i int64) int64 {
	if i == l.records-1 {
		return l.size - i*l.recLen
	}
	return l.recLen
}

// span checks that [off, off+n) (n < 0: to the end) lies on record
// boundaries and returns the first record's index, the index past the last
// and the byte length.
func (l layout) span(off, n int64) (first, end, length int64, err error) {
	first, ok := l.boundary(off)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: offset %d is not a record boundary of a %d-byte shard", ErrRange, off, l.size)
	}
	if n < 0 {
		n = l.size - off
	}
	end, ok = l.boundary(off + n)
	if !ok || off+n < off {
		return 0, 0, 0, fmt.Errorf("%w: end %d is not a record boundary of a %d-byte shard", ErrRange, off+n, l.size)
	}
	return first, end, n, nil
}

// errOverLimit is returned by ingest when the stream outgrows its budget;
// callers wrap it as ErrFull.
var errOverLimit = errors.New("over the store's limit")

// ingested describes a verified stream.
type ingested struct {
	lay layout
	sum uint64 // erasure.Verifier.Summary
}

// ingest copies r to w through an erasure.Verifier, checking ctx between
// reads. It fails with *CorruptError (for id) when the stream is not a
// well-formed shard stream, with errOverLimit when more than budget bytes
// arrive (budget < 0: no limit), and with w's or r's error as is. buf is the
// copy buffer. On error w holds a partial stream the caller must discard.
func ingest(ctx context.Context, id string, r io.Reader, w io.Writer, buf []byte, budget int64) (ingested, error) {
	v := erasure.NewVerifier(-1)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return ingested{}, err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			p := buf[:n]
			if budget >= 0 && total+int64(n) > budget {
				return ingested{}, errOverLimit
			}
			if _, err := v.Write(p); err != nil {
				return ingested{}, &CorruptError{ID: id, Err: err}
			}
			if _, err := w.Write(p); err != nil {
				return ingested{}, err
			}
			total += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return ingested{}, rerr
		}
	}
	if err := v.Close(); err != nil {
		return ingested{}, &CorruptError{ID: id, Err: err}
	}
	lay := layout{size: total, recLen: v.RecordLen(), records: v.Records()}
	if !lay.valid() {
		// The verifier accepted what the layout rules out: the two disagree on
		// the format, which is a bug, not corruption.
		return ingested{}, fmt.Errorf("storage: shard %s: verified stream has impossible layout %+v", id, lay)
	}
	return ingested{lay: lay, sum: v.Summary()}, nil
}

// recordStream serves records [next, end) of a shard as raw stream bytes,
// verifying each record before any of its bytes are handed out: a reader
// never sees a byte of a record that fails its checksum.
//
// A read from the start of the shard verifies with an erasure.Verifier over
// a pooled record buffer (no copy besides the caller's); a ranged read needs
// the first stripe number, so it uses an erasure.RecordReader and taps the
// bytes it pulls.
type recordStream struct {
	ctx    context.Context
	id     string
	closer io.Closer // closed by Close; may be nil
	lay    layout
	next   int64
	end    int64
	src    io.Reader
	wait   func(ctx context.Context, n int64) error // paces reads (scrubber); may be nil
	pool   *bufPool

	v   *erasure.Verifier     // whole-stream mode
	buf *[]byte               // whole-stream mode: the current record
	rr  *erasure.RecordReader // ranged mode
	tap tap                   // ranged mode

	out []byte // verified bytes not yet returned
	err error  // sticky
}

// bufPool recycles record buffers between reads.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) get(n int64) *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		return b
	}
	b := make([]byte, n)
	return &b
}

func (bp *bufPool) put(b *[]byte) { bp.p.Put(b) }

// tap remembers the bytes the RecordReader pulls from the shard, so that the
// verified record can be returned as it is stored, header included.
type tap struct {
	s   *recordStream
	buf []byte
}

func (t *tap) Read(p []byte) (int, error) {
	if err := t.s.pace(len(p)); err != nil {
		return 0, err
	}
	n, err := t.s.src.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

func (s *recordStream) pace(n int) error {
	if s.wait == nil {
		return nil
	}
	return s.wait(s.ctx, int64(n))
}

// newRecordStream returns a verified reader of records [first, end) of a
// shard laid out as lay; src must be positioned at record first's offset.
// pool may be nil.
func newRecordStream(ctx context.Context, id string, src io.Reader, closer io.Closer, lay layout, first, end, length int64, pool *bufPool) *recordStream {
	if pool == nil {
		pool = &bufPool{}
	}
	s := &recordStream{ctx: ctx, id: id, closer: closer, lay: lay, next: first, end: end,
		src: io.LimitReader(src, length), pool: pool}
	if first == 0 {
		s.v = erasure.NewVerifier(-1)
	} else {
		s.tap.s = s
		s.rr = erasure.NewRecordReader(&s.tap, -1, first)
	}
	return s
}

func (s *recordStream) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		s.fill()
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// WriteTo writes the remaining records to w, one verified record per Write.
func (s *recordStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(s.out) == 0 {
			if s.err == io.EOF {
				return total, nil
			}
			if s.err != nil {
				return total, s.err
			}
			s.fill()
		}
		n, err := w.Write(s.out)
		total += int64(n)
		s.out = s.out[n:]
		if err != nil {
			return total, err
		}
	}
}

// fill verifies the next record into s.out or sets s.err.
func (s *recordStream) fill() {
	if s.next >= s.end {
		s.err = io.EOF
		return
	}
	if err := s.ctx.Err(); err != nil {
		s.err = err
		return
	}
	if s.v != nil {
		s.fillVerifier()
	} else {
		s.fillRanged()
	}
	if s.err == nil {
		s.next++
	}
}

func (s *recordStream) fillVerifier() {
	want := s.lay.recordLen(s.next)
	if s.buf == nil {
		s.buf = s.pool.get(s.lay.recLen)
	}
	rec := (*s.buf)[:want]
	if err := s.pace(len(rec)); err != nil {
		s.err = err
		return
	}
	n, err := io.ReadFull(s.src, rec)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// Verify what there is, so a bad checksum is reported as such; a
		// short but intact prefix is a truncation.
		if _, verr := s.v.Write(rec[:n]); verr != nil {
			s.err = &CorruptError{ID: s.id, Err: verr}
			return
		}
		s.err = s.corrupt(fmt.Errorf("%w: shard ends inside record %d (%d of %d bytes)", erasure.ErrCorruptRecord, s.next, n, want))
		return
	case err != nil:
		s.err = fmt.Errorf("read shard %s record %d: %w", s.id, s.next, err)
		return
	}
	if _, err := s.v.Write(rec); err != nil {
		s.err = &CorruptError{ID: s.id, Err: err}
		return
	}
	if s.v.Records() != s.next+1 {
		s.err = s.corrupt(fmt.Errorf("%w: record %d is not %d bytes long as the index says", erasure.ErrCorruptRecord, s.next, want))
		return
	}
	s.out = rec
}

func (s *recordStream) fillRanged() {
	if s.tap.buf == nil {
		s.buf = s.pool.get(s.lay.recLen)
		s.tap.buf = (*s.buf)[:0]
	}
	s.tap.buf = s.tap.buf[:0]
	block, err := s.rr.Next()
	var ce *erasure.ChecksumError
	switch {
	case errors.As(err, &ce):
		s.err = &CorruptError{ID: s.id, Err: ce}
		return
	case err == io.EOF:
		s.err = s.corrupt(fmt.Errorf("%w: shard ends before record %d of %d", erasure.ErrCorruptRecord, s.next, s.lay.records))
		return
	case err != nil:
		s.err = fmt.Errorf("read shard %s record %d: %w", s.id, s.next, err)
		return
	}
	want := s.lay.recordLen(s.next)
	if got := int64(erasure.RecordHeaderSize + len(block)); got != want || int64(len(s.tap.buf)) != want {
		s.err = s.corrupt(fmt.Errorf("%w: record %d is %d bytes, the index says %d", erasure.ErrCorruptRecord, s.next, got, want))
		return
	}
	s.out = s.tap.buf
}

func (s *recordStream) corrupt(err error) error {
	return &CorruptError{ID: s.id, Err: &erasure.ChecksumError{Shard: -1, Stripe: s.next, Err: err}}
}

// Close releases the underlying file, if any, and the record buffer. It is
// safe to call twice; reads after Close fail.
func (s *recordStream) Close() error {
	if s.err == nil || s.err == io.EOF {
		s.err = ErrClosed
	}
	s.out = nil
	if s.buf != nil {
		s.pool.put(s.buf)
	}
	s.buf = nil
	if c := s.closer; c != nil {
		s.closer = nil
		return c.Close()
	}
	return nil
}
