package object

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shale-store/shale/erasure"
)

// ErrInvalidConfig: a Config field is out of range.
var ErrInvalidConfig = errors.New("object: invalid config")

// DefaultMemoryBudget is Config.MemoryBudget's default: 96 MiB, room for
// 16 PUTs or GETs of large objects at once (6 MiB each with the default 4+2
// layout), 64 of 1 MiB objects, thousands of small ones. Chosen for the
// gateway's default 256 MiB heap limit: with the collector's default GOGC
// the heap grows to about twice what is live, so the budget plus the rest
// of the live heap must stay under half the limit. Measured on the S3
// matrix (docs/bench/s3.md): 192 MiB let the gateway's RSS pass 256 MiB
// under 32 concurrent 16 MiB PUTs, and more PUTs in flight did not make
// them faster on two cores.
const DefaultMemoryBudget = 96 << 20

// DefaultReplicateMax is Config.ReplicateMax's default. Chosen by
// measurement (docs/BENCHMARKS.md, issue 13): below it a segment's cost is
// the number of shard requests, not its bytes.
const DefaultReplicateMax = 64 << 10

// Config holds the coordinator's settings. Zero fields take the defaults
// documented on each.
type Config struct {
	// K is the number of data shards per segment. Default 4.
	K int
	// M is the number of parity shards per segment. Default 2. (M is taken
	// as given once K is set, so K=4, M=0 means no parity.)
	M int
	// BlockSize is the codec's block size in bytes: each stripe holds K
	// blocks. Default erasure.DefaultBlockSize.
	BlockSize int
	// WriteQuorum is the number of durable shard writes a PUT needs before it
	// commits. Default K+1 (capped at K+M); it may not be below that or
	// above K+M (ErrInvalidConfig): with only K, a PUT would be acknowledged
	// with no redundancy, lost with the first node that fails before repair.
	// With K+1 a 4+2 object survives one more failure as soon as it is
	// acknowledged, and a 6-node cluster still takes writes with one node down.
	WriteQuorum int
	// ReplicateMax: a segment of at most this many bytes whose size is
	// known before its first byte (a PUT or part with a Content-Length) is
	// stored as M+1 full copies — coded 1+M, whose M parity shards of one
	// data shard are copies of it — instead of K+M shards. It survives any
	// M lost shards as a K+M segment does, on M+1 nodes placed across
	// failure domains the same way, and a GET reads one node instead of K;
	// a PUT writes M+1 shards instead of K+M. The price is space: (M+1)×
	// the segment instead of (K+M)/K×, paid only by small segments. Its
	// write quorum keeps the spare shards of WriteQuorum: WriteQuorum-K+1
	// copies (2 of 3 at the defaults), and never fewer than 2 — one copy
	// acknowledged would be no redundancy at all. Default DefaultReplicateMax;
	// negative: never. Ignored when M is 0 (copies would add nothing).
	ReplicateMax int64
	// ReadTimeout is how long one shard read (an open or a single Read) may
	// make no progress before the shard is abandoned and the stripe is
	// reconstructed from parity. Default 2s.
	ReadTimeout time.Duration
	// WriteStall is how long a shard write may make no progress before it is
	// cut off (its node is then treated as failed for this write). It also
	// bounds how long a PUT waits for the slowest shard writes to be
	// acknowledged once the body has been sent. Default 10s.
	WriteStall time.Duration
	// MapRefresh is how long a cluster map fetched from meta is trusted.
	// Default 1s.
	MapRefresh time.Duration
	// GarbageGrace delays the deletion of shards this coordinator queues as
	// garbage (failed PUTs, failed repairs), so a write still in flight on a
	// remote node has landed before collection. Default 1m.
	GarbageGrace time.Duration
	// CleanupTimeout bounds the meta calls that queue garbage after a failed
	// operation; they run even when the caller's context is already done.
	// Default 10s.
	CleanupTimeout time.Duration
	// MemoryBudget bounds, in bytes, the codec buffers that all of this
	// coordinator's PUTs, part uploads, GETs and copies hold at once: each
	// reserves what its codec call may hold (erasure.Codec.EncodeMemory,
	// DecodeMemory: up to Depth × (K+M) × (24 + BlockSize) bytes, 6 MiB at
	// the defaults, for a PUT; a small object much less) before it takes a
	// buffer, and waits, bounded by its ctx and BudgetWait, while the budget
	// is spent (and gives it back while it waits on its client). It
	// is what makes a gateway's memory independent of its concurrency: the
	// shard streams to the nodes take no buffers of their own. Default
	// DefaultMemoryBudget; negative: no bound. A budget below one
	// operation's need lets such operations through one at a time.
	MemoryBudget int64
	// BudgetWait bounds how long an operation waits for MemoryBudget
	// before it fails with ErrBusy (S3: SlowDown, which clients retry with
	// backoff): a client is told the gateway is busy instead of hanging.
	// Default 5s.
	BudgetWait time.Duration
	// ClientYield is how long a client may keep an operation waiting
	// before the operation stops holding MemoryBudget for it: a GET whose
	// response write takes longer stops its decode and waits holding one
	// block of data (clientWriter); a PUT whose body reads take longer in
	// all while less than a stripe arrives gives its reservation back
	// until a stripe has arrived (clientGuard). A stalled or trickling
	// client then holds none of the budget. Default 100ms; negative: never
	// (the budget stays held while the client is slow).
	ClientYield time.Duration
	// MD5 hands out the hash of every body stored (the ETag of a PUT or a
	// part). Default nil: crypto/md5. The gateway passes an
	// internal/md5lanes Pool, which hashes concurrent large bodies in SIMD
	// lanes; whoever made it closes it after the coordinator's last PUT.
	MD5 MD5Source
	// Now is the clock for manifest and report times, map caching and
	// garbage deadlines. Default time.Now.
	Now func() time.Time
	// Rand is the source of version ids (read under a lock). Tests pass a
	// seeded source. Default crypto/rand.Reader.
	Rand io.Reader
}

