package md5lanes

import (
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/cpuid/v2"
	md5simd "github.com/minio/md5-simd"
)

// Defaults of Config.
const (
	// DefaultLanes is md5-simd's width on AVX-512 (and twice its AVX2
	// width): more lanes than this only queue behind each other.
	DefaultLanes = 16
	// DefaultMinBodies is the number of large bodies hashed at once from
	// which a new one gets a lane (BenchmarkHash: below it crypto/md5
	// costs less CPU per byte).
	DefaultMinBodies = 4
	// DefaultMinSize is the declared size below which a body gets
	// crypto/md5: it is hashed before a lane's rounds would pay off.
	DefaultMinSize = 1 << 20
)

// piece is how many bytes md5-simd hands its server at a time (its
// internal block size): a lane writes it whole pieces only.
const piece = 32 << 10

// ErrInvalidConfig: a Config field is out of range.
var ErrInvalidConfig = errors.New("md5lanes: invalid config")

// Config tunes a Pool. Zero fields take their defaults.
type Config struct {
	// Lanes is the most bodies hashed in SIMD lanes at once; a body that
	// finds every lane out gets crypto/md5. Each lane holds a 32 KiB
	// buffer. Default DefaultLanes; negative: no lanes (crypto/md5 only).
	Lanes int
	// MinBodies is how many large bodies (MinSize) must be hashed at
	// once, the new one included, before the new one gets a lane. Lower
	// hands lanes out when too few bodies share the server's rounds to
	// make them cheaper than crypto/md5. Default DefaultMinBodies.
	MinBodies int
	// MinSize is the declared body size, in bytes, below which a body gets
	// crypto/md5 (a body of unknown size counts as large). Default
	// DefaultMinSize.
	MinSize int64
}

func (c *Config) setDefaults() error {
	if c.Lanes == 0 {
		c.Lanes = DefaultLanes
	}
	if c.MinBodies == 0 {
		c.MinBodies = DefaultMinBodies
	}
	if c.MinSize == 0 {
		c.MinSize = DefaultMinSize
	}
	if c.MinBodies < 0 || c.MinSize < 0 {
		return fmt.Errorf("%w: min bodies %d, min size %d", ErrInvalidConfig, c.MinBodies, c.MinSize)
	}
	return nil
}

// Pool hands out MD5 hashes, one per body. Safe for concurrent use; a nil
// *Pool hands out crypto/md5 only.
type Pool struct {
	cfg    Config
	simd   bool         // the CPU runs md5-simd's SIMD code; else lanes would only cost more
	active atomic.Int64 // large bodies being hashed now, either kind

	mu     sync.Mutex // guards the fields below
	srv    md5simd.Server
	free   []*lane // lanes made and not out
	made   int     // lanes made (free + out)
	closed bool    // Close was called: no lanes handed out; the last one back stops srv
}

// lane is one md5-simd hasher and the bytes it holds back until they make
// a whole piece.
type lane struct {
	h     md5simd.Hasher
	carry []byte // < piece bytes; cap piece
}

// New returns a Pool. Its md5-simd server starts with the first lane it
// hands out; Close stops it.
func New(cfg Config) (*Pool, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	simd := runtime.GOARCH == "amd64" && cpuid.CPU.Supports(cpuid.AVX2)
	return &Pool{cfg: cfg, simd: simd && cfg.Lanes > 0}, nil
}

// New returns the hash of one body of size bytes (< 0: unknown) and the
// func that gives it back, to be called once after the last Sum (a second
// call does nothing). The hash is crypto/md5 or a lane, by the rules of
// Config; the sums are the same. It is not safe for concurrent use (as any
// hash.Hash), and must not be used after done.
func (p *Pool) New(size int64) (h hash.Hash, done func()) {
	if p == nil || !p.simd || (size >= 0 && size < p.cfg.MinSize) {
		return md5.New(), func() {}
	}
	n := p.active.Add(1)
	if n >= int64(p.cfg.MinBodies) {
		if l := p.take(); l != nil {
			lh := &laneHash{l: l}
			var once sync.Once
			return lh, func() {
				once.Do(func() {
					lh.l = nil
					p.giveBack(l)
					p.active.Add(-1)
				})
			}
		}
	}
	var once sync.Once
	return md5.New(), func() { once.Do(func() { p.active.Add(-1) }) }
}

