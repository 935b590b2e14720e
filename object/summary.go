package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// errSummaryMismatch: a shard's summary checksum (erasure.Verifier.Summary
// of its records) differs from the one expected — on a PUT, the summary of
// the records the gateway sent; on a read, the manifest's ShardRef.Checksum.
// Each record carries only an unkeyed XXH3, so a node (or anything between
// it and the gateway) could substitute records that pass their own check;
// the summary, which the gateway computed and meta keeps, catches that.
var errSummaryMismatch = errors.New("shard summary checksum mismatch")

// summaryError is a read's summary mismatch. delivered says whether whole
// records of the shard had already been handed to the decoder before the
// mismatch was known (they may have been used, so the decode's output is
// suspect); when false (say, a one-stripe shard), the shard failed before any of
// its records were used and reading around it with parity is enough.
type summaryError struct {
	want, got uint64
	delivered bool
	// record is -1 for the shard's summary (want: the manifest's), else
	// the index of a record read twice with different checksums (want:
	// the first).
	record int64
}

func (e *summaryError) Error() string {
	if e.record >= 0 {
		return fmt.Sprintf("%v: record %d read again with checksum %016x, was %016x", errSummaryMismatch, e.record, e.got, e.want)
	}
	return fmt.Sprintf("%v: manifest %016x, records %016x", errSummaryMismatch, e.want, e.got)
}

func (e *summaryError) Unwrap() error { return errSummaryMismatch }

// summaryCheck checks the shards of one segment read against their
// summaries (meta.ShardRef.Checksum) across every decode of that read: the
// restarts of a GET that paused for a slow client (readSegment), or one
// Rebuild. Its opener wraps each shard stream in a checkedReader, which
// takes the checksum of each record going by (erasure.RecordChecksum; the
// decoder's RecordReader checks each record's bytes against it) and feeds
// it, by record index, to the shard's erasure.Summer exactly once, in
// stream order:
//
//   - a record read again (a restarted decode reads from where its client
//     stopped, behind what it had read ahead) must carry the checksum it
//     had the first time, else the shard is corrupt: a node could tell a
//     ranged read from a whole one and serve different bytes to each;
//   - in a strict check (a read that began as a whole-segment read), a
//     stream that starts past the records fed so far is opened from the
//     first record not fed, and the records before the requested range are
//     read for their checksums only (a parity shard a degraded read turns
//     to part-way); in a loose one (a ranged read) such a shard is simply
//     not checked, as a ranged read cannot be;
//   - once a shard's last record has been fed, its summary is compared with
//     the manifest's, and on a mismatch the Read that brought that record
//     fails (a *storage.CorruptError around a *summaryError) before the
//     record is complete, so the decoder reads around it with parity.
//
// A shard that handed whole records to the decoder (they may have been
// used) and whose summary then fails makes the read's output suspect:
// late reports it. In a strict check, finish makes sure that every shard
// that handed out records was checked in full, reading the records the
// decodes did not (a shard past the final stripe's data, one that failed
// part-way), and fails closed when it cannot.
//
// Between decodes it holds, per shard, a summer and the checksums of the
// last few records — no record buffer, no stream. Streams of different
// shards are read on different goroutines; mu guards the shard states.
type summaryCheck struct {
	seg     meta.Segment
	strict  bool
	rs      int64 // bytes of a full record
	size    int64 // bytes of a shard stream
	records int64 // records in a shard stream
	window  int64 // records a restarted decode may read again

	mu     sync.Mutex
	shards []*shardSummary // by index; nil until opened
}

// shardSummary is one shard's part of a summaryCheck.
type shardSummary struct {
	id        string
	want      uint64
	sum       erasure.Summer
	next      int64    // records fed: [0, next)
	recent    []uint64 // checksums of records [next-window, next), by index mod window
	delivered bool     // whole records were handed to the decoder
	skipped   bool     // loose check: a stream started past next; not checked
	verified  bool     // every record fed and the summary matches
	bad       error    // sticky: a *storage.CorruptError around a *summaryError
	reported  bool     // bad is in a decode report (so reported to meta)
}

// newSummaryCheck returns the check for one read of segment seg coded by
// cd; strict: the read began as a read of the whole segment.
func newSummaryCheck(seg meta.Segment, cd *erasure.Codec, strict bool) *summaryCheck {
	return &summaryCheck{
		seg: seg, strict: strict,
		rs:      int64(erasure.RecordHeaderSize + cd.BlockSize()),
		size:    cd.ShardSize(seg.Size),
		records: cd.Stripes(seg.Size),
		window:  int64(cd.Config().ReadAhead) + 3,
		shards:  make([]*shardSummary, len(seg.Shards)),
	}
}

