package object

import (
	"math/bits"
	"sync"
)

// Sizes of the recycled buffers: powers of two from stageMin, stageClasses
// of them (64 KiB .. 128 MiB); a larger buffer is made for its use alone.
const (
	stageMin     = 64 << 10
	stageClasses = 12
)

// sizedBufs recycles the buffers a request holds outside the codec's
// stripes — a PUT's staged stripe (stagedBody), a GET's block on its way to
// the client (clientWriter) — one pool per power-of-two size, so a busy
// gateway does not allocate and collect them per request: that garbage,
// not the stripes, set the size of its heap. A PUT's staging buffer grows
// by doubling (to a power of two at least the stripe) while its first
// stripe arrives and is then reused for every later stripe: one staged
// stripe per PUT, outside the codec's memory budget, as before.
type sizedBufs struct{ pools [stageClasses]sync.Pool }

// stageClass is the smallest class whose buffers hold n bytes, or
// stageClasses when none does.
func stageClass(n int64) int {
	if n <= stageMin {
		return 0
	}
	return bits.Len64(uint64(n-1)) - bits.Len64(stageMin-1)
}

// get returns an empty buffer of capacity at least n.
func (p *sizedBufs) get(n int64) []byte {
	c := stageClass(n)
	if c >= stageClasses {
		return make([]byte, 0, n)
	}
	if b, ok := p.pools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, int64(stageMin)<<c)
}

// put recycles b, which nothing may use afterwards. Buffers not of a
// class's exact size (a stripe larger than every class) are left to the
// garbage collector.
func (p *sizedBufs) put(b []byte) {
	c := stageClass(int64(cap(b)))
	if c >= stageClasses || int64(cap(b)) != int64(stageMin)<<c {
		return
	}
	p.pools[c].Put(&b)
}
