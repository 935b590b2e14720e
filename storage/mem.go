package storage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemConfig configures a Mem store. The zero value is usable.
type MemConfig struct {
	// Limit caps the bytes of shard data the store holds; a Put that would
	// pass it fails with ErrFull. Zero: 1 TiB (Usage.Free counts down from it).
	Limit int64
	// Now reads the clock for Info.Created. Default time.Now.
	Now func() time.Time
}

// Mem is an in-memory Store with the same semantics as Disk — ids validated,
// uploads verified record by record, ranged reads verified, atomic replace —
// minus durability. It is meant for tests of the packages built on Store.
// A Mem is safe for concurrent use.
type Mem struct {
	limit int64
	now   func() time.Time
	bufs  bufPool

	mu     sync.RWMutex
	shards map[string]*memShard
	used   int64
}

type memShard struct {
	data []byte // never modified after Put, except by Corrupt (which copies)
	info Info
	lay  layout
}

// NewMem returns an empty in-memory store.
func NewMem(cfg MemConfig) *Mem {
	m := &Mem{limit: cfg.Limit, now: cfg.Now, shards: make(map[string]*memShard)}
	if m.limit <= 0 {
		m.limit = 1 << 40
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

var _ Store = (*Mem)(nil)

// Put implements Store.
func (m *Mem) Put(ctx context.Context, id string, r io.Reader) (Info, error) {
	if err := ValidateID(id); err != nil {
		return Info{}, fmt.Errorf("put shard: %w", err)
	}
	var buf bytes.Buffer
	m.mu.RLock()
	budget := m.limit - m.used
	m.mu.RUnlock()
	in, err := ingest(ctx, id, r, &buf, make([]byte, 32<<10), max(budget, 0))
	if err == errOverLimit {
		err = ErrFull
	}
	if err != nil {
		return Info{}, fmt.Errorf("put shard %s: %w", id, err)
	}
	info := Info{ID: id, Size: in.lay.size, Checksum: in.sum, Created: m.now()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("put shard %s: %w", id, err)
	}
	if old := m.shards[id]; old != nil {
		m.used -= old.info.Size
	}
	m.shards[id] = &memShard{data: buf.Bytes(), info: info, lay: in.lay}
	m.used += info.Size
	return info, nil
}

// Get implements Store.
func (m *Mem) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	sh, err := m.lookup(ctx, "get", id)
	if err != nil {
		return nil, err
	}
	first, end, length, err := sh.lay.span(off, n)
	if err != nil {
		return nil, fmt.Errorf("get shard %s: %w", id, err)
	}
	return newRecordStream(ctx, id, bytes.NewReader(sh.data[off:off+length]), nil, sh.lay, first, end, length, &m.bufs), nil
}

func (m *Mem) lookup(ctx context.Context, op, id string) (*memShard, error) {
	if err := ValidateID(id); err != nil {
		return nil, fmt.Errorf("%s shard: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s shard %s: %w", op, id, err)
	}
	m.mu.RLock()
	sh := m.shards[id]
	m.mu.RUnlock()
	if sh == nil {
		return nil, fmt.Errorf("%s shard %s: %w", op, id, ErrNotFound)
	}
	return sh, nil
}

// Stat implements Store.
func (m *Mem) Stat(ctx context.Context, id string) (Info, error) {
	sh, err := m.lookup(ctx, "stat", id)
	if err != nil {
		return Info{}, err
	}
	return sh.info, nil
}

// Delete implements Store.
func (m *Mem) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("delete shard: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete shard %s: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.shards[id]; old != nil {
		m.used -= old.info.Size
		delete(m.shards, id)
	}
	return nil
}

// List implements Store. limit ≤ 0 means DefaultListLimit.
func (m *Mem) List(ctx context.Context, prefix, after string, limit int) ([]Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list shards %q: %w", prefix, err)
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	m.mu.RLock()
	var out []Info
	for id, sh := range m.shards {
		if strings.HasPrefix(id, prefix) && id > after {
			out = append(out, sh.info)
		}
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Usage implements Store. Free counts down from the configured limit; Full
// is never set.
func (m *Mem) Usage(ctx context.Context) (Usage, error) {
	if err := ctx.Err(); err != nil {
		return Usage{}, fmt.Errorf("usage: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Usage{Shards: int64(len(m.shards)), Used: m.used, Free: max(m.limit-m.used, 0)}, nil
}

// Corrupt flips the bits of the byte at off in the stored shard id, as bitrot
// would, so tests of other packages can exercise their corruption paths.
// Readers already open keep the bytes they had.
func (m *Mem) Corrupt(id string, off int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sh := m.shards[id]
	if sh == nil {
		return fmt.Errorf("corrupt shard %s: %w", id, ErrNotFound)
	}
	if off < 0 || off >= int64(len(sh.data)) {
		return fmt.Errorf("corrupt shard %s at %d: %w", id, off, ErrRange)
	}
	data := bytes.Clone(sh.data)
	data[off] ^= 0xff
	m.shards[id] = &memShard{data: data, info: sh.info, lay: sh.lay}
	return nil
}
