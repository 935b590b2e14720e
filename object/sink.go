package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shale-store/shale/cluster"
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
)

// sink streams one shard to one node's Put through a pipe. The encoder (or
// rebuilder) writes to w; a goroutine owned by the fanout runs the Put.
type sink struct {
	index   int
	node    cluster.NodeID
	id      string
	started bool // Put was called: the shard may exist on the node

	pw     *io.PipeWriter
	w      *stallWriter
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

// stallWriter cuts its shard off when one Write blocks for longer than the
// stall limit (a node that stopped reading would otherwise hold the whole
// encode hostage). Writes are serialised by the caller, as io.Writer requires.
type stallWriter struct {
	pw      *io.PipeWriter
	timer   *time.Timer
	limit   time.Duration
	stalled atomic.Bool
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.timer.Reset(w.limit)
	n, err := w.pw.Write(p)
	w.timer.Stop()
	if err != nil && w.stalled.Load() {
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
	waited  bool
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
		pr, pw := io.Pipe()
		s.pw, s.cancel, s.started = pw, cancel, true
		s.w = &stallWriter{pw: pw, limit: c.cfg.WriteStall}
		sw := s.w
		sw.timer = time.AfterFunc(time.Hour, func() {
			sw.stalled.Store(true)
			cancel()
			pw.CloseWithError(errWriteStalled)
		})
		sw.timer.Stop()
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

// abort ends every stream with err and cancels every Put.
func (f *fanout) abort(err error) {
	for _, s := range f.sinks {
		if s != nil && s.started {
			s.pw.CloseWithError(err)
			s.cancel()
		}
	}
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
// size is not wantSize counts as failed. It returns the number of durable
// shards. Every goroutine has returned when wait returns.
func (f *fanout) wait(quorum int, wantSize int64) int {
	defer f.wg.Wait()
	f.waited = true
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
			s.w.timer.Stop()
			if s.err == nil && s.info.Size != wantSize {
				s.err = fmt.Errorf("put shard %d of %s on %s: %w: %d bytes, want %d", s.index, s.id, s.node, errSizeMismatch, s.info.Size, wantSize)
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
