package remote

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/storage"
	"github.com/shale-store/shale/storage/storetest"
)

// TestConformanceMem runs the storage.Store suite against a Client talking
// over loopback HTTP to a handler that wraps storage.Mem.
func TestConformanceMem(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		return NewClient(serve(t, storage.NewMem(storage.MemConfig{}), HandlerConfig{}).URL, testNode, secret, nil)
	})
}

// TestRealCorruptionMidStream: a byte rotted in the third record of a shard
// held by storage.Mem reaches the client as *storage.CorruptError after the
// first two records, with the failing block named.
func TestRealCorruptionMidStream(t *testing.T) {
	mem := storage.NewMem(storage.MemConfig{})
	c := NewClient(serve(t, mem, HandlerConfig{BufferSize: 512}).URL, testNode, secret, nil)
	sh := storetest.Stream(t, 1, 5)
	if _, err := c.Put(t.Context(), "rot", bytes.NewReader(sh)); err != nil {
		t.Fatal(err)
	}
	if err := mem.Corrupt("rot", 2*storetest.RecordSize+100); err != nil {
		t.Fatal(err)
	}
	rc, err := c.Get(t.Context(), "rot", 0, -1)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	var ce *storage.CorruptError
	if !errors.As(err, &ce) || ce.ID != "rot" {
		t.Fatalf("err = %v (%T), want *storage.CorruptError", err, err)
	}
	var cs *erasure.ChecksumError
	if errors.As(err, &cs) && cs.Stripe != 2 {
		t.Fatalf("checksum error names stripe %d, want 2", cs.Stripe)
	}
	if len(got) > 2*storetest.RecordSize || !bytes.Equal(got, sh[:len(got)]) {
		t.Fatalf("client got %d bytes before the error, not a clean prefix of the first two records", len(got))
	}
	// The same shard read from its first record only is fine.
	rc, err = c.Get(t.Context(), "rot", 0, storetest.RecordSize)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err != nil || !bytes.Equal(b, sh[:storetest.RecordSize]) {
		t.Fatalf("clean range: %d bytes, %v", len(b), err)
	}
	rc.Close()
}

// TestConformanceDisk runs the suite against a Client in front of a real
// storage.Disk in a temporary directory.
// It is slow on a busy disk (every Put fsyncs; ~30 s here), so -short skips
// it; TestConformanceMem covers the protocol itself.
func TestConformanceDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: storage.Disk conformance over HTTP skipped")
	}
	storetest.Run(t, func(t *testing.T) storage.Store {
		d, err := storage.OpenDisk(storage.DiskConfig{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		return NewClient(serve(t, d, HandlerConfig{}).URL, testNode, secret, nil)
	})
}