func (c *Config) setDefaults() error {
	if c.K == 0 {
		c.K = 4
		if c.M == 0 {
			c.M = 2
		}
	}
	if c.BlockSize == 0 {
		c.BlockSize = erasure.DefaultBlockSize
	}
	if c.K < 1 || c.M < 0 {
		return fmt.Errorf("%w: k=%d m=%d", ErrInvalidConfig, c.K, c.M)
	}
	least := min(c.K+1, c.K+c.M)
	if c.WriteQuorum == 0 {
		c.WriteQuorum = least
	}
	if c.WriteQuorum < least {
		return fmt.Errorf("%w: write quorum %d is below k+1 = %d: a PUT would be acknowledged without redundancy", ErrInvalidConfig, c.WriteQuorum, least)
	}
	if c.WriteQuorum > c.K+c.M {
		return fmt.Errorf("%w: write quorum %d is above k+m = %d", ErrInvalidConfig, c.WriteQuorum, c.K+c.M)
	}
	if c.ReplicateMax == 0 {
		c.ReplicateMax = DefaultReplicateMax
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 2 * time.Second
	}
	if c.WriteStall == 0 {
		c.WriteStall = 10 * time.Second
	}
	if c.MapRefresh == 0 {
		c.MapRefresh = time.Second
	}
	if c.GarbageGrace == 0 {
		c.GarbageGrace = time.Minute
	}
	if c.CleanupTimeout == 0 {
		c.CleanupTimeout = 10 * time.Second
	}
	if c.BudgetWait == 0 {
		c.BudgetWait = 5 * time.Second
	}
	if c.ClientYield == 0 {
		c.ClientYield = 100 * time.Millisecond
	}
	if c.ReadTimeout < 0 || c.WriteStall < 0 || c.BudgetWait < 0 || c.MapRefresh < 0 || c.GarbageGrace < 0 || c.CleanupTimeout < 0 {
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return nil
}

// scheme is how a segment of size bytes (-1: not known yet) is coded:
// k data and m parity shards, and the durable shards its write needs.
func (c *Config) scheme(size int64) (k, m, quorum int) {
	if c.M > 0 && c.ReplicateMax > 0 && size >= 0 && size <= c.ReplicateMax {
		return 1, c.M, min(max(c.WriteQuorum-c.K+1, 2), 1+c.M)
	}
	return c.K, c.M, c.WriteQuorum
}
