package md5lanes

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"hash"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// isLane reports whether h is a SIMD lane rather than crypto/md5.
func isLane(h hash.Hash) bool {
	_, ok := h.(*laneHash)
	return ok
}

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !p.simd {
		t.Skip("no AVX2: the pool hands out crypto/md5 only")
	}
	return p
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeSplit writes body to h in pieces of random lengths (sometimes
// 1 byte, sometimes several 32 KiB pieces).
func writeSplit(r *rand.Rand, h hash.Hash, body []byte) {
	for rest := body; len(rest) > 0; {
		var n int
		switch r.IntN(4) {
		case 0:
			n = 1 + r.IntN(64)
		case 1:
			n = piece * (1 + r.IntN(4))
		default:
			n = 1 + r.IntN(3*piece)
		}
		n = min(n, len(rest))
		h.Write(rest[:n])
		rest = rest[n:]
	}
}

// TestSumsMatchCryptoMD5: bodies hashed at once, in lanes and with
// crypto/md5 side by side, of sizes around MD5's block and a lane's piece
// and written in pieces of random lengths, get crypto/md5's sums; so do
// a Sum in the middle of a body (which does not end it) and a Reset one.
func TestSumsMatchCryptoMD5(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	p := newPool(t, Config{MinBodies: 1, MinSize: 1, Lanes: 6})
	defer p.Close()
	sizes := []int{1, 55, 56, 63, 64, 65, piece - 1, piece, piece + 1, 3*piece + 17, 1 << 20, 1<<20 + 13, 3<<20 + 7}
	var wg sync.WaitGroup
	errs := make(chan error, 3*3*len(sizes)) // up to 3 per body
	lanes := make(chan bool, 3*len(sizes))
	for round := range 3 {
		for i, size := range sizes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(round*100+i)))
				body := randBytes(r, size)
				h, done := p.New(int64(size))
				defer done()
				lanes <- isLane(h)
				// A first body, hashed in part, summed and reset: the
				// lane starts over.
				writeSplit(r, h, body[:size/2])
				if want := md5.Sum(body[:size/2]); !bytes.Equal(h.Sum(nil), want[:]) {
					errs <- fmt.Errorf("size %d (lane %v): wrong sum of the first half", size, isLane(h))
				}
				h.Reset()
				cut := r.IntN(size + 1)
				writeSplit(r, h, body[:cut])
				mid := h.Sum([]byte("prefix"))
				writeSplit(r, h, body[cut:])
				wantMid := md5.Sum(body[:cut])
				want := md5.Sum(body)
				if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
					errs <- fmt.Errorf("size %d cut %d (lane %v): %x, want %x", size, cut, isLane(h), got, want)
				}
				if !bytes.Equal(mid, append([]byte("prefix"), wantMid[:]...)) {
					errs <- fmt.Errorf("size %d cut %d (lane %v): sum in the middle %x, want prefix+%x", size, cut, isLane(h), mid, wantMid)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	close(lanes)
	for err := range errs {
		t.Error(err)
	}
	var inLanes int
	for l := range lanes {
		if l {
			inLanes++
		}
	}
	if inLanes == 0 {
		t.Fatal("no body got a lane: the test compared crypto/md5 with itself")
	}
	if st := p.Stats(); st.Active != 0 || st.LanesOut != 0 || st.Lanes > 6 {
		t.Fatalf("after every done: %+v, want nothing active or out, at most 6 lanes", st)
	}
}

// TestEmptyBody: a lane that was written nothing sums to MD5("").
func TestEmptyBody(t *testing.T) {
	p := newPool(t, Config{MinBodies: 1})
	defer p.Close()
	h, done := p.New(-1)
	defer done()
	if !isLane(h) {
		t.Fatal("a body of unknown size did not get a lane")
	}
	want := md5.Sum(nil)
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("empty body: %x, want %x", got, want)
	}
}

