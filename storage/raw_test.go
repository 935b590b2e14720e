package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/vfs/errorfs"

	"github.com/shale-store/shale/erasure"
)

func getRaw(t *testing.T, d *Disk, id string, off, n int64) ([]byte, error) {
	t.Helper()
	r, err := d.GetRaw(context.Background(), id, off, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r.Reader())
	if err == nil && int64(len(b)) != r.Len() {
		t.Fatalf("GetRaw(%s, %d, %d): Len %d, read %d bytes", id, off, n, r.Len(), len(b))
	}
	return b, err
}

// TestGetRaw: the raw path serves a file shard's and an inline shard's
// exact stored bytes, whole and ranged, refuses ranges off record
// boundaries like Get, and hands out an *os.File (what sendfile needs) for a
// file shard on the default file system.
func TestGetRaw(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: testInlineMax})
	big, small := stripes(t, 40, 6), shardStream(t, 41, 100)
	put(t, d, "big", big)
	put(t, d, "small", small)
	if !hasFile(t, d, "big") || hasFile(t, d, "small") {
		t.Fatal("test shards are not one file and one inline shard")
	}
	for _, c := range []struct {
		id     string
		off, n int64
		want   []byte
	}{
		{"big", 0, -1, big},
		{"big", 0, int64(len(big)), big},
		{"big", tRecord, 2 * tRecord, big[tRecord : 3*tRecord]},
		{"big", 5 * tRecord, -1, big[5*tRecord:]},
		{"big", int64(len(big)), -1, nil},
		{"small", 0, -1, small},
	} {
		got, err := getRaw(t, d, c.id, c.off, c.n)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Fatalf("GetRaw(%s, %d, %d) = %d bytes, %v; want %d bytes", c.id, c.off, c.n, len(got), err, len(c.want))
		}
		// Get (verified) agrees.
		if g, err := get(d, c.id, c.off, c.n); err != nil || !bytes.Equal(g, got) {
			t.Fatalf("Get(%s, %d, %d) disagrees with GetRaw: %d bytes, %v", c.id, c.off, c.n, len(g), err)
		}
	}
	r, err := d.GetRaw(context.Background(), "big", tRecord, -1)
	if err != nil {
		t.Fatal(err)
	}
	if lr, ok := r.Reader().(*io.LimitedReader); !ok {
		t.Errorf("raw reader of a file shard is %T, want *io.LimitedReader over *os.File", r.Reader())
	} else if _, ok := lr.R.(*os.File); !ok {
		t.Errorf("raw reader of a file shard limits a %T, want *os.File", lr.R)
	}
	r.Close()
	for _, c := range []struct{ off, n int64 }{{1, -1}, {0, tRecord + 1}, {0, int64(len(big)) + tRecord}, {-tRecord, tRecord}} {
		if _, err := d.GetRaw(context.Background(), "big", c.off, c.n); !errors.Is(err, ErrRange) {
			t.Errorf("GetRaw(big, %d, %d): %v, want ErrRange", c.off, c.n, err)
		}
	}
	if _, err := d.GetRaw(context.Background(), "nope", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRaw of an absent shard: %v, want ErrNotFound", err)
	}
	if _, err := d.GetRaw(context.Background(), "../x", 0, -1); !errors.Is(err, ErrInvalidID) {
		t.Errorf("GetRaw of a bad id: %v, want ErrInvalidID", err)
	}
	if err := os.Remove(d.shardPath("big")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetRaw(context.Background(), "big", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRaw of an indexed shard without its file: %v, want ErrNotFound", err)
	}
}

// TestGetRawDoesNotVerify: a rotten byte is served as stored (the reader
// at the other end verifies), while Get still refuses it.
func TestGetRawDoesNotVerify(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: -1})
	s := stripes(t, 42, 4)
	put(t, d, "x", s)
	rot := bytes.Clone(s)
	rot[2*tRecord+100] ^= 0x40
	if err := os.WriteFile(d.shardPath("x"), rot, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := getRaw(t, d, "x", 0, -1); err != nil || !bytes.Equal(got, rot) {
		t.Fatalf("GetRaw of a rotten shard: %d bytes, %v; want the stored bytes", len(got), err)
	}
	var ce *CorruptError
	if _, err := get(d, "x", 0, -1); !errors.As(err, &ce) {
		t.Fatalf("Get of a rotten shard: %v, want *CorruptError", err)
	}
}

// TestGetRawTruncatedFile: a shard file shorter (or longer) than the index
// says is corruption, reported before any byte is handed out; a file cut
// short after GetRaw opened it yields fewer than Len bytes.
func TestGetRawTruncatedFile(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: -1})
	s := stripes(t, 43, 4)
	put(t, d, "x", s)
	for _, size := range []int64{0, 3*tRecord + 10, int64(len(s)) + 1} {
		if err := os.Truncate(d.shardPath("x"), size); err != nil {
			t.Fatal(err)
		}
		_, err := d.GetRaw(context.Background(), "x", 0, tRecord)
		var ce *CorruptError
		var cs *erasure.ChecksumError
		if !errors.As(err, &ce) || ce.ID != "x" || !errors.As(err, &cs) || !errors.Is(err, erasure.ErrCorruptRecord) {
			t.Fatalf("file of %d bytes: %v, want *CorruptError", size, err)
		}
	}
	if err := os.WriteFile(d.shardPath("x"), s, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := d.GetRaw(context.Background(), "x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(d.shardPath("x"), 2*tRecord); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r.Reader())
	if err != nil || int64(len(got)) >= r.Len() {
		t.Fatalf("file cut short after GetRaw: read %d of %d bytes, %v; want fewer", len(got), r.Len(), err)
	}
}

// TestGetRawThroughFS: with a non-default FS the raw path reads through
// it, so a read fault part-way surfaces from the raw reader as an error.
func TestGetRawThroughFS(t *testing.T) {
	d, ffs := openFaulty(t)
	s := stripes(t, 44, 6)
	put(t, d, "x", s)
	shard := d.shardPath("x")
	ffs.set(func(op errorfs.Op, p string, n int) error {
		if op == errorfs.OpFileReadAt && p == shard && n == 1 {
			return syscall.EIO
		}
		return nil
	})
	r, err := d.GetRaw(context.Background(), "x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, tRecord)
	var got []byte
	for {
		n, err := r.Reader().Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("raw read fault after %d bytes surfaced as %v, want EIO", len(got), err)
			}
			break
		}
	}
	if int64(len(got)) >= r.Len() || !bytes.Equal(got, s[:len(got)]) {
		t.Fatalf("read %d of %d bytes before the fault, want a clean prefix", len(got), r.Len())
	}
}
