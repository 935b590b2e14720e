package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/progress"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// ErrInvalidRange: ReadObject was asked for bytes outside the object.
var ErrInvalidRange = errors.New("object: range outside the object")

var (
	// errShardUnplaced: the manifest records no node for the shard.
	errShardUnplaced = errors.New("shard was never written")
	// errNodeUnavailable: the shard's node is unknown or not readable.
	errNodeUnavailable = errors.New("node not readable")
	// errShardExcluded: the caller does not want the shard read (repair's
	// lost shards).
	errShardExcluded = errors.New("shard excluded")
	// errReadStalled: a shard read made no progress for ReadTimeout.
	errReadStalled = errors.New("shard read stalled")
	// errReaderClosed: Read after Close.
	errReaderClosed = errors.New("shard reader closed")
)

// ReadObject streams bytes [off, off+length) of the version m to w. Each
// segment is decoded from its data shards; a shard whose node is down or
// unknown, that is missing or corrupt, or whose reads make no progress for
// Config.ReadTimeout is read around through parity. Corrupt and missing
// shards are then reported to meta for repair. A segment read in whole is
// also checked against the manifest's summary checksums (ShardRef.Checksum)
// of the shards it uses, however often it pauses for a slow client and
// wherever it opens a shard (see summaryCheck): a mismatch is a corrupt
// shard, read around with parity when found before any of its records were
// used, and otherwise fails the read (ErrUnreadable) after the bytes
// already written; so does a used shard whose summary cannot be checked (its
// node fails part-way and its remaining records cannot be read). A ranged
// read checks a shard's summary only when it reads the shard in whole.
// Fewer than k readable shards
// of a stripe fail the read part-way with ErrUnreadable (some bytes may have
// been written to w). A range outside the object is ErrInvalidRange. Each
// segment's decode memory is reserved from Config.MemoryBudget (ErrBusy
// after Config.BudgetWait); while w is slow to take bytes, the decode
// stops and holds neither (see clientWriter).
func (c *Coordinator) ReadObject(ctx context.Context, w io.Writer, m meta.Manifest, off, length int64) error {
	return c.readObject(ctx, w, m, off, length, ownMemory)
}

func (c *Coordinator) readObject(ctx context.Context, w io.Writer, m meta.Manifest, off, length int64, mem memory) (err error) {
	if off < 0 || length < 0 || off+length > m.Size || off+length < off {
		return fmt.Errorf("read %s/%s [%d,+%d) of %d bytes: %w", m.Bucket, m.Key, off, length, m.Size, ErrInvalidRange)
	}
	if length == 0 {
		return nil
	}
	mp, err := c.clusterMap(ctx)
	if err != nil {
		return fmt.Errorf("read %s/%s: %w", m.Bucket, m.Key, err)
	}
	if c.yields(mem) {
		cw := newClientWriter(w, c.cfg.ClientYield, &c.bufs)
		defer func() {
			if cerr := cw.close(); err == nil && cerr != nil {
				err = fmt.Errorf("read %s/%s: write output: %w", m.Bucket, m.Key, cerr)
			}
		}()
		w = cw
	}
	end := off + length
	var segStart int64
	for si, seg := range m.Segments {
		segEnd := segStart + seg.Size
		lo, hi := max(off, segStart), min(end, segEnd)
		if lo < hi {
			if err := c.readSegment(ctx, w, mp, m, si, lo-segStart, hi-lo, mem); err != nil {
				return err
			}
		}
		segStart = segEnd
		if segStart >= end {
			break
		}
	}
	if segStart < end {
		return fmt.Errorf("read %s/%s: manifest segments hold %d bytes, size is %d: %w", m.Bucket, m.Key, segStart, m.Size, ErrUnreadable)
	}
	return nil
}

