package meta

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/privfs"
)

// Config configures a Store. Zero fields take the documented defaults.
type Config struct {
	// Dir is the pebble directory. Required unless FS is set (then it is a
	// path inside FS; default "meta").
	Dir string
	// FS is the filesystem pebble uses; nil means the real one with private
	// files and directories (privfs.New: 0600/0700). Tests pass vfs.NewMem().
	FS vfs.FS
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// DownAfter: a node without a heartbeat for this long becomes down (not
	// placed on; reads go around it). Default 5s. Shorter detects failures
	// sooner but mistakes a slow node for a dead one more often.
	DownAfter time.Duration
	// OutAfter: a node down for this long becomes out and its shards are
	// re-created elsewhere. Default 10m. Shorter repairs sooner but spends
	// repair bandwidth on nodes that were only restarting.
	OutAfter time.Duration
	// GarbageGrace is added to the commit time to give replaced shards their
	// Garbage.NotBefore, so that readers still streaming the old version can
	// finish. Default 30s.
	GarbageGrace time.Duration
	// TickEvery is how often Run calls Tick. Default 1s.
	TickEvery time.Duration
	// RequestRetention is how long a client request id is remembered with
	// its first result, so that a retry within it is not applied twice.
	// Default 10m: longer than any client retries. Every replica of a raft
	// group must use the same value (as for DownAfter, OutAfter and
	// GarbageGrace), since apply reads them.
	RequestRetention time.Duration
	// Replica makes the store a raft replica's state machine: Open does
	// not apply the restart grace (OpGrace) on its own, since only commands
	// from the log may change a replica; the leader proposes it.
	Replica bool
}

func (c *Config) setDefaults() error {
	if c.FS == nil && c.Dir == "" {
		return fmt.Errorf("%w: meta config: Dir is required", ErrInvalidArgument)
	}
	if c.FS == nil {
		c.FS = privfs.New()
	}
	if c.Dir == "" {
		c.Dir = "meta"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DownAfter <= 0 {
		c.DownAfter = 5 * time.Second
	}
	if c.OutAfter <= 0 {
		c.OutAfter = 10 * time.Minute
	}
	if c.GarbageGrace <= 0 {
		c.GarbageGrace = 30 * time.Second
	}
	if c.TickEvery <= 0 {
		c.TickEvery = time.Second
	}
	if c.RequestRetention <= 0 {
		c.RequestRetention = 10 * time.Minute
	}
	return nil
}

// Store is the pebble-backed metadata service. It is safe for concurrent
// use. Reads go straight to pebble; every mutation runs under one mutex from
// its first read to its synced commit, so mutations are serialised in
// commit order (which is what "last writer wins" means here).
type Store struct {
	// Mutations builds every mutation as a Command and applies it locally
	// (proposeLocal).
	Mutations

	cfg Config
	// dbMu guards db against its swap by Restore: readers hold it shared,
	// Restore and Close exclusively.
	dbMu sync.RWMutex
	db   *pebble.DB

	mu      sync.Mutex
	applied uint64                        // raft index of the last command applied (c/applied)
	gen     uint64                        // last generation handed out
	epoch   uint64                        // current map epoch
	nodes   map[cluster.NodeID]*nodeState // membership, mirrored from n/
	// repair is the repair loop's latest report (SetRepairStats), also
	// persisted at c/repair.
	repair *RepairStats
}

var _ Service = (*Store)(nil)

// storeOptions are the store's pebble options. Every level keeps a bloom
// filter per table: most lookups of a write are of keys that do not exist
// yet (a new object, upload or request record), which without a filter read
// an index block of every table that might hold them.
func storeOptions(fs vfs.FS) *pebble.Options {
	return &pebble.Options{FS: fs, Logger: QuietLogger{},
		Levels: []pebble.LevelOptions{{FilterPolicy: filterPolicy}}}
}

var filterPolicy = bloom.FilterPolicy(10)

// Open opens (or creates) the store in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	db, err := pebble.Open(cfg.Dir, storeOptions(cfg.FS))
	if err != nil {
		return nil, fmt.Errorf("open meta store %s: %w", cfg.Dir, err)
	}
	// pebble syncs its directory, not the entries naming it: without this
	// a crash soon after the first start loses the whole new directory,
	// with every commit acknowledged in it.
	if err := SyncAncestors(cfg.FS, cfg.Dir); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open meta store %s: %w", cfg.Dir, err)
	}
	s := &Store{cfg: cfg, db: db, nodes: map[cluster.NodeID]*nodeState{}}
	s.Mutations = Mutations{Propose: s.proposeLocal}
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open meta store %s: %w", cfg.Dir, err)
	}
	if !cfg.Replica {
		// A new process has heard no heartbeats yet: every node gets a
		// fresh DownAfter (and a down node a fresh OutAfter) from now, so
		// a meta restart never marks the whole cluster out.
		if err := s.Grace(context.Background()); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open meta store %s: %w", cfg.Dir, err)
		}
	}
	return s, nil
}