// take hands out a free lane, making one (and the server) if fewer than
// Config.Lanes exist; nil if every lane is out or the pool is closed.
func (p *Pool) take() *lane {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil
	case len(p.free) > 0:
		l := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		return l
	case p.made < p.cfg.Lanes:
		if p.srv == nil {
			p.srv = md5simd.NewServer()
		}
		p.made++
		return &lane{h: p.srv.NewHash(), carry: make([]byte, 0, piece)}
	}
	return nil
}

// giveBack resets a lane for the next body, or retires it if the pool is
// closed, stopping the server with the last one.
func (p *Pool) giveBack(l *lane) {
	l.carry = l.carry[:0]
	l.h.Reset()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.free = append(p.free, l)
		return
	}
	l.h.Close()
	p.made--
	if p.made == len(p.free) {
		p.stop()
	}
}

// Close stops the md5-simd server: at once, or, while lanes are out (bodies
// a shutdown did not wait for), when the last one comes back. Later New
// calls hand out crypto/md5. Close is idempotent.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	if p.made == len(p.free) {
		p.stop()
	}
}

// stop closes the free lanes and the server. Called with mu held and no
// lane out.
func (p *Pool) stop() {
	for _, l := range p.free {
		l.h.Close()
	}
	p.made -= len(p.free)
	p.free = nil
	if p.srv != nil {
		p.srv.Close()
		p.srv = nil
	}
}

// Stats is a snapshot of a Pool.
type Stats struct {
	Active   int  // large bodies being hashed, either kind
	Lanes    int  // lanes made and not retired
	LanesOut int  // lanes handed out now
	Running  bool // the md5-simd server runs
}

// Stats returns the pool's state now.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Active: int(p.active.Load()), Lanes: p.made, LanesOut: p.made - len(p.free), Running: p.srv != nil}
}

// laneHash is a body's hash in a lane: hash.Hash over lane.h that writes
// it whole pieces only.
type laneHash struct {
	l *lane // nil once given back
}

func (x *laneHash) lane() *lane {
	if x.l == nil {
		panic("md5lanes: hash used after done")
	}
	return x.l
}

// Write hands the lane whole pieces: first the held-back bytes topped up
// to a piece, then every whole piece of b in place, and holds back the
// rest.
func (x *laneHash) Write(b []byte) (int, error) {
	l := x.lane()
	n := len(b)
	if len(l.carry) > 0 {
		t := min(piece-len(l.carry), len(b))
		l.carry = append(l.carry, b[:t]...)
		b = b[t:]
		if len(l.carry) < piece {
			return n, nil
		}
		if _, err := l.h.Write(l.carry); err != nil {
			return 0, err
		}
		l.carry = l.carry[:0]
	}
	if whole := len(b) &^ (piece - 1); whole > 0 {
		if _, err := l.h.Write(b[:whole]); err != nil {
			return 0, err
		}
		b = b[whole:]
	}
	l.carry = append(l.carry, b...)
	return n, nil
}

// Sum hands the lane what it holds back (a later Write is still summed
// correctly, only less evenly) and returns the lane's sum appended to in.
func (x *laneHash) Sum(in []byte) []byte {
	l := x.lane()
	if len(l.carry) > 0 {
		l.h.Write(l.carry)
		l.carry = l.carry[:0]
	}
	return l.h.Sum(in)
}

func (x *laneHash) Reset() {
	l := x.lane()
	l.carry = l.carry[:0]
	l.h.Reset()
}

func (x *laneHash) Size() int      { return md5.Size }
func (x *laneHash) BlockSize() int { return md5.BlockSize }
