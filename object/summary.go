package object

import (
	"errors"
	"fmt"
	"io"

	"github.com/shale-store/shale/erasure"
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
// suspect); when false (a one-stripe shard), the shard failed before any of
// its records were used and reading around it with parity is enough.
type summaryError struct {
	want, got uint64
	delivered bool
}

func (e *summaryError) Error() string {
	return fmt.Sprintf("%v: manifest %016x, records %016x", errSummaryMismatch, e.want, e.got)
}

func (e *summaryError) Unwrap() error { return errSummaryMismatch }

// summaryReader checks a whole shard stream against its expected summary.
// It passes reads through while feeding an erasure.Verifier, and holds back
// the read that brings the stream to its full size until the summary is
// known: on a mismatch that read fails (with a *storage.CorruptError around
// a *summaryError) instead of delivering the last bytes, so the decoder
// reads the final stripe around the shard with parity and reports it
// corrupt. Records that fail their own check are left to the decoder's
// record reader, which sees the same bytes.
type summaryReader struct {
	rc    io.ReadCloser
	id    string
	want  uint64
	size  int64 // bytes of the whole shard stream
	read  int64
	v     *erasure.Verifier // nil once a record failed: the decoder reports that
	final error             // sticky: the mismatch
}

func newSummaryReader(rc io.ReadCloser, id string, size int64, want uint64) *summaryReader {
	return &summaryReader{rc: rc, id: id, want: want, size: size, v: erasure.NewVerifier(-1)}
}

func (s *summaryReader) Read(p []byte) (int, error) {
	if s.final != nil {
		return 0, s.final
	}
	n, err := s.rc.Read(p)
	// Whole records handed out before this read may have been used.
	var delivered bool
	if n > 0 && s.v != nil {
		delivered = s.v.Records() > 0
		if _, verr := s.v.Write(p[:n]); verr != nil {
			s.v = nil
		}
	}
	s.read += int64(n)
	if s.v != nil && n > 0 && s.read >= s.size {
		if s.v.Close() == nil && s.v.Summary() != s.want {
			s.final = &storage.CorruptError{ID: s.id, Err: &summaryError{want: s.want, got: s.v.Summary(), delivered: delivered}}
			return 0, s.final
		}
		s.v = nil // checked
	}
	return n, err
}

func (s *summaryReader) Close() error { return s.rc.Close() }

// lateSummaryMismatch reports whether a decode found a summary mismatch on
// a shard after some of its bytes had been used: its output (the bytes
// written to the client, or rebuilt shards) may hold substituted data.
func lateSummaryMismatch(rep erasure.DecodeReport) error {
	for _, f := range rep.Failures {
		var se *summaryError
		if errors.As(f.Err, &se) && se.delivered {
			return fmt.Errorf("shard %d: %w", f.Shard, f.Err)
		}
	}
	return nil
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
