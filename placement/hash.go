package placement

import (
	"math"

	"github.com/zeebo/xxh3"
)

// The hash functions below are part of shale's placement format: changing
// them moves almost every shard of every object the next time it is placed.
// testdata/golden.txt pins them.

// fmix64 is a 64-bit avalanche finaliser (MurmurHash3's): every input bit
// affects every output bit.
func fmix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// objectHash and nodeHash are hashed once per object and once per node; the
// per-(object, node) draw combines them with one fmix64.
func objectHash(object string) uint64    { return xxh3.HashString(object) }
func nodeHash(id string) uint64          { return xxh3.HashString(id) ^ 0x5be0cd19137e2179 }
func draw(objH, nodeH uint64) uint64     { return fmix64(objH ^ nodeH) }
func slotDraw(x uint64, slot int) uint64 { return fmix64(x ^ uint64(slot+1)*0x9e3779b97f4a7c15) }

// hrwKey is the weighted rendezvous key of a draw x for a node of inverse
// weight invW: -ln(u)/w with u = x mapped into (0,1). Keys are exponentially
// distributed with rate w, so the lowest key of a set of nodes belongs to
// node i with probability w_i / Σw.
func hrwKey(x uint64, invW float64) float64 {
	u := (float64(x>>11) + 0.5) * 0x1p-53
	return -math.Log(u) * invW
}
