package erasure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"testing"

	sha256simd "github.com/minio/sha256-simd"
	"github.com/zeebo/xxh3"
)

// Benchmarks report GB/s of object bytes (b.SetBytes(object size)) so the
// paths compare directly. The object is 64 MiB: larger than the caches, like
// a real stream, but the stripe buffers the pipeline works in stay cached.

const benchSize = 64 << 20

var benchCodings = []struct{ k, m, bs int }{{4, 2, DefaultBlockSize}, {10, 4, DefaultBlockSize}, {10, 4, 1 << 20}}

func benchName(k, m, bs int) string { return fmt.Sprintf("%d+%d/%dKiB", k, m, bs>>10) }

func discardWriters(n int) []io.Writer {
	ws := make([]io.Writer, n)
	for i := range ws {
		ws[i] = io.Discard
	}
	return ws
}

// rawStripes lays out src as the codec's stripes without copying full ones:
// each stripe's data blocks are views into src, the last (partial) stripe is
// a zero-padded copy, and every stripe shares one set of parity buffers.
func rawStripes(c *Codec, src []byte) [][][]byte {
	k, m, bs := c.K(), c.M(), c.BlockSize()
	sd := k * bs
	parity := make([][]byte, m)
	for i := range parity {
		parity[i] = make([]byte, bs)
	}
	var out [][][]byte
	for off := 0; off < len(src); off += sd {
		blocks := make([][]byte, k+m)
		bl := bs
		data := src[off:min(off+sd, len(src))]
		if len(data) < sd {
			bl = c.lastBlockLen(int64(len(data)))
			padded := make([]byte, k*bl)
			copy(padded, data)
			data = padded
		}
		for i := 0; i < k; i++ {
			blocks[i] = data[i*bl : (i+1)*bl]
		}
		for i := 0; i < m; i++ {
			blocks[k+i] = parity[i][:bl]
		}
		out = append(out, blocks)
	}
	return out
}

// BenchmarkRaw is reedsolomon's Encode alone over the object's stripes: no
// copy, no checksums, no writers.
func BenchmarkRaw(b *testing.B) {
	src := pattern(1, benchSize)
	for _, cd := range benchCodings {
		b.Run(benchName(cd.k, cd.m, cd.bs), func(b *testing.B) {
			c, _ := New(cd.k, cd.m, cd.bs)
			stripes := rawStripes(c, src)
			b.SetBytes(benchSize)
			for b.Loop() {
				for _, st := range stripes {
					if err := c.EncodeBlocks(st); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkPipeline is Encode from a bytes.Reader to k+m discarding
// writers: read copy, encode, checksums, records, writer goroutines.
func BenchmarkPipeline(b *testing.B) {
	src := pattern(1, benchSize)
	for _, cd := range benchCodings {
		b.Run(benchName(cd.k, cd.m, cd.bs), func(b *testing.B) {
			c, _ := New(cd.k, cd.m, cd.bs)
			ws := discardWriters(cd.k + cd.m)
			b.SetBytes(benchSize)
			for b.Loop() {
				if _, err := c.Encode(context.Background(), bytes.NewReader(src), ws, cd.k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchDecode(b *testing.B, missing int) {
	src := pattern(1, benchSize)
	for _, cd := range benchCodings {
		b.Run(benchName(cd.k, cd.m, cd.bs), func(b *testing.B) {
			c, _ := New(cd.k, cd.m, cd.bs)
			streams, _ := encodeAll(b, c, src)
			for i := 0; i < missing && i < cd.m; i++ {
				streams[i] = nil
			}
			ms := &memShards{streams: streams}
			b.SetBytes(benchSize)
			for b.Loop() {
				ms.opens = ms.opens[:0]
				if _, err := c.Decode(context.Background(), io.Discard, benchSize, 0, benchSize, ms.open); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode reads the whole object through data shards only.
func BenchmarkDecode(b *testing.B) { benchDecode(b, 0) }

// BenchmarkDecodeDegraded reads the whole object with m data shards missing,
// so every stripe is reconstructed from parity.
func BenchmarkDecodeDegraded(b *testing.B) { benchDecode(b, 1<<30) }

// BenchmarkMemcpy copies the object into a stripe-sized buffer, the one copy
// an io.Reader-fed pipeline cannot avoid.
func BenchmarkMemcpy(b *testing.B) {
	src := pattern(1, benchSize)
	for _, cd := range benchCodings {
		b.Run(benchName(cd.k, cd.m, cd.bs), func(b *testing.B) {
			dst := make([]byte, cd.k*cd.bs)
			b.SetBytes(benchSize)
			for b.Loop() {
				for off := 0; off < len(src); off += len(dst) {
					copy(dst, src[off:])
				}
			}
		})
	}
}

// BenchmarkChecksumCandidates compares the block checksums considered for
// the record format, over cache-resident blocks (the pipeline hashes blocks
// it has just read or computed).
func BenchmarkChecksumCandidates(b *testing.B) {
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	for _, bs := range []int{64 << 10, 256 << 10, 1 << 20} {
		block := pattern(2, bs)
		for _, h := range []struct {
			name string
			f    func([]byte) uint64
		}{
			{"xxh3", xxh3.Hash},
			{"crc32c", func(p []byte) uint64 { return uint64(crc32.Checksum(p, castagnoli)) }},
			{"sha256-simd", func(p []byte) uint64 { s := sha256simd.Sum256(p); return uint64(s[0]) }},
			{"crypto-sha256", func(p []byte) uint64 { s := sha256.Sum256(p); return uint64(s[0]) }},
		} {
			b.Run(fmt.Sprintf("%s/%dKiB", h.name, bs>>10), func(b *testing.B) {
				b.SetBytes(int64(bs))
				var sink uint64
				for b.Loop() {
					sink += h.f(block)
				}
				_ = sink
			})
		}
	}
}
