package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// faultFS wraps OSFS and fails chosen operations: inject is asked before
// every operation with the op name ("open", "write", "read", "sync",
// "rename", "remove"), the path (the directory's path for a directory sync),
// and for writes the bytes the file already holds.
type faultFS struct {
	OSFS
	mu     sync.Mutex
	inject func(op, path string, at int64) error
}

func (f *faultFS) fault(op, path string, at int64) error {
	f.mu.Lock()
	fn := f.inject
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	if err := fn(op, path, at); err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}

func (f *faultFS) set(fn func(op, path string, at int64) error) {
	f.mu.Lock()
	f.inject = fn
	f.mu.Unlock()
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := f.fault("open", name, 0); err != nil {
		return nil, err
	}
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: name}, nil
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.fault("rename", n, 0); err != nil {
		return err
	}
	return f.OSFS.Rename(o, n)
}

func (f *faultFS) Remove(name string) error {
	if err := f.fault("remove", name, 0); err != nil {
		return err
	}
	return f.OSFS.Remove(name)
}

type faultFile struct {
	File
	fs      *faultFS
	path    string
	written int64
	read    int64
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.fault("write", f.path, f.written+int64(len(p))); err != nil {
		return 0, err
	}
	n, err := f.File.Write(p)
	f.written += int64(n)
	return n, err
}

func (f *faultFile) Read(p []byte) (int, error) {
	if err := f.fs.fault("read", f.path, f.read+int64(len(p))); err != nil {
		return 0, err
	}
	n, err := f.File.Read(p)
	f.read += int64(n)
	return n, err
}

func (f *faultFile) Sync() error {
	if err := f.fs.fault("sync", f.path, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

func inTmp(p string) bool { return filepath.Base(filepath.Dir(p)) == "tmp" }
func isShardDir(d *Disk, p string) bool {
	return filepath.Dir(p) == filepath.Join(d.dir, "shards") && p != filepath.Join(d.dir, "shards")
}

func TestWriteFaults(t *testing.T) {
	old, neu := stripes(t, 30, 3), stripes(t, 31, 8)
	cases := []struct {
		name string
		// inject returns the fault for one op, given the store (for paths).
		inject      func(d *Disk) func(op, path string, at int64) error
		want        error // errors.Is target
		publishFail bool  // the fault comes after the rename: the id ends up absent
	}{
		{"EIO on write", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "write" && inTmp(p) && at > 2000 {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, false},
		{"ENOSPC on write", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "write" && inTmp(p) && at > 1000 {
					return syscall.ENOSPC
				}
				return nil
			}
		}, ErrFull, false},
		{"ENOSPC creating the temp file", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "open" && inTmp(p) {
					return syscall.ENOSPC
				}
				return nil
			}
		}, ErrFull, false},
		{"fsync of the file fails", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "sync" && inTmp(p) {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, false},
		{"ENOSPC on fsync", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "sync" && inTmp(p) {
					return syscall.ENOSPC
				}
				return nil
			}
		}, ErrFull, false},
		{"rename fails", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "rename" {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, false},
		{"directory fsync fails after rename", func(d *Disk) func(string, string, int64) error {
			return func(op, p string, at int64) error {
				if op == "sync" && isShardDir(d, p) {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, true},
	}
	for _, tc := range cases {
		for _, overwrite := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/overwrite=%v", tc.name, overwrite), func(t *testing.T) {
				ffs := &faultFS{}
				d := openDisk(t, DiskConfig{FS: ffs})
				if overwrite {
					put(t, d, "x", old)
				}
				ffs.set(tc.inject(d))
				_, err := d.Put(context.Background(), "x", bytes.NewReader(neu))
				ffs.set(nil)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Put = %v, want errors.Is %v", err, tc.want)
				}
				// Never the new, never partial: the old shard, or (after a
				// failed publish) nothing.
				got, gerr := get(d, "x", 0, -1)
				switch {
				case overwrite && !tc.publishFail:
					if gerr != nil || !bytes.Equal(got, old) {
						t.Fatalf("after a failed overwrite: %v, %d bytes; want the old shard", gerr, len(got))
					}
				default:
					if !errors.Is(gerr, ErrNotFound) {
						t.Fatalf("after a failed put: Get = %v, %d bytes; want ErrNotFound", gerr, len(got))
					}
				}
				checkIndexMatchesFiles(t, d)
				// The store works once the fault is gone.
				put(t, d, "x", neu)
				if got, err := get(d, "x", 0, -1); err != nil || !bytes.Equal(got, neu) {
					t.Fatalf("Put after the fault cleared: %v", err)
				}
				checkIndexMatchesFiles(t, d)
			})
		}
	}
}

func TestDeleteFaults(t *testing.T) {
	ffs := &faultFS{}
	d := openDisk(t, DiskConfig{FS: ffs})
	s := stripes(t, 32, 2)
	put(t, d, "x", s)
	ffs.set(func(op, p string, at int64) error {
		if op == "remove" {
			return syscall.EIO
		}
		return nil
	})
	if err := d.Delete(context.Background(), "x"); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Delete with failing remove = %v", err)
	}
	ffs.set(nil)
	if got, err := get(d, "x", 0, -1); err != nil || !bytes.Equal(got, s) {
		t.Fatalf("shard damaged by a failed delete: %v", err)
	}
	checkIndexMatchesFiles(t, d)
	if err := d.Delete(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	checkIndexMatchesFiles(t, d)
}

func TestReadFaultIsNotCleanEOF(t *testing.T) {
	ffs := &faultFS{}
	d := openDisk(t, DiskConfig{FS: ffs})
	s := stripes(t, 33, 6)
	put(t, d, "x", s)
	shard := d.shardPath("x")
	ffs.set(func(op, p string, at int64) error {
		if op == "read" && p == shard && at > 3*tRecord {
			return syscall.EIO
		}
		return nil
	})
	rc, err := d.Get(context.Background(), "x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	var ce *CorruptError
	if !errors.Is(err, syscall.EIO) || errors.As(err, &ce) {
		t.Fatalf("read fault surfaced as %v; want the EIO, not corruption and not EOF", err)
	}
	if len(got)%tRecord != 0 || !bytes.Equal(got, s[:len(got)]) {
		t.Fatalf("read %d bytes before the fault; want whole verified records", len(got))
	}
}

func TestFaultFSSeesShardPaths(t *testing.T) {
	// Guard for the tests above: the paths they match really occur.
	var ops []string
	var mu sync.Mutex
	ffs := &faultFS{}
	d := openDisk(t, DiskConfig{FS: ffs})
	ffs.set(func(op, p string, at int64) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case inTmp(p):
			ops = append(ops, op+":tmp")
		case isShardDir(d, p):
			ops = append(ops, op+":dir")
		}
		return nil
	})
	put(t, d, "x", stripes(t, 34, 1))
	got := strings.Join(ops, " ")
	for _, want := range []string{"open:tmp", "write:tmp", "sync:tmp", "open:dir", "sync:dir"} {
		if !strings.Contains(got, want) {
			t.Fatalf("ops %q lack %q", got, want)
		}
	}
}
