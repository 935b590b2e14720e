package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/progress"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

var (
	// errWriteStalled: a shard write made no progress for WriteStall.
	errWriteStalled = errors.New("shard write stalled")
	// errPutReturned: the node's Put returned before the stream ended.
	errPutReturned = errors.New("shard put returned before end of stream")
	// errStraggler: the write was cancelled because the outcome was decided
	// without it.
	errStraggler = errors.New("shard write cancelled as a straggler")
	// errSizeMismatch: a node acknowledged a shard of the wrong length.
	errSizeMismatch = errors.New("shard size mismatch")
	// errNothingToRebuild: a repair found no target it could write to.
	errNothingToRebuild = errors.New("no rebuilt shard can be written")
	// A node that acknowledges a shard whose summary is not that of the
	// records sent fails with errSummaryMismatch (summary.go).
)

// sink streams one shard to one node's Put through a shardPipe. The encoder
// (or rebuilder) writes to w; a goroutine owned by the fanout runs the Put.
type sink struct {
	index   int
	node    cluster.NodeID
	id      string
	started bool // Put was called: the shard may exist on the node

	pw     *pipeWriter
	w      *shardWriter
	cancel context.CancelFunc

	// set by the goroutine before it reports on results
	info storage.Info
	err  error
}

// ok reports whether the shard is durable with the expected size. Valid
// after fanout.wait.
func (s *sink) ok() bool { return s.started && s.err == nil }

// garbage is the shard as a garbage entry.
func (s *sink) garbage() meta.Garbage { return meta.Garbage{Node: s.node, ShardID: s.id} }

// shardWriter is a sink's stream as the encoder (or rebuilder) sees it:
// every Write must be taken by the node within Config.WriteStall, else its
// watchdog cancels the Put and closes the pipe, and the shard is cut off (a
// node that stopped reading would otherwise hold the whole encode hostage).
// Writes are serialised by the caller, as io.Writer requires.
type shardWriter struct {
	pw    *pipeWriter
	wd    *progress.Watchdog
	limit time.Duration
}

func (w *shardWriter) Write(p []byte) (int, error) {
	w.wd.Arm(w.limit)
	n, err := w.pw.Write(p)
	if w.wd.Disarm() && err != nil {
		err = errWriteStalled
	}
	return n, err
}

// fanout is the set of shard sinks of one segment write.
type fanout struct {
	sinks   []*sink // by shard index; nil where nothing is written
	started int
	results chan *sink
	wg      sync.WaitGroup
	stall   time.Duration
}

// startFanout starts a Put for every index with a target node. ids[i] is the
// shard id of index i. A node the map does not know, or whose store cannot be
// dialled, gets a sink with err set and no writer.
func (c *Coordinator) startFanout(ctx context.Context, mp *cluster.Map, targets []cluster.NodeID, ids []string) *fanout {
	f := &fanout{
		sinks:   make([]*sink, len(targets)),
		results: make(chan *sink, len(targets)),
		stall:   c.cfg.WriteStall,
	}
	for i, nid := range targets {
		if nid == "" {
			continue
		}
		s := &sink{index: i, node: nid, id: ids[i]}
		f.sinks[i] = s
		n, ok := mp.Node(nid)
		if !ok {
			s.err = fmt.Errorf("put shard %d of %s: node %s not in cluster map", i, ids[i], nid)
			continue
		}
		st, err := c.nodes.Store(n)
		if err != nil {
			s.err = fmt.Errorf("put shard %d of %s: dial %s: %w", i, ids[i], nid, err)
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		pr, pw := newShardPipe()
		s.pw, s.cancel, s.started = pw, cancel, true
		s.w = &shardWriter{pw: pw, limit: c.cfg.WriteStall, wd: progress.New(func() {
			cancel()
			pw.CloseWithError(errWriteStalled)
		})}
		f.started++
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			info, err := st.Put(sctx, s.id, pr)
			if err == nil {
				pr.CloseWithError(errPutReturned)
			} else {
				pr.CloseWithError(err)
				err = fmt.Errorf("put shard %d of %s on %s: %w", s.index, s.id, s.node, err)
			}
			s.info, s.err = info, err
			f.results <- s
		}()
	}
	return f
}

// writer returns the writer for shard i, or nil when it is not being written.
func (f *fanout) writer(i int) io.Writer {
	if s := f.sinks[i]; s != nil && s.started {
		return s.w
	}
	return nil
}

