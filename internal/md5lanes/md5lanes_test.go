package md5lanes

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"hash"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSumsMatchCryptoMD5: whatever kind of hash a body gets, lone or in a
// lane beside others, its sum is crypto/md5's, for sizes around the
// block and buffer boundaries and for writes of every length.
func TestSumsMatchCryptoMD5(t *testing.T) {
	p := New(2)
	defer p.Close()
	sizes := []int{0, 1, 55, 56, 63, 64, 65, 4095, 4096, 4097, 1 << 16, 1<<20 + 13, 3<<20 + 7}
	var wg sync.WaitGroup
	errs := make(chan error, len(sizes)*3)
	for round := range 3 {
		for i, size := range sizes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(round), uint64(i)))
				body := make([]byte, size)
				for j := range body {
					body[j] = byte(r.Uint32())
				}
				h, done := p.New()
				defer done()
				for rest := body; len(rest) > 0; {
					n := min(len(rest), 1+r.IntN(70_000))
					h.Write(rest[:n])
					rest = rest[n:]
				}
				want := md5.Sum(body)
				if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
					errs <- fmt.Errorf("size %d (%T): %x, want %x", size, h, got, want)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := p.Active(); n != 0 {
		t.Fatalf("%d hashes still counted active after every done", n)
	}
}

// TestLanesOnlyWhenBusy: a lone body gets crypto/md5, and from Min bodies
// at once the next gets a lane; a closed pool hands out crypto/md5 only.
func TestLanesOnlyWhenBusy(t *testing.T) {
	std := fmt.Sprintf("%T", md5.New())
	p := New(3)
	h1, d1 := p.New()
	h2, d2 := p.New()
	h3, d3 := p.New()
	if fmt.Sprintf("%T", h1) != std || fmt.Sprintf("%T", h2) != std {
		t.Fatalf("below Min: %T, %T; want crypto/md5", h1, h2)
	}
	if fmt.Sprintf("%T", h3) == std {
		t.Fatal("the Min-th concurrent body got crypto/md5, not a lane")
	}
	d1()
	d1() // a second done is harmless
	d2()
	// Closed with a lane out: the lane still hashes, and giving it back
	// stops the server.
	p.Close()
	h3.Write([]byte("still hashing"))
	if want := md5.Sum([]byte("still hashing")); !bytes.Equal(h3.Sum(nil), want[:]) {
		t.Fatal("a lane out at Close gave a wrong sum")
	}
	d3()
	if p.Active() != 0 {
		t.Fatalf("active %d after every done", p.Active())
	}
	var hs []hash.Hash
	for range 5 {
		h, done := p.New()
		defer done()
		hs = append(hs, h)
	}
	for _, h := range hs {
		if fmt.Sprintf("%T", h) != std {
			t.Fatalf("a closed pool handed out %T", h)
		}
	}
	var nilPool *Pool
	if h, done := nilPool.New(); fmt.Sprintf("%T", h) != std {
		t.Fatalf("nil pool: %T", h)
	} else {
		done()
	}
}

// BenchmarkHash measures CPU per MiB of hashing `streams` 16 MiB bodies at
// once, written 256 KiB at a time, by crypto/md5 and through a Pool whose
// Min lets every stream have a lane: `go test -run '^$' -bench Hash
// ./internal/md5lanes`.
func BenchmarkHash(b *testing.B) {
	for _, streams := range []int{1, 4, 8, 16} {
		for _, kind := range []string{"crypto", "lanes"} {
			b.Run(fmt.Sprintf("%s/streams=%d", kind, streams), func(b *testing.B) {
				var p *Pool
				if kind == "lanes" {
					p = New(1)
					defer p.Close()
				}
				benchStreams(b, p, streams)
			})
		}
	}
}

func benchStreams(b *testing.B, p *Pool, streams int) {
	const total, chunk = 16 << 20, 256 << 10
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(total * streams))
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	iters := 0
	for b.Loop() {
		iters++
		var wg sync.WaitGroup
		for range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, done := p.New()
				defer done()
				for n := 0; n < total; n += chunk {
					h.Write(buf)
				}
				h.Sum(nil)
			}()
		}
		wg.Wait()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/1000/(float64(iters*total*streams)/(1<<20)), "cpu-ms/MiB")
}
