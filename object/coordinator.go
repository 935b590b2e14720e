package object

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/storage"
)

// Meta is the part of the metadata service (meta.Service) the coordinator
// uses. *meta.Store and meta/remote's client implement it.
type Meta interface {
	CreateBucket(ctx context.Context, name, region string) error
	HeadBucket(ctx context.Context, name string) (meta.Bucket, error)
	DeleteBucket(ctx context.Context, name string) error
	ListBuckets(ctx context.Context) ([]meta.Bucket, error)

	Commit(ctx context.Context, m meta.Manifest) (meta.Manifest, error)
	CommitIf(ctx context.Context, m meta.Manifest, cond meta.CommitCondition) (meta.Manifest, error)
	Get(ctx context.Context, bucket, key string) (meta.Manifest, error)
	Delete(ctx context.Context, bucket, key string) (bool, error)
	List(ctx context.Context, bucket string, opts meta.ListOptions) (meta.ListResult, error)
	UpdateShards(ctx context.Context, bucket, key string, gen uint64, upd []meta.ShardUpdate) (meta.Manifest, error)

	CreateUpload(ctx context.Context, u meta.Upload) (meta.Upload, error)
	GetUpload(ctx context.Context, bucket, key, uploadID string) (meta.Upload, error)
	PutPart(ctx context.Context, bucket, key string, p meta.Part) error
	ListParts(ctx context.Context, bucket, key, uploadID string) ([]meta.Part, error)
	ListUploads(ctx context.Context, bucket string, opts meta.UploadListOptions) (meta.UploadListResult, error)
	CompleteUpload(ctx context.Context, uploadID string, m meta.Manifest) (meta.Manifest, error)
	CompleteUploadIf(ctx context.Context, uploadID string, m meta.Manifest, cond meta.CommitCondition) (meta.Manifest, error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error

	Map(ctx context.Context) (*cluster.Map, error)

	ReportBad(ctx context.Context, b meta.BadShard) error
	AddGarbage(ctx context.Context, g []meta.Garbage) error
}

// ShardStore is the part of a node's shard store (storage.Store) the
// coordinator uses; the contracts are storage.Store's. In particular Put must
// consume r to EOF before it succeeds and must keep nothing when r fails, and
// Get's reader must give up (return an error from Read) once ctx is done —
// slow nodes are read around by cancelling that context.
type ShardStore interface {
	Put(ctx context.Context, id string, r io.Reader) (storage.Info, error)
	Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error)
	Delete(ctx context.Context, id string) error
}

// Nodes dials a node's shard store. Store must be cheap (callers cache
// connections) and safe for concurrent use; it does no I/O that can hang.
type Nodes interface {
	Store(n cluster.Node) (ShardStore, error)
}

// MD5Source hands out the MD5 hashes of the bodies the coordinator stores
// (ETags). internal/md5lanes' Pool implements it; nil means crypto/md5.
type MD5Source interface {
	// New returns the hash of one body of size bytes (< 0: unknown) and
	// the func that gives it back. Its sums must be crypto/md5's. The
	// coordinator calls done once on every path, after the hash's last
	// use; the hash is used by one goroutine at a time.
	New(size int64) (h hash.Hash, done func())
}

// Coordinator implements the object operations over meta, placement, the
// erasure codec and the nodes' shard stores. It is safe for concurrent use.
type Coordinator struct {
	cfg   Config
	md    Meta
	nodes Nodes

	randMu sync.Mutex // guards cfg.Rand
	mapMu  sync.Mutex // guards cached, mapAt
	cached *cluster.Map
	mapAt  time.Time

	codecMu sync.Mutex // guards codecs
	codecs  map[layout]*erasure.Codec

	mem     *budget     // Config.MemoryBudget: codec buffers held at once (budget.go)
	buckets bucketCache // buckets PutObject saw exist lately (put.go)
	bufs    sizedBufs   // staged PUT stripes, GET blocks on their way out (bufs.go)

	reportErrs  atomic.Int64
	garbageErrs atomic.Int64
}

// layout is one coding of a segment.
type layout struct{ k, m, bs int }

