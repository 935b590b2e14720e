package privfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/shale-store/shale/internal/privfs"
)

// noUmask clears the process umask for the test, so that only the modes the
// code asks for decide what is created.
func noUmask(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

// checkPrivateTree fails for every file or directory under root (root
// included) that grants group or others any permission.
func checkPrivateTree(t *testing.T, root string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("only %d entries under %s: nothing was checked", n, root)
	}
}

func TestNewCreatesPrivate(t *testing.T) {
	noUmask(t)
	fsys := privfs.New()
	root := filepath.Join(t.TempDir(), "root")
	if err := fsys.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mk := range map[string]func(string) (io.Closer, error){
		"create": func(p string) (io.Closer, error) { return fsys.Create(p) },
		"rw":     func(p string) (io.Closer, error) { return fsys.OpenReadWrite(p) },
		"lock":   func(p string) (io.Closer, error) { return fsys.Lock(p) },
	} {
		c, err := mk(filepath.Join(root, "a", "b", name))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Create over an existing wide file replaces it by a private one.
	wide := filepath.Join(root, "wide")
	if err := os.WriteFile(wide, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(wide)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f, err = fsys.ReuseForWrite(wide, filepath.Join(root, "reused")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	checkPrivateTree(t, root)
}

// TestPebbleOnNewIsPrivate: everything pebble makes (directory, WAL,
// MANIFEST, OPTIONS, LOCK, sstables) is private.
func TestPebbleOnNewIsPrivate(t *testing.T) {
	noUmask(t)
	dir := filepath.Join(t.TempDir(), "db")
	db, err := pebble.Open(dir, &pebble.Options{FS: privfs.New()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := db.Set([]byte{byte(i)}, []byte("v"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkPrivateTree(t, dir)
}

func TestReadFileRefusesExposedFile(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660} {
		p := filepath.Join(dir, "secret")
		if err := os.WriteFile(p, []byte("s"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := privfs.ReadFile(p)
		if !errors.Is(err, privfs.ErrNotPrivate) {
			t.Fatalf("mode %04o: ReadFile = %v, want ErrNotPrivate", mode, err)
		}
		for _, want := range []string{p, "chmod 600", fmt.Sprintf("mode %04o", mode)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %04o: error %q does not say %q", mode, err, want)
			}
		}
		os.Remove(p)
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := filepath.Join(dir, "ok")
		if err := os.WriteFile(p, []byte("s"), mode); err != nil {
			t.Fatal(err)
		}
		if b, err := privfs.ReadFile(p); err != nil || string(b) != "s" {
			t.Fatalf("mode %04o: ReadFile = %q, %v", mode, b, err)
		}
		os.Remove(p)
	}
	if _, err := privfs.ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestWriteFileReplacesWithPrivate(t *testing.T) {
	noUmask(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "credentials.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := privfs.WriteFile(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	b, err := privfs.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("ReadFile after WriteFile = %q, %v", b, err)
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Fatalf("%d files left in the directory, want 1", len(names))
	}
}