func (c *Coordinator) readSegment(ctx context.Context, w io.Writer, mp *cluster.Map, m meta.Manifest, si int, off, n int64, mem memory) error {
	seg := m.Segments[si]
	cd, err := c.codec(seg.K, seg.M, seg.BlockSize)
	if err != nil {
		return fmt.Errorf("read %s/%s segment %d: %w: %w", m.Bucket, m.Key, si, ErrUnreadable, err)
	}
	cw, _ := w.(*clientWriter)
	// The summary check outlives the decodes: one that paused for a slow
	// client restarts with ranged shard reads, and the read must still be
	// checked as the whole-segment read it began as.
	open := c.opener(mp, seg, nil)
	sc := newSummaryCheck(seg, cd, off == 0 && n == seg.Size)
	// A shard a stream found bad in a record read ahead that no decode
	// took is in no decode report.
	defer func() { c.reportBad(ctx, m, si, sc.unreported()) }()
	for n > 0 {
		l, err := c.lease(ctx, cd.DecodeMemory(seg.Size, off, n), mem)
		if err != nil {
			return fmt.Errorf("read %s/%s segment %d: %w", m.Bucket, m.Key, si, err)
		}
		var before int64
		if cw != nil {
			before = cw.accepted
		}
		rep, err := cd.Decode(ctx, w, seg.Size, off, n, sc.opener(open))
		l.end()
		c.reportBad(ctx, m, si, rep)
		sc.seen(rep)
		if err == nil || errors.Is(err, errYield) {
			// Records of a shard whose summary failed were already written:
			// the client must not take this read for a good one, whether
			// the decode ended or only paused for a slow client.
			if lerr := sc.late(); lerr != nil {
				err = fmt.Errorf("%w: %w", ErrUnreadable, lerr)
			}
		}
		if cw != nil && errors.Is(err, errYield) {
			// The client is slow: wait for it holding no buffers, no
			// shard streams and no reservation, then decode on.
			moved := cw.accepted - before
			off, n = off+moved, n-moved
			if err := cw.wait(); err != nil {
				return fmt.Errorf("read %s/%s segment %d: write output: %w", m.Bucket, m.Key, si, err)
			}
			continue
		}
		if err != nil {
			if errors.Is(err, erasure.ErrTooFewShards) {
				return fmt.Errorf("read %s/%s segment %d: %w: %w", m.Bucket, m.Key, si, ErrUnreadable, err)
			}
			return fmt.Errorf("read %s/%s segment %d: %w", m.Bucket, m.Key, si, err)
		}
		break
	}
	// Every shard whose records were used is checked in full, unless its
	// node failed part-way (see summaryCheck.finish).
	rep, err := sc.finish(ctx, open, false)
	c.reportBad(ctx, m, si, rep)
	if err != nil {
		return fmt.Errorf("read %s/%s segment %d: %w: %w", m.Bucket, m.Key, si, ErrUnreadable, err)
	}
	return nil
}

// errYield stops a decode whose client is slow to take its bytes (see
// clientWriter).
var errYield = errors.New("client slow to read: decode yields")

// clientWriter is a GET's client as its decodes see it. Each Write copies
// the bytes into the writer's one buffer and hands them to a goroutine that
// writes them to the client, then waits for that write for at most
// Config.ClientYield. When the client takes longer, Write fails with
// errYield while the bytes are still on their way: the decode stops and
// gives back its record buffers, its shard streams and its memory
// reservation, and readSegment waits for the client (wait) without them
// before it decodes on from the next byte with a fresh reservation. A GET
// blocked on its client thus holds one block of object data (the buffer,
// outside the budget) and nothing else; how long it may stay blocked is
// httpapi's business (the response write deadline). The price is a decode
// restarted — shard streams reopened, one stripe decoded again — each time
// a client falls behind by more than ClientYield.
type clientWriter struct {
	w     io.Writer
	bufs  *sizedBufs // where buf comes from and goes back to
	yield *time.Timer
	limit time.Duration
	buf   []byte
	work  chan []byte
	done  chan error
	exit  chan struct{} // closed when the goroutine has returned

	// Used by the decoding goroutine only.
	busy     bool  // a write is on its way to the client
	err      error // the client's write error; every later call returns it
	accepted int64 // bytes handed to the client, in all
}

