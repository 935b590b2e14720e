package replicated

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/internal/privfs"
	"github.com/shale-store/shale/meta"
)

// errKeyNotFound is what hashicorp/raft expects from a StableStore for a
// key never set: it compares the message, "not found".
var errKeyNotFound = errors.New("not found")

// logFormat is the first byte of a stored log entry.
const logFormat = 1

// LogStore is raft's log and stable store on a pebble database of its own
// (not the state machine's): entries under "l" + index (big-endian), the
// stable keys (current term, last vote) under "s" + key. Every write is
// one batch committed with pebble.Sync, so an entry raft has stored
// survives a crash; pebble's commit pipeline lets concurrent syncs share
// one fsync. It is safe for concurrent use.
type LogStore struct {
	db *pebble.DB

	mu          sync.Mutex
	first, last uint64 // 0, 0 when empty
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// OpenLogStore opens (or creates) the log store in dir of fs (nil: the
// real filesystem, private files and directories).
func OpenLogStore(fs vfs.FS, dir string) (*LogStore, error) {
	if fs == nil {
		fs = privfs.New()
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: meta.QuietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	s := &LogStore{db: db}
	if err := s.bounds(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open raft log %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the database.
func (s *LogStore) Close() error { return s.db.Close() }

var (
	pfxLog    = []byte("l")
	pfxStable = []byte("s")
)

func logKey(i uint64) []byte {
	k := make([]byte, 9)
	k[0] = pfxLog[0]
	binary.BigEndian.PutUint64(k[1:], i)
	return k
}

// bounds recomputes first and last from the database.
func (s *LogStore) bounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: pfxLog, UpperBound: []byte{pfxLog[0] + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	s.first, s.last = 0, 0
	if it.First() {
		s.first = binary.BigEndian.Uint64(it.Key()[1:])
	}
	if it.Last() {
		s.last = binary.BigEndian.Uint64(it.Key()[1:])
	}
	return it.Error()
}

// FirstIndex returns the first index written, 0 for none.
func (s *LogStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, nil
}

// LastIndex returns the last index written, 0 for none.
func (s *LogStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

// GetLog reads entry index into out; raft.ErrLogNotFound when absent.
func (s *LogStore) GetLog(index uint64, out *raft.Log) error {
	v, c, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raft log %d: %w", index, err)
	}
	defer c.Close()
	return decodeLog(v, out)
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries in one synced batch.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, l := range logs {
		_ = b.Set(logKey(l.Index), encodeLog(l), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store raft log %d..%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range logs {
		if s.first == 0 || l.Index < s.first {
			s.first = l.Index
		}
		if l.Index > s.last {
			s.last = l.Index
		}
	}
	return nil
}

// DeleteRange deletes entries min..max inclusive (a compacted head or a
// conflicting tail).
func (s *LogStore) DeleteRange(min, max uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange(logKey(min), logKey(max+1), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("delete raft log %d..%d: %w", min, max, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bounds()
}

// Set stores a stable key, synced.
func (s *LogStore) Set(key, val []byte) error {
	return s.db.Set(append(append([]byte(nil), pfxStable...), key...), val, pebble.Sync)
}

// Get returns a stable key; an error "not found" when never set.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	v, c, err := s.db.Get(append(append([]byte(nil), pfxStable...), key...))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return append([]byte(nil), v...), nil
}

// SetUint64 stores a stable counter.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.Set(key, b[:])
}

// GetUint64 returns a stable counter; 0 and "not found" when never set.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft stable key %q: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// encodeLog lays an entry out as
//
//	byte     format (1)
//	uvarint  index, term
//	byte     type
//	uvarint  len(data), data
//	uvarint  len(extensions), extensions
//	varint   appended at, Unix nanoseconds (0: unknown)
func encodeLog(l *raft.Log) []byte {
	out := make([]byte, 0, 1+5*binary.MaxVarintLen64+1+len(l.Data)+len(l.Extensions))
	out = append(out, logFormat)
	out = binary.AppendUvarint(out, l.Index)
	out = binary.AppendUvarint(out, l.Term)
	out = append(out, byte(l.Type))
	out = binary.AppendUvarint(out, uint64(len(l.Data)))
	out = append(out, l.Data...)
	out = binary.AppendUvarint(out, uint64(len(l.Extensions)))
	out = append(out, l.Extensions...)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	return binary.AppendVarint(out, at)
}

func decodeLog(v []byte, l *raft.Log) error {
	bad := func(what string) error { return fmt.Errorf("raft log entry: corrupt %s", what) }
	if len(v) == 0 || v[0] != logFormat {
		return bad("format")
	}
	p := 1
	uv := func(what string) (uint64, error) {
		x, n := binary.Uvarint(v[p:])
		if n <= 0 {
			return 0, bad(what)
		}
		p += n
		return x, nil
	}
	bytesOf := func(what string) ([]byte, error) {
		n, err := uv(what)
		if err != nil {
			return nil, err
		}
		if n > uint64(len(v)-p) {
			return nil, bad(what)
		}
		var out []byte
		if n > 0 {
			out = append([]byte(nil), v[p:p+int(n)]...)
		}
		p += int(n)
		return out, nil
	}
	var err error
	if l.Index, err = uv("index"); err != nil {
		return err
	}
	if l.Term, err = uv("term"); err != nil {
		return err
	}
	if p >= len(v) {
		return bad("type")
	}
	l.Type = raft.LogType(v[p])
	p++
	if l.Data, err = bytesOf("data"); err != nil {
		return err
	}
	if l.Extensions, err = bytesOf("extensions"); err != nil {
		return err
	}
	at, n := binary.Varint(v[p:])
	if n <= 0 {
		return bad("time")
	}
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	return nil
}
