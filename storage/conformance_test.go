package storage_test

import (
	"testing"

	"github.com/shale-store/shale/storage"
	"github.com/shale-store/shale/storage/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		return storage.NewMem(storage.MemConfig{})
	})
}

func TestDiskConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		d, err := storage.OpenDisk(storage.DiskConfig{Dir: t.TempDir()})
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