// New returns a coordinator. cfg's zero fields take their defaults.
func New(cfg Config, md Meta, nodes Nodes) (*Coordinator, error) {
	if md == nil || nodes == nil {
		return nil, fmt.Errorf("%w: nil meta or nodes", ErrInvalidConfig)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, md: md, nodes: nodes, codecs: map[layout]*erasure.Codec{}, mem: newBudget(cfg.MemoryBudget)}
	if _, err := c.codec(cfg.K, cfg.M, cfg.BlockSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// Config returns the coordinator's settings with defaults applied.
func (c *Coordinator) Config() Config { return c.cfg }

// Stats counts the failures the coordinator absorbed rather than returned,
// and shows its memory budget.
type Stats struct {
	// ReportErrors counts bad-shard reports to meta that failed (the read
	// itself succeeded; a scrub will find the shard again).
	ReportErrors int64
	// GarbageErrors counts shards that could not be queued as garbage after
	// a failed or degraded write (they stay orphans until a node scrub).
	GarbageErrors int64
	// MemoryReserved is the bytes of Config.MemoryBudget reserved now,
	// MemoryPeak the most ever reserved at once, and MemoryWaiting the
	// operations queued for it.
	MemoryReserved, MemoryPeak int64
	MemoryWaiting              int
}

// Stats returns the counters since New and the memory budget's state.
func (c *Coordinator) Stats() Stats {
	used, peak, waiting := c.mem.state()
	return Stats{ReportErrors: c.reportErrs.Load(), GarbageErrors: c.garbageErrs.Load(),
		MemoryReserved: used, MemoryPeak: peak, MemoryWaiting: waiting}
}

func (c *Coordinator) codec(k, m, bs int) (*erasure.Codec, error) {
	l := layout{k, m, bs}
	c.codecMu.Lock()
	defer c.codecMu.Unlock()
	if cd, ok := c.codecs[l]; ok {
		return cd, nil
	}
	cd, err := erasure.New(k, m, bs)
	if err != nil {
		return nil, err
	}
	c.codecs[l] = cd
	return cd, nil
}

// clusterMap returns the cluster map, fetched from meta at most once per
// MapRefresh.
func (c *Coordinator) clusterMap(ctx context.Context) (*cluster.Map, error) {
	now := c.cfg.Now()
	c.mapMu.Lock()
	if c.cached != nil && now.Sub(c.mapAt) < c.cfg.MapRefresh && !now.Before(c.mapAt) {
		m := c.cached
		c.mapMu.Unlock()
		return m, nil
	}
	c.mapMu.Unlock()
	m, err := c.md.Map(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch cluster map: %w", err)
	}
	c.mapMu.Lock()
	c.cached, c.mapAt = m, now
	c.mapMu.Unlock()
	return m, nil
}

// newID returns 16 random bytes in hex: a version id.
func (c *Coordinator) newID() (string, error) {
	var b [16]byte
	c.randMu.Lock()
	_, err := io.ReadFull(c.cfg.Rand, b[:])
	c.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("new version id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// shortID returns 4 random bytes in hex, for repair shard ids.
func (c *Coordinator) shortID() (string, error) {
	var b [4]byte
	c.randMu.Lock()
	_, err := io.ReadFull(c.cfg.Rand, b[:])
	c.randMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("new shard id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func shardID(version string, segment, index int) string {
	return fmt.Sprintf("%s.%d.%d", version, segment, index)
}

// cleanupCtx is a context for queueing garbage after a failure: it survives
// the caller's cancellation but is bounded by CleanupTimeout.
func (c *Coordinator) cleanupCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CleanupTimeout)
}

// queueGarbage hands shards that no manifest references to garbage
// collection. It returns the error of AddGarbage (also counted in Stats).
func (c *Coordinator) queueGarbage(ctx context.Context, g []meta.Garbage) error {
	if len(g) == 0 {
		return nil
	}
	cctx, cancel := c.cleanupCtx(ctx)
	defer cancel()
	nb := c.cfg.Now().Add(c.cfg.GarbageGrace)
	for i := range g {
		if g[i].NotBefore.IsZero() {
			g[i].NotBefore = nb
		}
	}
	if err := c.md.AddGarbage(cctx, g); err != nil {
		c.garbageErrs.Add(int64(len(g)))
		return fmt.Errorf("queue %d orphan shards as garbage: %w", len(g), err)
	}
	return nil
}

// CreateBucket creates a bucket (meta.ErrBucketExists).
func (c *Coordinator) CreateBucket(ctx context.Context, name, region string) error {
	if err := c.md.CreateBucket(ctx, name, region); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// HeadBucket returns a bucket (meta.ErrNoSuchBucket).
func (c *Coordinator) HeadBucket(ctx context.Context, name string) (meta.Bucket, error) {
	b, err := c.md.HeadBucket(ctx, name)
	if err != nil {
		return meta.Bucket{}, fmt.Errorf("head bucket %s: %w", name, err)
	}
	return b, nil
}

// DeleteBucket deletes an empty bucket (meta.ErrNoSuchBucket,
// meta.ErrBucketNotEmpty).
func (c *Coordinator) DeleteBucket(ctx context.Context, name string) error {
	if err := c.md.DeleteBucket(ctx, name); err != nil {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	return nil
}

// ListBuckets lists every bucket.
func (c *Coordinator) ListBuckets(ctx context.Context) ([]meta.Bucket, error) {
	bs, err := c.md.ListBuckets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return bs, nil
}

// HeadObject returns the current version's manifest (meta.ErrNoSuchKey,
// meta.ErrNoSuchBucket).
func (c *Coordinator) HeadObject(ctx context.Context, bucket, key string) (meta.Manifest, error) {
	m, err := c.md.Get(ctx, bucket, key)
	if err != nil {
		return meta.Manifest{}, fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	return m, nil
}

// DeleteObject removes the key; meta queues its shards as garbage. Deleting
// an absent key is not an error. Readers already holding the manifest keep
// reading until garbage collection (after meta's grace) removes the shards.
func (c *Coordinator) DeleteObject(ctx context.Context, bucket, key string) error {
	if _, err := c.md.Delete(ctx, bucket, key); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ListObjects lists a bucket (meta.ErrNoSuchBucket).
func (c *Coordinator) ListObjects(ctx context.Context, bucket string, opts meta.ListOptions) (meta.ListResult, error) {
	r, err := c.md.List(ctx, bucket, opts)
	if err != nil {
		return meta.ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	return r, nil
}

// errJoin is errors.Join that keeps a single error unwrapped-printable.
func errJoin(errs []error) error {
	var keep []error
	for _, e := range errs {
		if e != nil {
			keep = append(keep, e)
		}
	}
	switch len(keep) {
	case 0:
		return nil
	case 1:
		return keep[0]
	}
	return errors.Join(keep...)
}
