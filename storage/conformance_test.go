package storage_test

import (
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/shale-store/shale/internal/privfs"
	"github.com/shale-store/shale/storage"
	"github.com/shale-store/shale/storage/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		return storage.NewMem(storage.MemConfig{})
	})
}

// TestDiskConformance runs the suite with the default InlineMax (most of
// its shards are stored inline) and with every shard in a file.
func TestDiskConformance(t *testing.T) {
	t.Run("inline", func(t *testing.T) { runDiskConformance(t, nil, 0) })
	t.Run("files", func(t *testing.T) { runDiskConformance(t, nil, -1) })
}

// TestDiskConformanceThroughErrorFS: the fault wrapper the fault tests use
// changes nothing while it injects nothing.
func TestDiskConformanceThroughErrorFS(t *testing.T) {
	if testing.Short() {
		t.Skip("the same suite as TestDiskConformance")
	}
	none := errorfs.InjectorFunc(func(errorfs.Op, string) error { return nil })
	runDiskConformance(t, errorfs.Wrap(privfs.New(), none), 2<<10)
}

func runDiskConformance(t *testing.T, fs vfs.FS, inlineMax int) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		d, err := storage.OpenDisk(storage.DiskConfig{Dir: t.TempDir(), FS: fs, InlineMax: inlineMax})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return d
	})
}
