package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/shale-store/shale/internal/privfs"
)

// faults is an errorfs.Injector whose rule the test changes while the store
// runs. The store is opened on errorfs.Wrap(privfs.New(), faults), so one
// rule sees every file operation: shard, temporary and FORMAT files, their
// directories, and the pebble index. rule gets the operation, the path (a
// directory's path for its sync; the old name for a rename) and how many
// times before that operation was asked for on that path.
type faults struct {
	mu    sync.Mutex
	rule  func(op errorfs.Op, path string, n int) error
	count map[string]int
}

func (f *faults) MaybeError(op errorfs.Op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rule == nil {
		return nil
	}
	k := fmt.Sprint(op, path)
	n := f.count[k]
	f.count[k] = n + 1
	if err := f.rule(op, path, n); err != nil {
		return &os.PathError{Op: "injected", Path: path, Err: err}
	}
	return nil
}

func (f *faults) set(rule func(op errorfs.Op, path string, n int) error) {
	f.mu.Lock()
	f.rule, f.count = rule, map[string]int{}
	f.mu.Unlock()
}

// openFaulty opens a store whose every file operation passes through f.
// Writes come in 512-byte pieces, so a fault can strike mid-file.
func openFaulty(t testing.TB) (*Disk, *faults) {
	f := &faults{}
	return openDisk(t, DiskConfig{FS: errorfs.Wrap(privfs.New(), f), BufferSize: 512, InlineMax: -1}), f
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
		inject      func(d *Disk) func(op errorfs.Op, path string, n int) error
		want        error // errors.Is target
		publishFail bool  // the fault comes after the rename: the id ends up absent
	}{
		{"EIO on write", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpFileWrite && inTmp(p) && n == 3 { // after 1536 bytes
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, false},
		{"ENOSPC on write", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpFileWrite && inTmp(p) && n == 2 { // after 1024 bytes
					return syscall.ENOSPC
				}
				return nil
			}
		}, ErrFull, false},
		{"ENOSPC creating the temp file", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpCreate && inTmp(p) {
					return syscall.ENOSPC
				}
				return nil
			}
		}, ErrFull, false},
		{"fsync of the file fails", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpFileSync && inTmp(p) {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, false},
		{"ENOSPC on fsync", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpFileSync && inTmp(p) {
					return syscall.ENOSPC
				}
				return nil
			}
		}, ErrFull, false},
		{"rename fails", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpRename && inTmp(p) {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, false},
		{"directory fsync fails after rename", func(d *Disk) func(errorfs.Op, string, int) error {
			return func(op errorfs.Op, p string, n int) error {
				if op == errorfs.OpFileSync && isShardDir(d, p) {
					return syscall.EIO
				}
				return nil
			}
		}, syscall.EIO, true},
	}
	for _, tc := range cases {
		for _, overwrite := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/overwrite=%v", tc.name, overwrite), func(t *testing.T) {
				d, ffs := openFaulty(t)
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
	d, ffs := openFaulty(t)
	s := stripes(t, 32, 2)
	put(t, d, "x", s)
	ffs.set(func(op errorfs.Op, p string, n int) error {
		if op == errorfs.OpRemove && !strings.Contains(p, "index") {
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
	d, ffs := openFaulty(t)
	s := stripes(t, 33, 6)
	put(t, d, "x", s)
	shard := d.shardPath("x")
	ffs.set(func(op errorfs.Op, p string, n int) error {
		if op == errorfs.OpFileReadAt && p == shard && n == 3 {
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

// TestFaultsSeeTheDurabilityProtocol guards the tests above (the operations
// and paths they match really occur) and pins the order of Put's steps on
// the file system: the temporary file is written and fsynced before it is
// renamed into place, and only after the rename are the fan-out directory
// synced and the index entry written (pebble's WAL, through the same FS; its
// sync is a SyncData, which errorfs does not intercept).
func TestFaultsSeeTheDurabilityProtocol(t *testing.T) {
	var (
		mu  sync.Mutex
		ops []string
	)
	d, ffs := openFaulty(t)
	index := filepath.Join(d.dir, "index")
	ffs.set(func(op errorfs.Op, p string, n int) error {
		var step string
		switch {
		case inTmp(p) && op == errorfs.OpCreate:
			step = "create-tmp"
		case inTmp(p) && op == errorfs.OpFileWrite:
			step = "write-tmp"
		case inTmp(p) && op == errorfs.OpFileSync:
			step = "sync-tmp"
		case inTmp(p) && op == errorfs.OpRename:
			step = "rename"
		case isShardDir(d, p) && op == errorfs.OpFileSync:
			step = "sync-dir"
		case strings.HasPrefix(p, index) && op == errorfs.OpFileWrite:
			step = "write-index"
		default:
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if len(ops) == 0 || ops[len(ops)-1] != step {
			ops = append(ops, step)
		}
		return nil
	})
	put(t, d, "x", stripes(t, 34, 4))
	ffs.set(nil)
	got := strings.Join(ops, " ")
	pos := map[string]int{}
	for i, op := range ops {
		if _, seen := pos[op]; !seen {
			pos[op] = i
		}
	}
	for _, step := range []string{"create-tmp", "write-tmp", "sync-tmp", "rename", "sync-dir", "write-index"} {
		if _, ok := pos[step]; !ok {
			t.Fatalf("steps %q lack %q", got, step)
		}
	}
	before := [][2]string{{"create-tmp", "write-tmp"}, {"write-tmp", "sync-tmp"}, {"sync-tmp", "rename"},
		{"rename", "sync-dir"}, {"rename", "write-index"}}
	for _, b := range before {
		if pos[b[0]] > pos[b[1]] {
			t.Errorf("%s came after %s: %s", b[0], b[1], got)
		}
	}
	if n := strings.Count(got, "write-tmp"); n != 1 {
		t.Errorf("steps %q: the temporary file was written in %d runs, want one", got, n)
	}
}

// TestIndexFaultFailsOpen: the index lives on the same FS, so the same
// injector fails it; OpenDisk reports the fault instead of running without
// an index.
func TestIndexFaultFailsOpen(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, DiskConfig{Dir: dir})
	put(t, d, "x", stripes(t, 35, 2))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	inj := &faults{}
	inj.set(func(op errorfs.Op, p string, n int) error {
		if strings.HasPrefix(p, filepath.Join(dir, "index")) && op.OpKind() == errorfs.OpKindWrite {
			return syscall.EIO
		}
		return nil
	})
	if d, err := OpenDisk(DiskConfig{Dir: dir, FS: errorfs.Wrap(privfs.New(), inj)}); !errors.Is(err, syscall.EIO) {
		if err == nil {
			d.Close()
		}
		t.Fatalf("OpenDisk with a failing index = %v, want EIO", err)
	}
	d = openDisk(t, DiskConfig{Dir: dir})
	if got, err := get(d, "x", 0, -1); err != nil || !bytes.Equal(got, stripes(t, 35, 2)) {
		t.Fatalf("after the fault cleared: Get = %v", err)
	}
	checkIndexMatchesFiles(t, d)
}

const indexFaultEnv = "SHALE_STORAGE_INDEX_FAULT_DIR"

// TestIndexFaultChild is the child of TestIndexWriteFaultStopsTheStore: it
// stores a and b, then makes every write to the index's WAL fail and stores
// c, which must not return.
func TestIndexFaultChild(t *testing.T) {
	dir := os.Getenv(indexFaultEnv)
	if dir == "" {
		t.Skip("child of TestIndexWriteFaultStopsTheStore")
	}
	inj := &faults{}
	d, err := OpenDisk(DiskConfig{Dir: dir, FS: errorfs.Wrap(privfs.New(), inj)})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b"} {
		put(t, d, id, stripes(t, int64(40+i), 3))
		fmt.Println("ack", id)
	}
	inj.set(func(op errorfs.Op, p string, n int) error {
		if op == errorfs.OpFileWrite && filepath.Ext(p) == ".log" && strings.HasPrefix(p, filepath.Join(dir, "index")) {
			return syscall.EIO
		}
		return nil
	})
	_, err = d.Put(context.Background(), "c", bytes.NewReader(stripes(t, 42, 3)))
	fmt.Println("put c returned", err) // not reached: pebble stops the process
}

// TestIndexWriteFaultStopsTheStore: a write fault in the index (pebble's WAL,
// failed by the same errorfs injector as the shard files) is fatal, as
// pebble requires; the Put in flight is never acknowledged, and after a
// restart every acknowledged shard is intact, the one in flight is whole or
// absent, and the index matches the files.
func TestIndexWriteFaultStopsTheStore(t *testing.T) {
	if os.Getenv(indexFaultEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIndexFaultChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), indexFaultEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child survived an index write fault:\n%s", out)
	}
	if !strings.Contains(string(out), "ack b") || strings.Contains(string(out), "put c returned") ||
		!strings.Contains(string(out), "fatal commit error") {
		t.Fatalf("child output:\n%s", out)
	}
	d := openDisk(t, DiskConfig{Dir: dir})
	if !d.Recovery().Unclean {
		t.Fatal("the store opened as cleanly closed")
	}
	for i, id := range []string{"a", "b"} {
		if got, err := get(d, id, 0, -1); err != nil || !bytes.Equal(got, stripes(t, int64(40+i), 3)) {
			t.Fatalf("acknowledged %s after the fault: %v", id, err)
		}
	}
	if got, err := get(d, "c", 0, -1); !errors.Is(err, ErrNotFound) && (err != nil || !bytes.Equal(got, stripes(t, 42, 3))) {
		t.Fatalf("the unacknowledged c is neither whole nor absent: %v, %d bytes", err, len(got))
	}
	checkIndexMatchesFiles(t, d)
	t.Logf("recovery: %+v", d.Recovery())
}