// Close closes the database. No method may be called afterwards.
func (s *Store) Close() error {
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

// read holds the database against a swap by Restore until the returned
// function is called. Every read path outside s.mu takes it. Lock order:
// dbMu before mu.
func (s *Store) read() func() {
	s.dbMu.RLock()
	return s.dbMu.RUnlock
}

// load reads the counters and the membership into memory.
func (s *Store) load() error {
	var err error
	if s.applied, err = s.getUint(keyApplied); err != nil {
		return err
	}
	if s.gen, err = s.getUint(keyGen); err != nil {
		return err
	}
	if s.epoch, err = s.getUint(keyEpoch); err != nil {
		return err
	}
	if err := s.indexGarbageByNode(); err != nil {
		return err
	}
	if err := s.indexUploadsByAge(); err != nil {
		return err
	}
	if err := s.loadRepairStats(); err != nil {
		return err
	}
	return s.scan(context.Background(), pfxNode, prefixEnd(pfxNode), func(k, v []byte) (bool, error) {
		var rec nodeRecord
		if err := decodeJSON(v, &rec, "node "+string(k)); err != nil {
			return false, err
		}
		st := &nodeState{rec: rec}
		lv, ok, err := s.get(livenessKey(rec.Node.ID))
		if err != nil {
			return false, err
		}
		if ok {
			var l liveness
			if err := decodeJSON(lv, &l, "liveness of "+string(rec.Node.ID)); err != nil {
				return false, err
			}
			st.seen, st.downSince, st.full = l.Seen, l.DownSince, l.Full
			st.rec.Node.Used, st.rec.Node.Free = l.Used, l.Free
		}
		s.nodes[rec.Node.ID] = st
		return true, nil
	})
}

func (s *Store) now() time.Time { return s.cfg.Now().UTC().Round(0) }

func (s *Store) getUint(k []byte) (uint64, error) {
	v, ok, err := s.get(k)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: counter %s", ErrCorrupt, k)
	}
	return binary.BigEndian.Uint64(v), nil
}

// get returns a copy of the value at k.
func (s *Store) get(k []byte) ([]byte, bool, error) {
	v, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	_ = c.Close()
	return out, true, nil
}

func (s *Store) has(k []byte) (bool, error) {
	_, ok, err := s.get(k)
	return ok, err
}

// scan calls fn for each key in [lo, hi) in order (hi nil: no bound) until
// fn returns false. k and v are only valid during the call.
func (s *Store) scan(ctx context.Context, lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return err
			}
		}
		more, err := fn(it.Key(), it.Value())
		if err != nil {
			_ = it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return err
	}
	return it.Close()
}

// count returns the number of keys with prefix p.
func (s *Store) count(ctx context.Context, p []byte) (int64, error) {
	var n int64
	err := s.scan(ctx, p, prefixEnd(p), func(_, _ []byte) (bool, error) { n++; return true, nil })
	return n, err
}

// commit writes b synchronously (outside the command path: the one-time
// index builds on open).
func (s *Store) commit(b *pebble.Batch) error {
	defer b.Close()
	return b.Commit(pebble.Sync)
}

// validBucket checks what the keyspace needs of a bucket name; S3's naming
// rules are the protocol layer's business.
func validBucket(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "\x00/") {
		return fmt.Errorf("%w: bucket name %q", ErrInvalidArgument, name)
	}
	return nil
}

