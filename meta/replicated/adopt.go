package replicated

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
)

// A single-process meta (before replication) kept its pebble store at the
// top of its directory. A replica started on such a directory adopts it:
// the store moves to Dir/meta, and the replica's raft starts from a
// snapshot of it (at the index after the store's own applied index, 0 for
// a store that never was replicated), as a group of one voter (itself).
// Its log begins after the snapshot, so a replica added later catches up
// by snapshot and holds everything the old store held.
const (
	adoptTerm = 1
	// adoptMarker (in Dir) says the store was moved but raft has no
	// snapshot of it yet; a crash in between finishes the adoption on the
	// next start.
	adoptMarker = "adopt-pending"
	adoptTmp    = "adopting"
)

// replicaNames are what a replica's own directory holds; anything else at
// the top of a directory with a pebble store there belongs to the store.
var replicaNames = map[string]bool{"meta": true, "raft": true, "snapshots": true, adoptMarker: true, adoptTmp: true}

// moveLegacyStore moves a single-process store found at the top of dir
// into metaDir (crash-safe: through dir/adopting, then one rename) and
// leaves the marker. It reports whether it moved one.
func moveLegacyStore(fs vfs.FS, dir, metaDir string) (bool, error) {
	names, err := fs.List(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	legacy, resuming := false, false
	for _, n := range names {
		legacy = legacy || strings.HasPrefix(n, "OPTIONS-") || strings.HasPrefix(n, "MANIFEST-")
		resuming = resuming || n == adoptTmp
	}
	if !legacy && !resuming {
		return false, nil
	}
	if _, err := fs.Stat(metaDir); err == nil {
		return false, fmt.Errorf("%s holds both a single-process store and a replica's (%s): move one away", dir, metaDir)
	}
	tmp := fs.PathJoin(dir, adoptTmp)
	if err := fs.MkdirAll(tmp, 0o700); err != nil {
		return false, err
	}
	for _, n := range names {
		if replicaNames[n] {
			continue
		}
		if err := fs.Rename(fs.PathJoin(dir, n), fs.PathJoin(tmp, n)); err != nil {
			return false, fmt.Errorf("adopt the single-process store: %w", err)
		}
	}
	if err := syncDirs(fs, tmp, dir); err != nil {
		return false, err
	}
	mf, err := fs.Create(fs.PathJoin(dir, adoptMarker))
	if err != nil {
		return false, err
	}
	if err := errors.Join(mf.Sync(), mf.Close()); err != nil {
		return false, err
	}
	if err := fs.Rename(tmp, metaDir); err != nil {
		return false, fmt.Errorf("adopt the single-process store: %w", err)
	}
	return true, syncDirs(fs, dir)
}

func syncDirs(fs vfs.FS, dirs ...string) error {
	for _, d := range dirs {
		f, err := fs.OpenDir(d)
		if err != nil {
			return err
		}
		if err := errors.Join(f.Sync(), f.Close()); err != nil {
			return fmt.Errorf("sync directory %s: %w", d, err)
		}
	}
	return nil
}

// finishAdoption gives raft its starting point for an adopted store: the
// store applies the restart grace at a new index, a snapshot of it at that
// index names this replica the only voter, and the term is adoptTerm. It
// runs only while raft has no state; the marker goes once it is done.
func (n *Node) finishAdoption() error {
	marker := n.cfg.FS.PathJoin(n.cfg.Dir, adoptMarker)
	if _, err := n.cfg.FS.Stat(marker); err != nil {
		return nil // nothing adopted
	}
	has, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return err
	}
	if !has {
		// The grace is applied at a fresh index, which the snapshot then
		// covers; a crash before the snapshot repeats both at the next.
		adoptIndex := n.store.AppliedIndex() + 1
		if _, err := n.store.Apply(adoptIndex, meta.Command{Op: meta.OpGrace, Time: n.now()}); err != nil {
			return err
		}
		cp, err := n.store.Checkpoint()
		if err != nil {
			return err
		}
		defer cp.Close()
		conf := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.ID), Address: n.cfg.Transport.LocalAddr(),
		}}}
		sink, err := n.snaps.Create(raft.SnapshotVersionMax, adoptIndex, adoptTerm, conf, adoptIndex, n.cfg.Transport)
		if err != nil {
			return err
		}
		if err := (&snapshot{cp: cp}).Persist(sink); err != nil {
			return err
		}
		if err := n.logs.SetUint64([]byte("CurrentTerm"), adoptTerm); err != nil {
			return err
		}
		n.cfg.Logger.Info("adopted a single-process meta store", "index", adoptIndex, "at", time.Now())
	}
	return n.cfg.FS.Remove(marker)
}
