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

// ErrAdoptAlone refuses to adopt a single-process store except as a group
// of one: founders with an empty log would elect a leader without the old
// data, and a replica waiting to join would be overwritten by the group.
var ErrAdoptAlone = errors.New("a single-process meta store is adopted by a group of one: start this replica without --peer or --join, then add the others (shale admin meta add)")

// ErrStateLost refuses a replica whose store holds applied entries while
// its raft log is gone.
var ErrStateLost = errors.New("meta replica state lost")

// IsLegacyDir reports whether dir holds a single-process store at its top,
// or one whose adoption a crash interrupted (so a replica opening it
// adopts it).
func IsLegacyDir(fs vfs.FS, dir string) bool {
	names, err := fs.List(dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if n == adoptTmp || n == adoptMarker || strings.HasPrefix(n, "OPTIONS-") || strings.HasPrefix(n, "MANIFEST-") {
			return true
		}
	}
	return false
}

// pebbleFile reports whether name is one of pebble's own files or
// directories (what moves with an adopted store; anything else, such as a
// secret kept beside it, stays).
func pebbleFile(name string) bool {
	for _, p := range []string{"OPTIONS-", "MANIFEST-", "marker.", "CURRENT", "LOCK"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, s := range []string{".sst", ".log", ".blob", ".dbtmp"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return name == "archive"
}

// aloneIn reports whether servers is exactly this replica.
func aloneIn(servers []raft.Server, id string) bool {
	return len(servers) == 1 && string(servers[0].ID) == id
}

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
		if !pebbleFile(n) {
			continue
		}
		if err := fs.Rename(fs.PathJoin(dir, n), fs.PathJoin(tmp, n)); err != nil {
			return false, fmt.Errorf("adopt the single-process store: %w", err)
		}
	}
	if err := errors.Join(meta.SyncDir(fs, tmp), meta.SyncDir(fs, dir)); err != nil {
		return false, err
	}
	// The marker is durable before the store moves: a replica that finds
	// meta/ without raft state and without the marker is not adopting.
	mf, err := fs.Create(fs.PathJoin(dir, adoptMarker))
	if err != nil {
		return false, err
	}
	if err := errors.Join(mf.Sync(), mf.Close(), meta.SyncDir(fs, dir)); err != nil {
		return false, err
	}
	if err := fs.Rename(tmp, metaDir); err != nil {
		return false, fmt.Errorf("adopt the single-process store: %w", err)
	}
	return true, meta.SyncDir(fs, dir)
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
	if !has && !aloneIn(n.cfg.Bootstrap, n.cfg.ID) {
		return ErrAdoptAlone
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
