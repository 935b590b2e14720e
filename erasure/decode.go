package erasure

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// fetched is one record read ahead from a shard stream: a verified block in a
// pooled record buffer, or the error that ended the stream.
type fetched struct {
	buf   *[]byte
	block []byte
	err   error
}

// stream is one open shard stream with its read-ahead goroutine.
type stream struct {
	next   int64 // stripe of the next record to receive from ch
	end    int64 // last stripe the stream covers
	ch     chan fetched
	cancel context.CancelFunc
	done   chan struct{} // closed when the read-ahead goroutine has exited
	rc     io.ReadCloser
}

// fetcher hands out verified blocks of shard streams stripe by stripe for one
// Decode or Rebuild call. It opens a stream lazily at the first stripe asked
// for, reads ahead ReadAhead records on its own goroutine, reopens when asked
// for a stripe the stream does not deliver next, and marks a shard failed for
// the rest of the call at its first open, read or verification error. It is
// used from one goroutine; close stops every read-ahead goroutine.
type fetcher struct {
	c       *Codec
	ctx     context.Context
	open    ShardOpener
	size    int64
	recs    *recordSet
	streams []*stream
	failed  []bool
	report  DecodeReport
}

func (c *Codec) newFetcher(ctx context.Context, open ShardOpener, size int64, recs *recordSet) *fetcher {
	n := c.k + c.m
	return &fetcher{c: c, ctx: ctx, open: open, size: size, recs: recs, streams: make([]*stream, n), failed: make([]bool, n)}
}

// recordSet holds the record buffers of one Decode or Rebuild call: as
// many as the call can hold at once (DecodeMemory), carved from whole
// stripe buffers taken from the codec's pool — the pool Encode uses, so a
// gateway alternating PUTs and GETs keeps one set of buffers, not two — or,
// for a small object, from one buffer sized to it. get and put are safe
// for concurrent use.
type recordSet struct {
	c       *Codec
	slot    int
	stripes []*stripe // taken from the pool; returned by close
	free    chan *[]byte
}

// newRecordSet makes the record buffers for a call that decodes [off,
// off+length) of an object of size bytes.
func (c *Codec) newRecordSet(size, off, length int64) *recordSet {
	slot := c.recordSlot(size)
	n := c.k + c.m
	per := int(c.decodeMemory(size, off, length) / int64(n*slot))
	rs := &recordSet{c: c, slot: slot, free: make(chan *[]byte, n*per)}
	carve := func(buf []byte) {
		for j := 0; j < n; j++ {
			b := buf[j*slot : (j+1)*slot : (j+1)*slot]
			rs.free <- &b
		}
	}
	for range per {
		if slot < RecordHeaderSize+c.blockSize {
			carve(make([]byte, n*slot))
			continue
		}
		st, _ := c.stripes.Get().(*stripe)
		if st == nil {
			st = c.newStripe(c.blockSize)
		}
		rs.stripes = append(rs.stripes, st)
		carve(st.buf)
	}
	return rs
}

// get returns a free record buffer. The set holds as many as a call can
// use at once; should that ever be wrong, it allocates rather than block.
func (rs *recordSet) get() *[]byte {
	select {
	case b := <-rs.free:
		return b
	default:
		b := make([]byte, rs.slot)
		return &b
	}
}

// put returns a record buffer to the set.
func (rs *recordSet) put(b *[]byte) {
	select {
	case rs.free <- b:
	default:
	}
}

// close returns the stripe buffers to the codec's pool. No buffer of the
// set may be used after it.
func (rs *recordSet) close() {
	for _, st := range rs.stripes {
		rs.c.stripes.Put(st)
	}
	rs.stripes = nil
}

// start opens shard i for stripes [from, through] and starts its read-ahead.
func (f *fetcher) start(i int, from, through int64) error {
	ctx, cancel := context.WithCancel(f.ctx)
	rc, err := f.open(ctx, i, from*f.c.recordSize(), f.c.streamLen(from, through, f.size))
	if err != nil {
		cancel()
		return &ShardError{Shard: i, Op: "open", Err: err}
	}
	s := &stream{next: from, end: through, ch: make(chan fetched, f.c.cfg.ReadAhead),
		cancel: cancel, done: make(chan struct{}), rc: rc}
	f.streams[i] = s
	go f.c.readAhead(ctx, s, i, from, through, f.size, f.recs)
	return nil
}

