package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/md5lanes"
	"github.com/shale-store/shale/storage"
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

// sinkNodes are nodes whose stores verify every shard stream they are sent
// (as nodes do) and keep nothing, so a PUT benchmark measures the
// coordinator, not a store's memory.
type sinkNodes struct{}

func (sinkNodes) Store(cluster.Node) (ShardStore, error) { return sinkStore{}, nil }

type sinkStore struct{}

func (sinkStore) Put(_ context.Context, id string, r io.Reader) (storage.Info, error) {
	v := erasure.NewVerifier(-1)
	n, err := io.Copy(v, r)
	if err == nil {
		err = v.Close()
	}
	return storage.Info{ID: id, Size: n, Checksum: v.Summary()}, err
}

func (sinkStore) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, errors.New("sink store: no reads")
}

func (sinkStore) Delete(context.Context, string) error { return nil }

// BenchmarkPutObjectConcurrent measures the CPU (user+sys of the process,
// getrusage) per MiB of `puts` concurrent PUTs of 1 or 16 MiB, each PUT
// putting 16 MiB in all, onto sinkNodes, with their ETags hashed by
// crypto/md5 and by an md5lanes Pool with its defaults. The PUTs of a
// round start together, so the first MinBodies-1 of them get crypto/md5
// (in a gateway under steady load most would find enough company):
//
//	go test -run '^$' -bench PutObjectConcurrent -benchtime 10x ./object
func BenchmarkPutObjectConcurrent(b *testing.B) {
	for _, bench := range []struct{ size, puts int }{{16 << 20, 1}, {16 << 20, 4}, {16 << 20, 8}, {1 << 20, 8}} {
		for _, kind := range []string{"crypto", "lanes"} {
			b.Run(fmt.Sprintf("size=%dMiB/puts=%d/%s", bench.size>>20, bench.puts, kind), func(b *testing.B) {
				size, puts := bench.size, bench.puts
				cfg := testConfig()
				cfg.BlockSize = erasure.DefaultBlockSize
				if kind == "lanes" {
					p, err := md5lanes.New(md5lanes.Config{})
					if err != nil {
						b.Fatal(err)
					}
					defer p.Close()
					cfg.MD5 = p
				}
				h := newHarness(b, 6, cfg)
				cfg.Now = h.clock.Now
				cfg.Rand = rand.NewChaCha8([32]byte{4})
				c, err := New(cfg, h.md, sinkNodes{})
				if err != nil {
					b.Fatal(err)
				}
				const total = 16 << 20 // per concurrent PUT
				data := pattern(3, size)
				b.SetBytes(int64(total * puts))
				round := func() {
					var wg sync.WaitGroup
					for i := range puts {
						wg.Go(func() {
							for range total / size {
								if _, err := c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: fmt.Sprint(i), Body: bytes.NewReader(data), Size: int64(size)}); err != nil {
									b.Error(err)
								}
							}
						})
					}
					wg.Wait()
				}
				round() // warm up: buffers, pools, heap
				var r0, r1 syscall.Rusage
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
				iters := 0
				for b.Loop() {
					iters++
					round()
				}
				_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
				cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
				b.ReportMetric(float64(cpu.Microseconds())/1000/(float64(iters*total*puts)/(1<<20)), "cpu-ms/MiB")
			})
		}
	}
}