// TestLaneChoice: a body gets a lane only from MinBodies large bodies at
// once, never when small, and only while a lane is free; lanes are reused.
func TestLaneChoice(t *testing.T) {
	p := newPool(t, Config{MinBodies: 3, MinSize: 1000, Lanes: 2})
	defer p.Close()
	h1, d1 := p.New(1000)
	h2, d2 := p.New(-1)
	small, ds := p.New(999)
	if isLane(h1) || isLane(h2) || isLane(small) {
		t.Fatalf("below MinBodies or small: lanes %v %v %v", isLane(h1), isLane(h2), isLane(small))
	}
	h3, d3 := p.New(1 << 30)
	h4, d4 := p.New(1 << 30)
	h5, d5 := p.New(1 << 30)
	if !isLane(h3) || !isLane(h4) {
		t.Fatal("the 3rd and 4th large bodies at once got no lane")
	}
	if isLane(h5) {
		t.Fatal("a 3rd lane was handed out with Lanes 2")
	}
	if st := p.Stats(); st != (Stats{Active: 5, Lanes: 2, LanesOut: 2, Running: true}) {
		t.Fatalf("stats %+v", st)
	}
	d3()
	d3() // a second done does nothing
	h6, d6 := p.New(1 << 30)
	if !isLane(h6) {
		t.Fatal("a lane given back was not handed out again")
	}
	for _, d := range []func(){d1, d2, ds, d4, d5, d6} {
		d()
	}
	if st := p.Stats(); st != (Stats{Lanes: 2, Running: true}) {
		t.Fatalf("after every done: %+v", st)
	}
	var nilPool *Pool
	if h, done := nilPool.New(-1); isLane(h) {
		t.Fatal("a nil pool handed out a lane")
	} else {
		done()
	}
	nilPool.Close()
}

// TestUseAfterDonePanics: a hash given back is not written to another
// body's lane.
func TestUseAfterDonePanics(t *testing.T) {
	p := newPool(t, Config{MinBodies: 1})
	defer p.Close()
	h, done := p.New(-1)
	done()
	defer func() {
		if recover() == nil {
			t.Fatal("Write after done did not panic")
		}
	}()
	h.Write([]byte("x"))
}

// TestCloseWithLanesOut: Close with lanes out neither blocks nor breaks
// them; the last one back stops the server's goroutine, and the pool
// hands out crypto/md5 from then on.
func TestCloseWithLanesOut(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newPool(t, Config{MinBodies: 1})
	body := bytes.Repeat([]byte("shale "), 100_000)
	want := md5.Sum(body)
	h1, d1 := p.New(-1)
	h2, d2 := p.New(-1)
	h1.Write(body[:1000])
	p.Close()
	p.Close() // idempotent
	if h, done := p.New(-1); isLane(h) {
		t.Fatal("a closed pool handed out a lane")
	} else {
		done()
	}
	h1.Write(body[1000:])
	h2.Write(body)
	if !bytes.Equal(h1.Sum(nil), want[:]) || !bytes.Equal(h2.Sum(nil), want[:]) {
		t.Fatal("a lane out at Close gave a wrong sum")
	}
	d1()
	if st := p.Stats(); !st.Running || st.LanesOut != 1 {
		t.Fatalf("one lane still out after Close: %+v, want the server running", st)
	}
	d2()
	if st := p.Stats(); st != (Stats{}) {
		t.Fatalf("the last lane back after Close: %+v, want nothing", st)
	}
	// The server's goroutine ends (md5-simd does not wait for it).
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 500 {
			t.Fatalf("%d goroutines, %d before the pool", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseIdle: a pool that never handed out a lane starts no server; one
// that did stops it at Close.
func TestCloseIdle(t *testing.T) {
	p := newPool(t, Config{})
	h, done := p.New(-1)
	if isLane(h) {
		t.Fatal("a lone body got a lane")
	}
	done()
	if p.Stats().Running {
		t.Fatal("the server started without a lane handed out")
	}
	p.Close()

	q := newPool(t, Config{MinBodies: 1})
	_, d := q.New(-1)
	d()
	q.Close()
	if st := q.Stats(); st != (Stats{}) {
		t.Fatalf("closed idle pool: %+v", st)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{{MinBodies: -1}, {MinSize: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	p, err := New(Config{Lanes: -1, MinBodies: 1})
	if err != nil {
		t.Fatal(err)
	}
	if h, done := p.New(-1); isLane(h) {
		t.Fatal("Lanes -1 handed out a lane")
	} else {
		done()
	}
}
