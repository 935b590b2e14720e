package object

import (
	"bytes"
	"io"
	"testing"

	"github.com/shale-store/shale/erasure"
)

// benchHarness is a 6-node 4+2 cluster on Mem stores with the default block
// size: it measures the coordinator and codec, not disks or networks.
func benchHarness(b *testing.B) *harness {
	cfg := testConfig()
	cfg.BlockSize = erasure.DefaultBlockSize
	return newHarness(b, 6, cfg)
}

func BenchmarkPutObject8MiB(b *testing.B) {
	h := benchHarness(b)
	data := pattern(1, 8<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "b", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadObject8MiB(b *testing.B) {
	for _, degraded := range []bool{false, true} {
		name := "healthy"
		if degraded {
			name = "one-data-shard-down"
		}
		b.Run(name, func(b *testing.B) {
			h := benchHarness(b)
			data := pattern(2, 8<<20)
			m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "b", Body: bytes.NewReader(data), Size: int64(len(data))})
			if err != nil {
				b.Fatal(err)
			}
			if degraded {
				h.stores[shardNode(m, 0)].set(faults{getErr: true})
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for b.Loop() {
				if err := h.c.ReadObject(h.ctx, io.Discard, m, 0, m.Size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
