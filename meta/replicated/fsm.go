package replicated

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
)

// fsm is raft's state machine: the local meta.Store. raft calls Apply,
// Snapshot and Restore from one goroutine; Persist runs beside Apply.
type fsm struct {
	store *meta.Store

	mu      sync.Mutex
	applied uint64        // index of the last entry the store holds
	moved   chan struct{} // closed (and replaced) whenever applied moves
}

func newFSM(store *meta.Store) *fsm {
	return &fsm{store: store, applied: store.AppliedIndex(), moved: make(chan struct{})}
}

// response is what Apply returns to the proposer's future.
type response struct {
	res meta.Result
	err error
}

// Apply decodes the command and applies it at the entry's index. A command
// that does not decode is rejected alike on every replica. A store failure
// leaves this replica unable to go on without diverging, so it panics; the
// restarted process replays the entry from the log.
func (f *fsm) Apply(l *raft.Log) interface{} {
	c, err := meta.DecodeCommand(l.Data)
	if err != nil {
		f.advance(l.Index)
		return response{err: err}
	}
	res, err := f.store.Apply(l.Index, c)
	if err != nil {
		panic(fmt.Sprintf("meta replica cannot apply raft index %d (%s): %v", l.Index, c.Op, err))
	}
	f.advance(l.Index)
	return response{res: res}
}

func (f *fsm) advance(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if index > f.applied {
		f.applied = index
	}
	close(f.moved)
	f.moved = make(chan struct{})
}

// set sets the applied index (after a restore, which may move it anywhere).
func (f *fsm) set(index uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = index
	close(f.moved)
	f.moved = make(chan struct{})
}

// wait returns once the store holds entry index, or ctx is done.
func (f *fsm) wait(ctx context.Context, index uint64) error {
	for {
		f.mu.Lock()
		done, moved := f.applied >= index, f.moved
		f.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Snapshot takes a pebble checkpoint (hard links, after syncing the WAL) in
// the FSM goroutine, so it holds exactly the entries applied so far.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	cp, err := f.store.Checkpoint()
	if err != nil {
		return nil, err
	}
	return &snapshot{cp: cp}, nil
}

// Restore replaces the store with a snapshot from the leader.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.store.Restore(rc); err != nil {
		return err
	}
	f.set(f.store.AppliedIndex())
	return nil
}

type snapshot struct{ cp *meta.Checkpoint }

// Persist streams the checkpoint to the sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.cp.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist meta snapshot at %d: %w", s.cp.Index, err)
	}
	return sink.Close()
}

// Release removes the checkpoint's files.
func (s *snapshot) Release() { _ = s.cp.Close() }