// writers returns the writers by shard index (nil where nothing is written).
func (f *fanout) writers() []io.Writer {
	ws := make([]io.Writer, len(f.sinks))
	for i := range f.sinks {
		if w := f.writer(i); w != nil {
			ws[i] = w
		}
	}
	return ws
}

// finish ends every stream: a shard whose writer failed (writeErrs[i] != nil)
// is aborted so its node keeps nothing; the others get EOF and may commit.
func (f *fanout) finish(writeErrs []error) {
	for i, s := range f.sinks {
		if s == nil || !s.started {
			continue
		}
		if i < len(writeErrs) && writeErrs[i] != nil {
			s.pw.CloseWithError(writeErrs[i])
		} else {
			s.pw.Close()
		}
	}
}

// cancel gives up the whole write: it ends every stream with err, cancels
// every Put and waits for them. No shard counts as written afterwards, even
// one whose Put raced to success (the caller queues every attempted shard
// as garbage). Every goroutine has returned when cancel returns. It is the
// alternative to wait, not a step before it.
func (f *fanout) cancel(err error) {
	for _, s := range f.sinks {
		if s != nil && s.started {
			s.pw.CloseWithError(err)
			s.cancel()
		}
	}
	for range f.started {
		s := <-f.results
		s.w.wd.Stop()
		if s.err == nil {
			s.err = fmt.Errorf("put shard %d of %s on %s: %w", s.index, s.id, s.node, err)
		}
	}
	f.wg.Wait()
}

func (f *fanout) cancelPending(done map[*sink]bool) {
	for _, s := range f.sinks {
		if s != nil && s.started && !done[s] {
			s.cancel()
		}
	}
}

// wait collects every started Put. Once quorum successes are impossible it
// cancels the rest; when no Put completes for the stall limit it cancels the
// stragglers (they are then failed shards, left to repair). A success whose
// size is not wantSize, or whose checksum is not wantSums[index] (the
// summary of the records sent; nil: not checked), counts as failed. It
// returns the number of durable shards. Every goroutine has returned when
// wait returns.
func (f *fanout) wait(quorum int, wantSize int64, wantSums []uint64) int {
	defer f.wg.Wait()
	done := make(map[*sink]bool, f.started)
	good := 0
	timer := time.NewTimer(f.stall)
	defer timer.Stop()
	for pending := f.started; pending > 0; {
		if good+pending < quorum {
			f.cancelPending(done)
		}
		select {
		case s := <-f.results:
			pending--
			done[s] = true
			s.cancel()
			s.w.wd.Stop()
			if s.err == nil && s.info.Size != wantSize {
				s.err = fmt.Errorf("put shard %d of %s on %s: %w: %d bytes, want %d", s.index, s.id, s.node, errSizeMismatch, s.info.Size, wantSize)
			}
			if s.err == nil && s.index < len(wantSums) && s.info.Checksum != wantSums[s.index] {
				s.err = fmt.Errorf("put shard %d of %s on %s: %w: node has %016x, sent %016x", s.index, s.id, s.node, errSummaryMismatch, s.info.Checksum, wantSums[s.index])
			}
			if s.err == nil {
				good++
			}
			timer.Reset(f.stall)
		case <-timer.C:
			for _, s := range f.sinks {
				if s != nil && s.started && !done[s] {
					s.pw.CloseWithError(errStraggler)
				}
			}
			f.cancelPending(done)
			timer.Reset(f.stall)
		}
	}
	return good
}

// attempted lists, as garbage, every shard whose Put was started.
func (f *fanout) attempted() []meta.Garbage {
	var g []meta.Garbage
	for _, s := range f.sinks {
		if s != nil && s.started {
			g = append(g, s.garbage())
		}
	}
	return g
}

// failedAttempted lists, as garbage, the started shards that are not durable.
func (f *fanout) failedAttempted() []meta.Garbage {
	var g []meta.Garbage
	for _, s := range f.sinks {
		if s != nil && s.started && !s.ok() {
			g = append(g, s.garbage())
		}
	}
	return g
}

// errs joins the failures of every shard that was to be written.
func (f *fanout) errs() error {
	var es []error
	for _, s := range f.sinks {
		if s != nil && s.err != nil {
			es = append(es, s.err)
		}
	}
	return errJoin(es)
}

