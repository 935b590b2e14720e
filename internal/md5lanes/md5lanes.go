package md5lanes

import (
	"crypto/md5"
	"hash"
	"sync"
	"sync/atomic"

	md5simd "github.com/minio/md5-simd"
)

// DefaultMin is the number of bodies hashed at once from which a new body
// gets a SIMD lane: below it, crypto/md5 costs less per byte.
const DefaultMin = 4

// Pool hands out MD5 hashes. Safe for concurrent use.
type Pool struct {
	min    int64
	active atomic.Int64 // bodies being hashed now, either kind

	mu     sync.Mutex // guards the fields below
	srv    md5simd.Server
	lanes  int  // lanes handed out and not given back
	closed bool // Close was called: no new lanes; the last one back stops srv
}

// New returns a pool with its SIMD server running; min ≤ 0 means
// DefaultMin. Close stops it.
func New(min int) *Pool {
	if min <= 0 {
		min = DefaultMin
	}
	return &Pool{min: int64(min), srv: md5simd.NewServer()}
}

// New returns a hash for one body and the func that gives it back (after
// the last Sum); a nil Pool hands out crypto/md5.
func (p *Pool) New() (h hash.Hash, done func()) {
	if p == nil {
		return md5.New(), func() {}
	}
	n := p.active.Add(1)
	var once sync.Once
	if n >= p.min {
		p.mu.Lock()
		if !p.closed {
			p.lanes++
			lane := p.srv.NewHash()
			p.mu.Unlock()
			return lane, func() { once.Do(func() { p.giveBack(lane) }) }
		}
		p.mu.Unlock()
	}
	return md5.New(), func() { once.Do(func() { p.active.Add(-1) }) }
}

// giveBack frees a lane, and stops the server if it was the last one out
// of a closed pool.
func (p *Pool) giveBack(lane md5simd.Hasher) {
	lane.Close()
	p.active.Add(-1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lanes--
	if p.closed && p.lanes == 0 {
		p.srv.Close()
	}
}

// Active is the number of bodies being hashed now.
func (p *Pool) Active() int { return int(p.active.Load()) }

// Close stops the SIMD server, at once or, while lanes are still out (a
// request the shutdown's grace did not wait for), when the last comes
// back; later hashes are crypto/md5.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.lanes == 0 {
		p.srv.Close()
	}
}