func newClientWriter(w io.Writer, limit time.Duration, bufs *sizedBufs) *clientWriter {
	cw := &clientWriter{w: w, bufs: bufs, limit: limit, work: make(chan []byte), done: make(chan error, 1), exit: make(chan struct{})}
	go func() {
		defer close(cw.exit)
		for b := range cw.work {
			n, err := cw.w.Write(b)
			if err == nil && n < len(b) {
				err = io.ErrShortWrite
			}
			cw.done <- err
		}
	}()
	return cw
}

// Write hands p to the client; see clientWriter.
func (cw *clientWriter) Write(p []byte) (int, error) {
	if err := cw.wait(); err != nil {
		return 0, err
	}
	if cap(cw.buf) < len(p) {
		if cw.buf != nil {
			cw.bufs.put(cw.buf)
		}
		cw.buf = cw.bufs.get(int64(len(p)))
	}
	cw.buf = append(cw.buf[:0], p...)
	cw.work <- cw.buf
	cw.busy = true
	cw.accepted += int64(len(p))
	if cw.yield == nil {
		cw.yield = time.NewTimer(cw.limit)
	} else {
		cw.yield.Reset(cw.limit)
	}
	select {
	case err := <-cw.done:
		cw.yield.Stop()
		cw.busy = false
		if err != nil {
			cw.err = err
			return 0, err
		}
		return len(p), nil
	case <-cw.yield.C:
		return 0, errYield
	}
}

// wait waits for the write on its way, if any, and returns the client's
// error.
func (cw *clientWriter) wait() error {
	if cw.busy {
		if err := <-cw.done; err != nil && cw.err == nil {
			cw.err = err
		}
		cw.busy = false
	}
	return cw.err
}

// close waits for the last write and stops the goroutine.
func (cw *clientWriter) close() error {
	err := cw.wait()
	close(cw.work)
	<-cw.exit
	if cw.yield != nil {
		cw.yield.Stop()
	}
	if cw.buf != nil {
		cw.bufs.put(cw.buf)
		cw.buf = nil
	}
	return err
}

// badReason classifies a decode failure for repair: "corrupt" for bitrot,
// "missing" for a shard its node does not have, "" for everything else
// (timeouts, unavailable nodes, cancellations), which must not be reported:
// a node that is merely slow or restarting would be repaired needlessly.
func badReason(f erasure.ShardFailure) string {
	var ce *storage.CorruptError
	switch {
	case errors.Is(f.Err, errReadStalled), errors.Is(f.Err, context.Canceled), errors.Is(f.Err, context.DeadlineExceeded):
		return ""
	case f.Corrupt(), errors.As(f.Err, &ce):
		return "corrupt"
	case errors.Is(f.Err, storage.ErrNotFound):
		return "missing"
	}
	return ""
}

// reportBad reports the corrupt and missing shards of a decode to meta.
// Reports are best effort: a failure is counted, not returned, since the
// read itself has its own outcome and scrubbing finds the shard again.
func (c *Coordinator) reportBad(ctx context.Context, m meta.Manifest, si int, rep erasure.DecodeReport) {
	seg := m.Segments[si]
	for _, f := range rep.Failures {
		reason := badReason(f)
		if reason == "" || f.Shard < 0 || f.Shard >= len(seg.Shards) {
			continue
		}
		c.reportShard(ctx, m, si, seg.Shards[f.Shard], reason)
	}
}

// reportShard reports shard ref of segment si of m to meta as bad for
// reason, best effort (a failure is counted, not returned).
func (c *Coordinator) reportShard(ctx context.Context, m meta.Manifest, si int, ref meta.ShardRef, reason string) {
	b := meta.BadShard{
		ShardKey: meta.ShardKey{
			Bucket: m.Bucket, Key: m.Key, Generation: m.Generation,
			Segment: si, Index: ref.Index, Node: ref.Node, ShardID: ref.ID,
		},
		Reason:   reason,
		Reported: c.cfg.Now().UTC(),
	}
	rctx, cancel := c.cleanupCtx(ctx)
	defer cancel()
	if c.md.ReportBad(rctx, b) != nil {
		c.reportErrs.Add(1)
	}
}

