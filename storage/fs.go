package storage

import (
	"io"
	"os"
	"syscall"
)

// FS is the file-system surface a Disk uses for its FORMAT file, shard files,
// temporary files and directories (not for the pebble index, which uses the
// real directory). It exists so tests can inject faults (EIO, ENOSPC, failed
// fsync) by wrapping OSFS. Paths are absolute or relative to the process.
type FS interface {
	// OpenFile opens a file like os.OpenFile. Directories are opened with
	// os.O_RDONLY so that they can be synced.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Rename replaces newpath with oldpath atomically, like os.Rename. It
	// is durable only once the directories involved are synced.
	Rename(oldpath, newpath string) error
	// Remove deletes a file or empty directory, like os.Remove: a missing
	// name is an error wrapping fs.ErrNotExist. Durable once the directory
	// is synced.
	Remove(name string) error
	// MkdirAll creates a directory and its parents, like os.MkdirAll; an
	// existing directory is not an error. It syncs nothing.
	MkdirAll(path string, perm os.FileMode) error
	// ReadDir returns the names in a directory, in no particular order.
	ReadDir(name string) ([]string, error)
	// Stat describes a file like os.Stat (following links); a missing name
	// is an error wrapping fs.ErrNotExist.
	Stat(name string) (os.FileInfo, error)
	// Statfs reports the total and available bytes of the file system
	// holding path.
	Statfs(path string) (total, avail int64, err error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.Writer
	io.Seeker
	io.Closer
	Sync() error
	Stat() (os.FileInfo, error)
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (OSFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (OSFS) Remove(name string) error                     { return os.Remove(name) }
func (OSFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (OSFS) Stat(name string) (os.FileInfo, error)        { return os.Stat(name) }

func (OSFS) ReadDir(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (OSFS) Statfs(path string) (total, avail int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize), nil
}

// inode returns fi's inode number, or 0 when the FS does not expose one.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
