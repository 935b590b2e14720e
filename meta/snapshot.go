package meta

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
)

// snapshotFormat names the snapshot stream: a tar whose first entry is
// this marker and whose other entries are the files of a pebble checkpoint
// (a flat directory).
const snapshotFormat = "shale-meta-checkpoint-1"

// Checkpoint is a consistent copy of the store at one applied index, kept
// beside the store's directory (hard links where the filesystem allows)
// until Close. Its WriteTo streams it as a snapshot that Restore reads.
type Checkpoint struct {
	fs  vfs.FS
	dir string
	// Index is the raft index of the last command the copy holds.
	Index uint64
}

var checkpointSeq atomic.Uint64

// Checkpoint makes a consistent copy of the store: no command is applied
// while it is made, and the write-ahead log is synced first, so the store
// itself durably holds at least everything in the copy (a raft log may be
// truncated up to Index once the copy is saved).
func (s *Store) Checkpoint() (*Checkpoint, error) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return nil, fmt.Errorf("checkpoint: sync: %w", err)
	}
	dir := fmt.Sprintf("%s.checkpoint-%d-%d", s.cfg.Dir, time.Now().UnixNano(), checkpointSeq.Add(1))
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		_ = s.cfg.FS.RemoveAll(dir)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return &Checkpoint{fs: s.cfg.FS, dir: dir, Index: s.applied}, nil
}

// WriteTo streams the checkpoint as a snapshot (see snapshotFormat).
func (c *Checkpoint) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	if err := tw.WriteHeader(&tar.Header{Name: snapshotFormat, Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
		return cw.n, err
	}
	names, err := c.fs.List(c.dir)
	if err != nil {
		return cw.n, fmt.Errorf("list checkpoint: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		path := c.fs.PathJoin(c.dir, name)
		fi, err := c.fs.Stat(path)
		if err != nil {
			return cw.n, err
		}
		if fi.IsDir() {
			return cw.n, fmt.Errorf("checkpoint holds a directory %s", name)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
			return cw.n, err
		}
		f, err := c.fs.Open(path)
		if err != nil {
			return cw.n, err
		}
		_, err = io.Copy(tw, io.LimitReader(f, fi.Size()))
		_ = f.Close()
		if err != nil {
			return cw.n, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return cw.n, tw.Close()
}

// Close removes the checkpoint's files.
func (c *Checkpoint) Close() error { return c.fs.RemoveAll(c.dir) }

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the whole store with a snapshot that Checkpoint's
// WriteTo wrote: it unpacks it beside the store's directory (synced), then,
// with reads and applies held off, closes the database, swaps the
// directories, reopens and reloads the in-memory state (counters,
// membership, repair figures, applied index) from it. On an error before
// the swap the store is unchanged.
func (s *Store) Restore(r io.Reader) error {
	fs := s.cfg.FS
	tmp := s.cfg.Dir + ".restore"
	if err := fs.RemoveAll(tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := unpackSnapshot(fs, tmp, r); err != nil {
		_ = fs.RemoveAll(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("restore: close: %w", err)
	}
	old := s.cfg.Dir + ".old"
	if err := fs.RemoveAll(old); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := fs.Rename(s.cfg.Dir, old); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := fs.Rename(tmp, s.cfg.Dir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := SyncDir(fs, fs.PathDir(s.cfg.Dir)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, err := pebble.Open(s.cfg.Dir, storeOptions(fs))
	if err != nil {
		return fmt.Errorf("restore: open: %w", err)
	}
	s.db = db
	s.applied, s.gen, s.epoch, s.repair = 0, 0, 0, nil
	s.nodes = map[cluster.NodeID]*nodeState{}
	if err := s.load(); err != nil {
		return fmt.Errorf("restore: load: %w", err)
	}
	return fs.RemoveAll(old)
}

func unpackSnapshot(fs vfs.FS, dir string, r io.Reader) error {
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil || h.Name != snapshotFormat {
		return fmt.Errorf("%w: not a meta snapshot", ErrCorrupt)
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
		}
		if h.Typeflag != tar.TypeReg || h.Name == "" || strings.ContainsAny(h.Name, "/\\") || h.Name == "." || h.Name == ".." {
			return fmt.Errorf("%w: snapshot entry %q", ErrCorrupt, h.Name)
		}
		f, err := fs.Create(fs.PathJoin(dir, h.Name))
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", h.Name, err)
		}
	}
	return SyncDir(fs, dir)
}

// SyncDir syncs directory dir, so that the entries just made in it
// survive a crash.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// KeyspaceHash returns a SHA-256 over every key and value of the store, in
// key order: replicas at the same applied index hash alike.
func (s *Store) KeyspaceHash(ctx context.Context) ([]byte, error) {
	defer s.read()()
	h := sha256.New()
	var n [8]byte
	err := s.scan(ctx, nil, nil, func(k, v []byte) (bool, error) {
		binary.BigEndian.PutUint64(n[:], uint64(len(k)))
		h.Write(n[:])
		h.Write(k)
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		h.Write(n[:])
		h.Write(v)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("keyspace hash: %w", err)
	}
	return h.Sum(nil), nil
}

// SyncAncestors syncs every directory above path, up to the root, so that
// a directory just created (a store, a replica's raft directory) survives a
// crash: pebble syncs what is inside its directory, not the entry naming it.
func SyncAncestors(fs vfs.FS, path string) error {
	for {
		parent := fs.PathDir(path)
		if parent == path || parent == "" {
			return nil
		}
		if err := SyncDir(fs, parent); err != nil {
			return fmt.Errorf("sync directory %s: %w", parent, err)
		}
		path = parent
	}
}
