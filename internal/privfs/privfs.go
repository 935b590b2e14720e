package privfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cockroachdb/pebble/vfs"
)

const (
	// FileMode is the mode of every file privfs creates.
	FileMode os.FileMode = 0o600
	// DirMode is the mode of every directory privfs creates.
	DirMode os.FileMode = 0o700
)

// ErrNotPrivate: a file that must hold a secret may be read or written by
// group or others. The error wrapping it names the path, the mode and the fix.
var ErrNotPrivate = errors.New("file is accessible to group or others")

// New returns the operating system's file system (vfs.Default) with private
// creation: new files 0600, new directories 0700.
func New() vfs.FS { return privateFS{vfs.Default} }

type privateFS struct{ vfs.FS }

// precreate makes name as an empty private file unless it exists.
func precreate(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// Create implements vfs.FS: like vfs.Default it replaces an existing file by
// a new inode, but the new inode is made private.
func (p privateFS) Create(name string) (vfs.File, error) {
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, FileMode)
		if err == nil {
			if err := f.Close(); err != nil {
				return nil, err
			}
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	// The file exists, empty and private: vfs.Default opens it (O_CREATE is
	// then a no-op) and hands back its own File, with its sync and
	// preallocation support.
	return p.FS.OpenReadWrite(name)
}

// OpenReadWrite implements vfs.FS; a missing file is created private.
func (p privateFS) OpenReadWrite(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	if err := precreate(name); err != nil {
		return nil, err
	}
	return p.FS.OpenReadWrite(name, opts...)
}

// ReuseForWrite implements vfs.FS: rename (the reused file keeps its mode),
// then open, creating the file private if the rename left none.
func (p privateFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	if err := p.FS.Rename(oldname, newname); err != nil {
		return nil, err
	}
	return p.OpenReadWrite(newname)
}

// Lock implements vfs.FS; a missing lock file is created private.
func (p privateFS) Lock(name string) (io.Closer, error) {
	if err := precreate(name); err != nil {
		return nil, err
	}
	return p.FS.Lock(name)
}

// MkdirAll implements vfs.FS; the directories it makes are private whatever
// perm asks for beyond the owner's bits.
func (p privateFS) MkdirAll(dir string, perm os.FileMode) error {
	return p.FS.MkdirAll(dir, perm&DirMode)
}

// Unwrap returns vfs.Default (see vfs.Root).
func (p privateFS) Unwrap() vfs.FS { return p.FS }

// CheckMode returns an error wrapping ErrNotPrivate when fi, the description
// of the file at path, allows group or others any access.
func CheckMode(path string, fi os.FileInfo) error {
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; it holds a secret, so run: chmod 600 %s", ErrNotPrivate, path, m, path)
	}
	return nil
}

// ReadFile reads the secret-holding file at path, refusing it (ErrNotPrivate)
// when group or others may access it. The mode is checked on the opened file,
// so a file swapped in between cannot slip past. A missing file gives an
// error wrapping fs.ErrNotExist.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := CheckMode(path, fi); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// WriteFile publishes data at path as a private file, atomically: written and
// fsynced under a temporary name in the same directory, renamed over path,
// and the directory fsynced. An existing file at path is replaced, whatever
// its mode was.
func WriteFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