// state returns shard i's state, made on first use; mu held.
func (sc *summaryCheck) state(i int) *shardSummary {
	if sc.shards[i] == nil {
		ref := sc.seg.Shards[i]
		sc.shards[i] = &shardSummary{id: ref.ID, want: ref.Checksum, recent: make([]uint64, sc.window)}
	}
	return sc.shards[i]
}

// recordLen is the length of record idx of a shard stream.
func (sc *summaryCheck) recordLen(idx int64) int64 {
	if idx == sc.records-1 {
		return sc.size - idx*sc.rs
	}
	return sc.rs
}

// opener wraps open so every stream it opens is checked (see
// summaryCheck).
func (sc *summaryCheck) opener(open erasure.ShardOpener) erasure.ShardOpener {
	return func(ctx context.Context, shard int, off, n int64) (io.ReadCloser, error) {
		if shard < 0 || shard >= len(sc.shards) || sc.records == 0 || off%sc.rs != 0 {
			return open(ctx, shard, off, n)
		}
		sc.mu.Lock()
		st := sc.state(shard)
		bad, skipped, next := st.bad, st.skipped, st.next
		from := off / sc.rs
		if bad == nil && !skipped && from > next && !sc.strict {
			st.skipped, skipped = true, true
		}
		sc.mu.Unlock()
		switch {
		case bad != nil:
			return nil, bad
		case skipped:
			return open(ctx, shard, off, n)
		case from < next-sc.window:
			// Cannot happen: a restart reads again at most the records its
			// decode had read ahead.
			return nil, fmt.Errorf("shard %d: record %d was checked and can no longer be compared", shard, from)
		}
		start := off
		if from > next {
			start = next * sc.rs // read the records before off for their checksums
		}
		rc, err := open(ctx, shard, start, off+n-start)
		if err != nil {
			return nil, err
		}
		return &checkedReader{rc: rc, sc: sc, shard: shard, pos: start, deliverFrom: off}, nil
	}
}

// checkedReader is one shard stream of a summaryCheck, starting at stream
// byte pos (a record boundary). The bytes before deliverFrom are read for
// their checksums only; Read hands out the rest.
type checkedReader struct {
	rc          io.ReadCloser
	sc          *summaryCheck
	shard       int
	pos         int64 // stream offset of the next byte
	deliverFrom int64
	hdr         [8]byte // the current record's checksum bytes, while incomplete
	err         error   // sticky
}

func (r *checkedReader) Close() error { return r.rc.Close() }

func (r *checkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for r.pos < r.deliverFrom {
		// p is the scratch space: nothing of it is handed out yet.
		n, err := r.rc.Read(p[:min(int64(len(p)), r.deliverFrom-r.pos)])
		if ferr := r.feed(p[:n], false); ferr != nil {
			r.err = ferr
			return 0, ferr
		}
		if err == io.EOF && r.pos < r.deliverFrom {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			r.err = err
			return 0, err
		}
	}
	n, err := r.rc.Read(p)
	if ferr := r.feed(p[:n], true); ferr != nil {
		r.err = ferr
		return 0, ferr
	}
	return n, err
}

// feed walks stream bytes b (from r.pos): each record's checksum goes to
// the shard's state when its 8 bytes are complete; delivered says whether
// records completed here are handed out. An error (the shard is bad) means
// none of b may be handed out.
func (r *checkedReader) feed(b []byte, delivered bool) error {
	sc := r.sc
	sc.mu.Lock()
	defer sc.mu.Unlock()
	st := sc.state(r.shard)
	completed := false
	for len(b) > 0 {
		idx := r.pos / sc.rs
		if idx >= sc.records {
			return &storage.CorruptError{ID: st.id, Err: fmt.Errorf("%w: stream longer than its %d records", erasure.ErrCorruptRecord, sc.records)}
		}
		within := r.pos - idx*sc.rs
		if within < 8 {
			c := copy(r.hdr[within:], b)
			r.pos += int64(c)
			b = b[c:]
			if within+int64(c) == 8 {
				if err := sc.note(st, idx, erasure.RecordChecksum(r.hdr[:])); err != nil {
					return err
				}
			}
			continue
		}
		c := min(int64(len(b)), sc.recordLen(idx)-within)
		r.pos += c
		b = b[c:]
		if within+c == sc.recordLen(idx) {
			completed = true
		}
	}
	if completed && delivered {
		st.delivered = true
	}
	return nil
}

