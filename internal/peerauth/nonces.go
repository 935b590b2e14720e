package peerauth

import (
	"hash/maphash"
	"sync"
	"time"
)

// nonceCache remembers the nonces of accepted requests until their dates
// leave the window, in generations: one set per slice of expiry time (width
// each). A nonce's expiry follows from its signed date, so a replay — which
// must carry the same date to pass the signature — always lands in the same
// generation as the original: checking a nonce is one map lookup, and
// forgetting is dropping whole generations once the slice they cover has
// passed, never a scan of live entries. A generation is kept until its last
// possible entry has expired, so no live nonce is ever forgotten; the price
// is holding expired entries up to one width longer, which counts against
// max like any other.
//
// Nonces are held as 64-bit hashes under a random per-cache seed (about 16
// bytes an entry instead of ~100 for the string): two different nonces of
// one generation collide with odds of about n/2^64 per request, and a
// collision only refuses a genuine request as a replay, never the reverse.
// Only validly signed nonces are added, and the seed is secret, so nobody
// can aim for collisions.
type nonceCache struct {
	width int64 // nanoseconds of expiry time per generation
	max   int   // most entries held, live or not yet dropped
	seed  maphash.Seed

	mu        sync.Mutex
	gens      map[int64]map[uint64]struct{} // expiry/width → nonce hashes
	n         int                           // entries over all gens
	nextEvict int64                         // unix ns: next time a generation may be dropped
}

func newNonceCache(width time.Duration, max int) *nonceCache {
	if width <= 0 {
		width = time.Second
	}
	return &nonceCache{width: int64(width), max: max, seed: maphash.MakeSeed(), gens: make(map[int64]map[uint64]struct{})}
}

// add records nonce until expires. It fails with ErrReplay when the nonce is
// already recorded for that expiry, and with ErrBusy when max entries are
// held and none can be dropped yet.
func (c *nonceCache) add(nonce string, expires, now time.Time) error {
	e, t := expires.UnixNano(), now.UnixNano()
	g := floorDiv(e, c.width)
	h := maphash.String(c.seed, nonce)
	c.mu.Lock()
	defer c.mu.Unlock()
	if t >= c.nextEvict {
		c.evict(t)
	}
	set := c.gens[g]
	if _, ok := set[h]; ok {
		return ErrReplay
	}
	if c.n >= c.max {
		return ErrBusy
	}
	if set == nil {
		set = make(map[uint64]struct{})
		c.gens[g] = set
	}
	set[h] = struct{}{}
	c.n++
	return nil
}

// evict drops every generation whose whole slice lies at or before t. The
// map of generations holds about 2·Window/width + 2 entries, so this walk
// is short; it runs once per width.
func (c *nonceCache) evict(t int64) {
	for g, set := range c.gens {
		if (g+1)*c.width <= t {
			c.n -= len(set)
			delete(c.gens, g)
		}
	}
	c.nextEvict = (floorDiv(t, c.width) + 1) * c.width
}

// len is the number of entries held.
func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