// validKey accepts S3 object keys: 1–1024 bytes of valid UTF-8 (0x00 included).
func validKey(key string) error {
	if key == "" || len(key) > 1024 || !utf8.ValidString(key) {
		return fmt.Errorf("%w: object key %q", ErrInvalidArgument, key)
	}
	return nil
}

// ---- buckets ----

// applyCreateBucket creates a bucket. ErrBucketExists if it exists.
func (s *Store) applyCreateBucket(t *txn, c *Command) (Result, error) {
	name := c.Bucket
	ok, err := s.has(bucketKey(name))
	if err != nil {
		return Result{}, fmt.Errorf("create bucket %s: %w", name, err)
	}
	if ok {
		return Result{}, fmt.Errorf("create bucket %s: %w", name, ErrBucketExists)
	}
	_ = t.b.Set(bucketKey(name), mustJSON(Bucket{Name: name, Created: t.now, Region: c.Region}), nil)
	t.sync = true
	return Result{}, nil
}

// HeadBucket returns the bucket. ErrNoSuchBucket.
func (s *Store) HeadBucket(ctx context.Context, name string) (Bucket, error) {
	if err := ctx.Err(); err != nil {
		return Bucket{}, err
	}
	if validBucket(name) != nil {
		return Bucket{}, fmt.Errorf("head bucket %s: %w", name, ErrNoSuchBucket)
	}
	v, ok, err := s.get(bucketKey(name))
	if err != nil {
		return Bucket{}, fmt.Errorf("head bucket %s: %w", name, err)
	}
	if !ok {
		return Bucket{}, fmt.Errorf("head bucket %s: %w", name, ErrNoSuchBucket)
	}
	var b Bucket
	return b, decodeJSON(v, &b, "bucket "+name)
}

// bucketExists is HeadBucket without the decode.
func (s *Store) bucketExists(name string) error {
	if validBucket(name) != nil {
		return ErrNoSuchBucket
	}
	ok, err := s.has(bucketKey(name))
	if err != nil {
		return err
	}
	if !ok {
		return ErrNoSuchBucket
	}
	return nil
}

// applyDeleteBucket removes an empty bucket. Uploads still in progress in it are
// aborted in the same batch (their parts become garbage). ErrNoSuchBucket,
// ErrBucketNotEmpty when any object remains.
func (s *Store) applyDeleteBucket(t *txn, c *Command) (Result, error) {
	ctx, name := context.Background(), c.Bucket
	if err := s.bucketExists(name); err != nil {
		return Result{}, fmt.Errorf("delete bucket %s: %w", name, err)
	}
	empty := true
	p := objectPrefix(name)
	if err := s.scan(ctx, p, prefixEnd(p), func(_, _ []byte) (bool, error) { empty = false; return false, nil }); err != nil {
		return Result{}, fmt.Errorf("delete bucket %s: %w", name, err)
	}
	if !empty {
		return Result{}, fmt.Errorf("delete bucket %s: %w", name, ErrBucketNotEmpty)
	}
	ups, err := s.bucketUploads(ctx, name)
	if err != nil {
		return Result{}, fmt.Errorf("delete bucket %s: %w", name, err)
	}
	for _, u := range ups {
		if err := s.abortInBatch(ctx, t, u); err != nil {
			return Result{}, fmt.Errorf("delete bucket %s: %w", name, err)
		}
	}
	_ = t.b.Delete(bucketKey(name), nil)
	t.sync = true
	return Result{}, nil
}

// ListBuckets returns every bucket, by name.
func (s *Store) ListBuckets(ctx context.Context) ([]Bucket, error) {
	out := []Bucket{}
	err := s.scan(ctx, pfxBucket, prefixEnd(pfxBucket), func(k, v []byte) (bool, error) {
		var b Bucket
		if err := decodeJSON(v, &b, "bucket "+string(k)); err != nil {
			return false, err
		}
		out = append(out, b)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	return out, nil
}

// QuietLogger is the pebble logger of every pebble store of meta's (the
// state machine, a replica's raft log): it drops pebble's informational
// chatter (a line per flush and compaction; errors reach us as returned
// errors) and passes fatal messages to pebble's default logger.
type QuietLogger struct{}

func (QuietLogger) Infof(string, ...interface{}) {}
func (QuietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

var _ io.Closer = (*Store)(nil)