// opener returns the erasure.ShardOpener of one segment: it Gets the shard
// from its node with a no-progress deadline, and fails at once (so the codec
// turns to parity) for an unplaced shard, an unknown or unreadable node, or
// an index in exclude.
func (c *Coordinator) opener(mp *cluster.Map, seg meta.Segment, exclude map[int]bool) erasure.ShardOpener {
	return func(ctx context.Context, shard int, off, n int64) (io.ReadCloser, error) {
		if shard < 0 || shard >= len(seg.Shards) {
			return nil, fmt.Errorf("open shard %d: no such index in a %d-shard segment", shard, len(seg.Shards))
		}
		ref := seg.Shards[shard]
		if exclude[shard] {
			return nil, fmt.Errorf("open shard %d (%s): %w", shard, ref.ID, errShardExcluded)
		}
		if ref.Node == "" {
			return nil, fmt.Errorf("open shard %d: %w", shard, errShardUnplaced)
		}
		node, ok := mp.Node(ref.Node)
		if !ok || !node.State.Readable() {
			return nil, fmt.Errorf("open shard %d (%s) on %s: %w", shard, ref.ID, ref.Node, errNodeUnavailable)
		}
		st, err := c.nodes.Store(node)
		if err != nil {
			return nil, fmt.Errorf("open shard %d (%s): dial %s: %w", shard, ref.ID, ref.Node, err)
		}
		rc, err := c.timedGet(ctx, st, ref.ID, off, n)
		if err != nil {
			return nil, fmt.Errorf("open shard %d (%s) on %s: %w", shard, ref.ID, ref.Node, err)
		}
		return rc, nil
	}
}

// shardReader is a shard stream whose Get and every Read must make
// progress within Config.ReadTimeout: past it, its watchdog cancels the
// stream's context and the read fails with errReadStalled. Time spent
// between Reads (the client being slow) does not count. Close may be called
// while a Read is in progress (the codec stops read-ahead that way): it
// cancels the stream's context and the underlying reader is closed once
// that Read has returned, so the store's reader never sees Close and Read
// at once.
type shardReader struct {
	rc     io.ReadCloser
	wd     *progress.Watchdog
	limit  time.Duration
	cancel context.CancelFunc

	mu       sync.Mutex // guards reading, closed, rcClosed
	reading  bool
	closed   bool
	rcClosed bool
}

func (c *Coordinator) timedGet(ctx context.Context, st ShardStore, id string, off, n int64) (io.ReadCloser, error) {
	sctx, cancel := context.WithCancel(ctx)
	wd := progress.New(cancel)
	wd.Arm(c.cfg.ReadTimeout)
	rc, err := st.Get(sctx, id, off, n)
	if wd.Disarm() {
		if err == nil {
			rc.Close()
		}
		cancel()
		return nil, errReadStalled
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &shardReader{rc: rc, wd: wd, limit: c.cfg.ReadTimeout, cancel: cancel}, nil
}

func (t *shardReader) Read(p []byte) (int, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return 0, errReaderClosed
	}
	t.reading = true
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.reading = false
		if t.closed && !t.rcClosed {
			t.rcClosed = true
			t.rc.Close()
		}
		t.mu.Unlock()
	}()
	if t.wd.Expired() {
		return 0, errReadStalled
	}
	t.wd.Arm(t.limit)
	n, err := t.rc.Read(p)
	if t.wd.Disarm() && err != nil && err != io.EOF {
		return n, errReadStalled
	}
	return n, err
}

func (t *shardReader) Close() error {
	t.wd.Stop()
	t.cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.reading {
		return nil // the Read in progress closes rc when it returns
	}
	t.rcClosed = true
	return t.rc.Close()
}
