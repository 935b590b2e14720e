package storage

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/shale-store/shale/erasure"
)

// benchStream returns shard 0 of a 4+2 code at the default block size for an
// object of 4*size bytes: a realistic shard stream of about size bytes.
func benchStream(b *testing.B, size int) []byte {
	c, err := erasure.New(4, 2, erasure.DefaultBlockSize)
	if err != nil {
		b.Fatal(err)
	}
	obj := make([]byte, 4*size)
	rand.New(rand.NewSource(1)).Read(obj)
	first := new(bytes.Buffer)
	ws := []io.Writer{first, io.Discard, io.Discard, io.Discard, io.Discard, io.Discard}
	if _, err := c.Encode(context.Background(), bytes.NewReader(obj), ws, 6); err != nil {
		b.Fatal(err)
	}
	return first.Bytes()
}

var benchSizes = []struct {
	name string
	size int
}{{"1MiB", 1 << 20}, {"16MiB", 16 << 20}}

// BenchmarkPut compares Disk.Put (verify, write, fsync, rename, dir fsync,
// index commit) with writing and fsyncing the same bytes to a plain file in
// the same directory tree.
func BenchmarkPut(b *testing.B) {
	for _, sz := range benchSizes {
		stream := benchStream(b, sz.size)
		b.Run(sz.name+"/disk", func(b *testing.B) {
			d := openDisk(b, DiskConfig{Dir: b.TempDir()})
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				if _, err := d.Put(context.Background(), "bench", bytes.NewReader(stream)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sz.name+"/raw", func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "raw")
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(f, bytes.NewReader(stream)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

// BenchmarkGet compares a verified Disk.Get of a whole shard with reading the
// same bytes from a plain file (both from the page cache).
func BenchmarkGet(b *testing.B) {
	for _, sz := range benchSizes {
		stream := benchStream(b, sz.size)
		b.Run(sz.name+"/disk", func(b *testing.B) {
			d := openDisk(b, DiskConfig{Dir: b.TempDir()})
			put(b, d, "bench", stream)
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				rc, err := d.Get(context.Background(), "bench", 0, -1)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(len(stream)) {
					b.Fatal(n, err)
				}
				rc.Close()
			}
		})
		b.Run(sz.name+"/raw", func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "raw")
			if err := os.WriteFile(p, stream, 0o644); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, f); err != nil || n != int64(len(stream)) {
					b.Fatal(n, err)
				}
				f.Close()
			}
		})
	}
}