// note takes the checksum of record idx of a shard; mu held.
func (sc *summaryCheck) note(st *shardSummary, idx int64, sum uint64) error {
	switch {
	case st.bad != nil:
		return st.bad
	case idx < st.next:
		if idx < st.next-sc.window {
			return fmt.Errorf("record %d was checked and can no longer be compared", idx)
		}
		if seen := st.recent[idx%sc.window]; seen != sum {
			st.bad = &storage.CorruptError{ID: st.id, Err: &summaryError{want: seen, got: sum, delivered: st.delivered, record: idx}}
			return st.bad
		}
		return nil
	case idx > st.next:
		return fmt.Errorf("record %d of a shard whose records are fed through %d", idx, st.next-1)
	}
	st.sum.Add(sum)
	st.recent[idx%sc.window] = sum
	st.next++
	if st.next == sc.records {
		if got := st.sum.Sum(); got != st.want {
			st.bad = &storage.CorruptError{ID: st.id, Err: &summaryError{want: st.want, got: got, delivered: st.delivered, record: -1}}
			return st.bad
		}
		st.verified = true
	}
	return nil
}

// seen marks the shards whose failures rep holds as reported.
func (sc *summaryCheck) seen(rep erasure.DecodeReport) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, f := range rep.Failures {
		if f.Shard >= 0 && f.Shard < len(sc.shards) && sc.shards[f.Shard] != nil && sc.shards[f.Shard].bad != nil {
			sc.shards[f.Shard].reported = true
		}
	}
}

// unreported returns the shards found bad that no decode report held (a
// stream can find its shard bad in a record read ahead that the decode
// never took), for reportBad, and marks them reported.
func (sc *summaryCheck) unreported() erasure.DecodeReport {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var rep erasure.DecodeReport
	for i, st := range sc.shards {
		if st != nil && st.bad != nil && !st.reported {
			st.reported = true
			rep.Failures = append(rep.Failures, erasure.ShardFailure{Shard: i, Stripe: st.next, Err: st.bad})
		}
	}
	return rep
}

// late returns the failure of a shard whose summary failed (or whose
// records changed between reads) after it had handed out records.
func (sc *summaryCheck) late() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i, st := range sc.shards {
		var se *summaryError
		if st != nil && errors.As(st.bad, &se) && se.delivered {
			return fmt.Errorf("shard %d: %w", i, st.bad)
		}
	}
	return nil
}

// finish ends a strict check after the last decode succeeded: every shard
// that handed out records and is not yet verified has its remaining
// records read through open for their checksums. It returns the shards
// found bad that no decode report held (for reportBad), and an error when
// a shard that handed out records failed its summary (errSummaryMismatch),
// or — with requireAll — could not be checked in full. A loose check only
// reports a late mismatch.
//
// requireAll is the choice between availability and proof. A GET passes
// false: a shard whose node died or stalled after handing out records has
// those records vouched for by their own record checksums only (as on a
// ranged read), so a node failing mid-read does not fail the read that
// parity carried on. Repair passes true: a rebuilt shard becomes part of
// the manifest, so it is made only from sources checked in full, and an
// attempt that cannot check one is dropped and retried around it.
func (sc *summaryCheck) finish(ctx context.Context, open erasure.ShardOpener, requireAll bool) (erasure.DecodeReport, error) {
	var errs []error
	for i := range sc.shards {
		sc.mu.Lock()
		st := sc.shards[i]
		if st == nil || !st.delivered || st.verified || st.bad != nil || !sc.strict {
			sc.mu.Unlock()
			continue
		}
		start := st.next * sc.rs
		sc.mu.Unlock()
		rc, err := open(ctx, i, start, sc.size-start)
		if err == nil {
			cr := &checkedReader{rc: rc, sc: sc, shard: i, pos: start, deliverFrom: sc.size}
			_, err = io.Copy(io.Discard, cr)
			rc.Close()
		}
		sc.mu.Lock()
		switch {
		case st.bad != nil:
		case err != nil:
			errs = append(errs, fmt.Errorf("shard %d: records %d to %d, read to check its summary: %w", i, st.next, sc.records-1, err))
		case !st.verified:
			errs = append(errs, fmt.Errorf("shard %d: stream ended at record %d of %d before its summary could be checked", i, st.next, sc.records))
		}
		sc.mu.Unlock()
	}
	rep := sc.unreported()
	if err := sc.late(); err != nil {
		return rep, err
	}
	if len(errs) > 0 && requireAll {
		return rep, fmt.Errorf("records used without their shard's summary checked: %w", errors.Join(errs...))
	}
	return rep, nil
}

// summingWriter passes a shard stream through to w while computing its
// summary (repair's rebuilt shards, whose summaries the codec does not
// report).
type summingWriter struct {
	w io.Writer
	v *erasure.Verifier
}

func (s *summingWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	_, _ = s.v.Write(p[:n])
	return n, err
}