// newShardPipe returns the two ends of a pipe that, like io.Pipe, hands each
// Write to the reader and returns once the reader has consumed all of it —
// so the writer may reuse its buffer as soon as Write returns — but whose
// reader can also consume a Write without copying it: WriteTo passes the
// writer's own slice to its destination (a node's connection), so a shard
// record goes from the encoder's stripe buffer to the socket with no
// buffer in between. That keeps the only shard-data memory of a PUT in the
// codec's stripe buffers, which the memory budget accounts for.
//
// Closing either end ends the pipe for both: the reader then sees the
// writer's error (io.EOF after Close) and the writer the reader's
// (io.ErrClosedPipe when none was given). A Write in progress whose bytes
// the reader holds does not return before the reader is done with them,
// even when the pipe is closed meanwhile; the reader's destination must
// therefore give up when its context is cancelled (an HTTP transport closes
// its connection), as the sink's watchdog and wait rely on.
func newShardPipe() (*pipeReader, *pipeWriter) {
	p := &shardPipe{wr: make(chan []byte), rd: make(chan int), done: make(chan struct{})}
	return &pipeReader{p}, &pipeWriter{p}
}

type shardPipe struct {
	wr   chan []byte   // a Write's remaining bytes, offered to the reader
	rd   chan int      // how many of them the reader consumed; always sent after a receive on wr
	once sync.Once     // closes done
	done chan struct{} // closed when either end closes

	mu   sync.Mutex // guards rerr, werr
	rerr error      // the reader's close error
	werr error      // the writer's close error
}

func (p *shardPipe) close(reader bool, err error) {
	p.mu.Lock()
	if reader && p.rerr == nil {
		if err == nil {
			err = io.ErrClosedPipe
		}
		p.rerr = err
	}
	if !reader && p.werr == nil {
		if err == nil {
			err = io.EOF
		}
		p.werr = err
	}
	p.mu.Unlock()
	p.once.Do(func() { close(p.done) })
}

// readErr is what the reader gets once the pipe is closed.
func (p *shardPipe) readErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return p.werr
	}
	return io.ErrClosedPipe
}

// writeErr is what the writer gets once the pipe is closed.
func (p *shardPipe) writeErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil && p.rerr != nil {
		return p.rerr
	}
	return io.ErrClosedPipe
}

func (p *shardPipe) write(b []byte) (int, error) {
	select {
	case <-p.done:
		return 0, p.writeErr()
	default:
	}
	n := 0
	for once := true; once || len(b) > 0; once = false {
		select {
		case p.wr <- b:
			k := <-p.rd // the reader always answers, closed pipe or not
			b = b[k:]
			n += k
		case <-p.done:
			return n, p.writeErr()
		}
	}
	return n, nil
}

// pipeReader is the node's end of a shardPipe.
type pipeReader struct{ p *shardPipe }

// Read copies from the pending Write into b.
func (r *pipeReader) Read(b []byte) (int, error) {
	p := r.p
	select {
	case <-p.done:
		return 0, p.readErr()
	default:
	}
	select {
	case w := <-p.wr:
		k := copy(b, w)
		p.rd <- k
		return k, nil
	case <-p.done:
		return 0, p.readErr()
	}
}

// WriteTo writes every Write to dst as it comes, without copying, until
// the writer closes the pipe. It returns nil after Close, the writer's
// error after CloseWithError, and dst's error (closing the pipe with it)
// when dst fails.
func (r *pipeReader) WriteTo(dst io.Writer) (int64, error) {
	p := r.p
	var total int64
	for {
		select {
		case w := <-p.wr:
			k, err := dst.Write(w)
			if err == nil && k < len(w) {
				err = io.ErrShortWrite
			}
			if err != nil {
				p.close(true, err)
			}
			p.rd <- k
			total += int64(k)
			if err != nil {
				return total, err
			}
		case <-p.done:
			if err := p.readErr(); err != io.EOF {
				return total, err
			}
			return total, nil
		}
	}
}

// CloseWithError closes the pipe; the writer's next (or current) Write
// fails with err (io.ErrClosedPipe when nil).
func (r *pipeReader) CloseWithError(err error) error {
	r.p.close(true, err)
	return nil
}

// pipeWriter is the encoder's end of a shardPipe.
type pipeWriter struct{ p *shardPipe }

// Write hands b to the reader and returns once it has consumed all of b.
func (w *pipeWriter) Write(b []byte) (int, error) { return w.p.write(b) }

// Close ends the stream: the reader sees io.EOF.
func (w *pipeWriter) Close() error { return w.CloseWithError(nil) }

// CloseWithError ends the stream with err (io.EOF when nil).
func (w *pipeWriter) CloseWithError(err error) error {
	w.p.close(false, err)
	return nil
}
