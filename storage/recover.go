package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/cockroachdb/pebble"
)

// reconcile brings the index back in line with the shard files after an
// unclean stop. Put publishes a file (rename) before it commits the index
// entry, and Delete removes the file before the entry, so a crash can leave:
//
//   - an entry whose file is gone (crash inside Delete, or a withdrawn Put):
//     the entry is dropped;
//   - a file whose entry is missing, or describes an older file with the same
//     id (crash between rename and index commit; detected by inode or size):
//     the file is complete — it was fsynced before the rename — but it is
//     verified anyway, then indexed, or deleted if it fails;
//   - a file that is not a valid id or sits in the wrong fan-out directory:
//     deleted;
//   - a file beside an inline entry (an inline Put replaced it and the crash
//     came before the file's removal): deleted. Inline entries themselves
//     are not read: entry and bytes are one batch, and damage to them is
//     the scrubber's to find.
//
// Temporary files are removed before this runs. Nothing here trusts a file
// it has not verified or an entry it has not matched with a file.
func (d *Disk) reconcile() error {
	b := d.db.NewBatch()
	// 1. Entries against files.
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte(keyShard), UpperBound: upperBound(keyShard)})
	if err != nil {
		return err
	}
	stale := map[string]bool{} // ids whose file must be (re)verified in step 2
	for it.First(); it.Valid(); it.Next() {
		id := string(it.Key()[len(keyShard):])
		if ValidateID(id) != nil {
			_ = b.Delete(it.Key(), nil)
			d.recovery.EntriesDropped++
			continue
		}
		e, err := decodeEntry(it.Value())
		if err == nil && e.inline {
			// Entry and bytes are one batch: a crash cannot part them, and
			// reading every inline value here would make a restart cost a
			// read of all of them. Damage is the scrubber's to find.
			continue
		}
		fi, serr := d.fs.Stat(d.shardPath(id))
		switch {
		case err != nil:
			_ = b.Delete(it.Key(), nil)
			_ = b.Delete(dataKey(id), nil)
			stale[id] = true
		case errors.Is(serr, fs.ErrNotExist):
			_ = b.Delete(it.Key(), nil)
			_ = b.Delete(badKey(id), nil)
			d.recovery.EntriesDropped++
		case serr != nil:
			it.Close()
			return serr
		case fi.Size() != e.lay.size || (e.ino != 0 && inode(fi) != 0 && inode(fi) != e.ino):
			stale[id] = true
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	// 2. Files against entries.
	root := filepath.Join(d.dir, "shards")
	dirs, err := d.fs.List(root)
	if err != nil {
		return err
	}
	for _, xx := range dirs {
		if !isFanoutName(xx) {
			continue // not ours (an operator's note, a stray file): leave it be
		}
		dir := filepath.Join(root, xx)
		names, err := d.fs.List(dir)
		if err != nil {
			return err
		}
		changed := false
		for _, id := range names {
			path := filepath.Join(dir, id)
			if ValidateID(id) != nil || fanout(id) != xx {
				if err := d.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				d.recovery.FilesRemoved++
				changed = true
				continue
			}
			if !stale[id] {
				e, ok, err := d.readEntry(id)
				switch {
				case err != nil:
					return err
				case ok && e.inline:
					// An inline shard replaced this file and the crash came
					// before the file's removal: the file is stale.
					if err := d.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return err
					}
					d.recovery.FilesRemoved++
					changed = true
					continue
				case ok:
					continue
				}
			}
			e, err := d.verifyFile(id, path)
			var ce *CorruptError
			switch {
			case errors.As(err, &ce):
				if err := d.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				_ = b.Delete(shardKey(id), nil)
				_ = b.Delete(dataKey(id), nil)
				d.recovery.FilesRemoved++
				changed = true
			case err != nil:
				return fmt.Errorf("verify %s: %w", path, err)
			default:
				_ = b.Set(shardKey(id), e.encode(), nil)
				d.recovery.FilesAdded++
			}
			_ = b.Delete(badKey(id), nil)
		}
		if !changed {
			continue
		}
		if err := d.syncDir(dir); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// verifyFile reads a shard file through the verifier and returns its entry.
func (d *Disk) verifyFile(id, path string) (entry, error) {
	f, err := d.fs.Open(path)
	if err != nil {
		return entry{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return entry{}, err
	}
	bp := d.bufs.Get().(*[]byte)
	defer d.bufs.Put(bp)
	in, err := ingest(context.Background(), id, f, io.Discard, *bp, -1)
	if err != nil {
		return entry{}, err
	}
	return entry{lay: in.lay, sum: in.sum, created: fi.ModTime().UTC(), ino: inode(fi)}, nil
}

// isFanoutName reports whether name is one of the shard directories fanout
// makes: two lower-case hex digits.
func isFanoutName(name string) bool {
	if len(name) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