// readAhead reads and verifies records [from, through] of shard into pooled
// buffers and queues them on s.ch; it stops after the first error, at the
// end, or when ctx is done, and closes s.ch and s.done on exit.
func (c *Codec) readAhead(ctx context.Context, s *stream, shard int, from, through, size int64, recs *recordSet) {
	defer close(s.done)
	defer close(s.ch)
	rr := NewRecordReader(s.rc, shard, from)
	for st := from; st <= through; st++ {
		buf := recs.get()
		block, err := rr.readInto(*buf, c.blockLen(st, size))
		var ce *ChecksumError
		switch {
		case err == nil:
		case err == io.EOF:
			err = &ChecksumError{Shard: shard, Stripe: st, Err: fmt.Errorf("%w: stream ends before stripe %d", ErrCorruptRecord, st)}
		case !errors.As(err, &ce):
			err = &ShardError{Shard: shard, Op: "read", Err: fmt.Errorf("stripe %d: %w", st, err)}
		}
		if err != nil {
			recs.put(buf)
			buf, block = nil, nil
		}
		select {
		case s.ch <- fetched{buf: buf, block: block, err: err}:
		case <-ctx.Done():
			if buf != nil {
				recs.put(buf)
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// stop ends shard i's stream: cancels it, closes the reader (which may abort
// a Read in progress), returns queued buffers and waits for the goroutine.
func (f *fetcher) stop(i int) {
	s := f.streams[i]
	if s == nil {
		return
	}
	f.streams[i] = nil
	s.cancel()
	_ = s.rc.Close()
	for r := range s.ch {
		if r.buf != nil {
			f.recs.put(r.buf)
		}
	}
	<-s.done
}

func (f *fetcher) close() {
	for i := range f.streams {
		f.stop(i)
	}
}

func (f *fetcher) fail(i int, stripe int64, err error) {
	f.failed[i] = true
	f.report.Failures = append(f.report.Failures, ShardFailure{Shard: i, Stripe: stripe, Err: err})
	f.stop(i)
}

// get returns shard i's verified record for stripe s, opening the stream
// (through stripe `through`) if needed. ok is false when the shard has failed;
// err is non-nil only when ctx is done.
func (f *fetcher) get(i int, s, through int64) (r fetched, ok bool, err error) {
	if f.failed[i] {
		return fetched{}, false, nil
	}
	st := f.streams[i]
	if st != nil && (st.next != s || s > st.end) {
		f.stop(i)
		st = nil
	}
	if st == nil {
		if err := f.start(i, s, through); err != nil {
			if ctxErr := f.ctx.Err(); ctxErr != nil {
				return fetched{}, false, ctxErr
			}
			f.fail(i, s, err)
			return fetched{}, false, nil
		}
		st = f.streams[i]
	}
	select {
	case r, open := <-st.ch:
		st.next++
		if !open {
			r.err = &ShardError{Shard: i, Op: "read", Err: fmt.Errorf("stripe %d: stream stopped", s)}
		}
		if r.err != nil {
			if ctxErr := f.ctx.Err(); ctxErr != nil {
				return fetched{}, false, ctxErr
			}
			f.fail(i, s, r.err)
			return fetched{}, false, nil
		}
		return r, true, nil
	case <-f.ctx.Done():
		return fetched{}, false, f.ctx.Err()
	}
}

// stripeSet is the per-stripe working set of Decode and Rebuild.
type stripeSet struct {
	blocks   [][]byte
	bufs     []*[]byte
	required []bool
}

func newStripeSet(n int) *stripeSet {
	return &stripeSet{blocks: make([][]byte, n), bufs: make([]*[]byte, n), required: make([]bool, n)}
}

func (ss *stripeSet) take(i int, r fetched) {
	ss.blocks[i], ss.bufs[i] = r.block, r.buf
}

// want marks shard i for reconstruction into a pooled record buffer, block
// at offset RecordHeaderSize so a record header can be put in front of it.
func (ss *stripeSet) want(recs *recordSet, i int) {
	buf := recs.get()
	ss.bufs[i] = buf
	ss.blocks[i] = (*buf)[RecordHeaderSize:RecordHeaderSize]
	ss.required[i] = true
}

func (ss *stripeSet) release(recs *recordSet) {
	for i, b := range ss.bufs {
		if b != nil {
			recs.put(b)
		}
		ss.bufs[i], ss.blocks[i], ss.required[i] = nil, nil, false
	}
}

// decode implements Decode.
func (c *Codec) decode(ctx context.Context, w io.Writer, size, off, length int64, open ShardOpener) (DecodeReport, error) {
	if size < 0 || off < 0 || length < 0 || off > size-length {
		return DecodeReport{}, fmt.Errorf("decode [%d, +%d) of %d bytes: %w", off, length, size, ErrInvalidRange)
	}
	if length == 0 {
		return DecodeReport{}, nil
	}
	recs := c.newRecordSet(size, off, length)
	defer recs.close() // deferred first: runs after every reader has stopped
	f := c.newFetcher(ctx, open, size, recs)
	defer f.close()
	n := c.k + c.m
	sd := c.stripeData()
	end := off + length
	s0, s1 := off/sd, (end-1)/sd
	// Data shards after lastIdx1 are not needed in the final stripe, so
	// their streams stop one stripe earlier.
	lastIdx1 := int((end - 1 - s1*sd) / int64(c.blockLen(s1, size)))
	ss := newStripeSet(n)
	defer ss.release(recs)

	for s := s0; s <= s1; s++ {
		if err := ctx.Err(); err != nil {
			return f.report, fmt.Errorf("decode stripe %d: %w", s, err)
		}
		bl := int64(c.blockLen(s, size))
		a := max(off, s*sd) - s*sd
		b := min(end, (s+1)*sd) - s*sd
		first, last := int(a/bl), int((b-1)/bl)
		intact, short := 0, false
		for i := first; i <= last; i++ {
			through := s1
			if s < s1 && i > lastIdx1 {
				through = s1 - 1
			}
			r, ok, err := f.get(i, s, through)
			if err != nil {
				return f.report, fmt.Errorf("decode stripe %d: %w", s, err)
			}
			if ok {
				ss.take(i, r)
				intact++
			} else {
				short = true
			}
		}
		if short {
			// Degraded: gather k intact shards (the other data shards
			// first, then parity) and reconstruct the missing needed ones.
			for i := 0; i < n && intact < c.k; i++ {
				if i >= first && i <= last {
					continue
				}
				r, ok, err := f.get(i, s, s1)
				if err != nil {
					return f.report, fmt.Errorf("decode stripe %d: %w", s, err)
				}
				if ok {
					ss.take(i, r)
					intact++
				}
			}
			if intact < c.k {
				return f.report, fmt.Errorf("decode stripe %d: %d intact shards, need %d: %w", s, intact, c.k, ErrTooFewShards)
			}
			for i := first; i <= last; i++ {
				if ss.blocks[i] == nil {
					ss.want(recs, i)
				}
			}
			if err := c.enc.ReconstructSome(ss.blocks, ss.required); err != nil {
				return f.report, fmt.Errorf("decode stripe %d: reconstruct: %w", s, err)
			}
		}
		for i := first; i <= last; i++ {
			lo := max(a-int64(i)*bl, 0)
			hi := min(b-int64(i)*bl, bl)
			if _, err := w.Write(ss.blocks[i][lo:hi]); err != nil {
				return f.report, fmt.Errorf("decode stripe %d: write output: %w", s, err)
			}
		}
		ss.release(recs)
	}
	return f.report, nil
}

// rebuild implements Rebuild. Outputs are written in order, one record of
// each per stripe, from the calling goroutine; the first write error ends the
// rebuild (the caller retries elsewhere).
func (c *Codec) rebuild(ctx context.Context, size int64, open ShardOpener, missing []int, out []io.Writer) (DecodeReport, error) {
	n := c.k + c.m
	if len(out) != len(missing) {
		return DecodeReport{}, fmt.Errorf("rebuild: %d outputs for %d missing shards: %w", len(out), len(missing), ErrInvalidArgument)
	}
	if size < 0 {
		return DecodeReport{}, fmt.Errorf("rebuild: size %d: %w", size, ErrInvalidArgument)
	}
	isMissing := make([]bool, n)
	for idx, j := range missing {
		if j < 0 || j >= n || isMissing[j] || out[idx] == nil {
			return DecodeReport{}, fmt.Errorf("rebuild: missing shard %d (of %d) duplicated, out of range or without output: %w", j, n, ErrInvalidArgument)
		}
		isMissing[j] = true
	}
	stripes := c.Stripes(size)
	if len(missing) == 0 || stripes == 0 {
		return DecodeReport{}, nil
	}
	if n-len(missing) < c.k {
		return DecodeReport{}, fmt.Errorf("rebuild: %d of %d shards missing, m=%d: %w", len(missing), n, c.m, ErrTooFewShards)
	}
	recs := c.newRecordSet(size, 0, size)
	defer recs.close() // deferred first: runs after every reader has stopped
	f := c.newFetcher(ctx, open, size, recs)
	defer f.close()
	ss := newStripeSet(n)
	defer ss.release(recs)
	for s := int64(0); s < stripes; s++ {
		if err := ctx.Err(); err != nil {
			return f.report, fmt.Errorf("rebuild stripe %d: %w", s, err)
		}
		intact := 0
		for i := 0; i < n && intact < c.k; i++ {
			if isMissing[i] {
				continue
			}
			r, ok, err := f.get(i, s, stripes-1)
			if err != nil {
				return f.report, fmt.Errorf("rebuild stripe %d: %w", s, err)
			}
			if ok {
				ss.take(i, r)
				intact++
			}
		}
		if intact < c.k {
			return f.report, fmt.Errorf("rebuild stripe %d: %d intact shards, need %d: %w", s, intact, c.k, ErrTooFewShards)
		}
		for _, j := range missing {
			ss.want(recs, j)
		}
		if err := c.enc.ReconstructSome(ss.blocks, ss.required); err != nil {
			return f.report, fmt.Errorf("rebuild stripe %d: reconstruct: %w", s, err)
		}
		bl := c.blockLen(s, size)
		for idx, j := range missing {
			rec := (*ss.bufs[j])[:RecordHeaderSize+bl]
			putHeader(rec, j, s)
			if _, err := out[idx].Write(rec); err != nil {
				return f.report, fmt.Errorf("rebuild stripe %d: %w", s, &ShardError{Shard: j, Op: "write", Err: err})
			}
		}
		ss.release(recs)
	}
	return f.report, nil
}
