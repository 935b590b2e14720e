package md5lanes

import (
	"crypto/md5"
	"fmt"
	"hash"
	"hash/crc32"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHash measures the CPU (user+sys of the process, getrusage) per
// MiB of hashing `bodies` 16 MiB bodies at once, each written a stripe
// (1 MiB) at a time, with crypto/md5 and through a Pool that gives every
// body a lane (MinBodies 1):
//
//	go test -run '^$' -bench Hash -benchtime 20x ./internal/md5lanes
//
// crc=40 adds, after every stripe a body hashes, CPU work of its own (a
// CRC-32 over the stripe 40 times, ≈1.5 ms: about what a gateway spends
// on a stripe besides MD5), so the bodies' hashing overlaps by chance as
// in a gateway rather than all the time; its cpu-ms/MiB includes that
// work (subtract the crypto column's excess over crc=0 to compare).
func BenchmarkHash(b *testing.B) {
	for _, work := range []int{0, 40} {
		for _, bodies := range []int{1, 2, 4, 8, 16} {
			for _, kind := range []string{"crypto", "lanes"} {
				b.Run(fmt.Sprintf("crc=%d/bodies=%d/%s", work, bodies, kind), func(b *testing.B) {
					var p *Pool
					if kind == "lanes" {
						var err error
						if p, err = New(Config{MinBodies: 1}); err != nil {
							b.Fatal(err)
						}
						defer p.Close()
					}
					benchBodies(b, p, bodies, work)
				})
			}
		}
	}
}

func benchBodies(b *testing.B, p *Pool, bodies, work int) {
	const total, stripe = 16 << 20, 1 << 20
	buf := make([]byte, stripe)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(total * bodies))
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	iters := 0
	for b.Loop() {
		iters++
		var wg sync.WaitGroup
		for range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var h hash.Hash = md5.New()
				done := func() {}
				if p != nil {
					h, done = p.New(total)
				}
				defer done()
				var crc uint32
				for n := 0; n < total; n += stripe {
					h.Write(buf)
					for range work {
						crc = crc32.Update(crc, crc32.IEEETable, buf)
					}
				}
				h.Sum(nil)
			}()
		}
		wg.Wait()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/1000/(float64(iters*total*bodies)/(1<<20)), "cpu-ms/MiB")
}
