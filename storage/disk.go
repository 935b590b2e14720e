package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/zeebo/xxh3"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/privfs"
)

// FormatVersion is the newest data directory format this package reads and
// writes, recorded in DIR/FORMAT as the line "shale-storage <version>".
// Version 2 may hold inline shards (DiskConfig.InlineMax), which version 1
// builds cannot read: a store opened with inline shards on is marked 2
// (a version-1 directory is upgraded at open), so such a build refuses it
// with ErrFormat instead of failing on its index. A store opened with
// InlineMax < 0 keeps (and new ones get) version 1.
const FormatVersion = 2

// formatVersion1 is the format without inline shards.
const formatVersion1 = 1

const formatMagic = "shale-storage"

// DiskConfig configures a Disk.
type DiskConfig struct {
	// Dir is the data directory. Required. It is created if missing; an
	// empty directory is formatted on first open.
	Dir string
	// FullThreshold is the free space, in bytes, below which Usage reports
	// Full (placement then stops choosing the node; Put still works until
	// the disk or Limit is really exhausted). Zero: the smaller of 1 GiB and
	// 5% of the capacity (the device, or Limit when set). Negative: never
	// full.
	FullThreshold int64
	// Limit caps the bytes of shard data the store holds (for tests and for
	// sharing a device); a Put that would pass it fails with ErrFull, and
	// Usage.Free is at most Limit - Used. Zero: no cap beyond the device.
	Limit int64
	// Now reads the clock for Info.Created and scrub marks. Default time.Now.
	Now func() time.Time
	// FS holds every file of the store: FORMAT, shard and temporary files,
	// and the pebble index. Default privfs.New(): the operating system's,
	// creating files 0600 and directories 0700. Tests wrap it (errorfs) to
	// fail shard files and the index alike. Only with the default does
	// GetRaw open shard files with os.Open (see GetRaw).
	FS vfs.FS
	// BufferSize is the copy buffer of Put, in bytes. Default 256 KiB.
	BufferSize int
	// InlineMax is the largest shard, in bytes, kept inline in the index
	// instead of in a file of its own: its bytes are written in the same
	// synced batch as its entry, so concurrent small Puts share one WAL
	// sync and create no file. Zero: DefaultInlineMax. Negative: every
	// shard gets a file.
	InlineMax int
}

// DefaultInlineMax is DiskConfig.InlineMax's default: shards of objects up
// to about 4× this size (k=4) are stored inline. See docs/BENCHMARKS.md
// (issue 13) for the measurement that chose it.
const DefaultInlineMax = 64 << 10

func (c *DiskConfig) setDefaults() error {
	if c.Dir == "" {
		return errors.New("storage: DiskConfig.Dir is empty")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.FS == nil {
		c.FS = privfs.New()
	}
	if c.BufferSize <= 0 {
		c.BufferSize = 256 << 10
	}
	if c.InlineMax == 0 {
		c.InlineMax = DefaultInlineMax
	}
	if c.Limit < 0 {
		return fmt.Errorf("storage: DiskConfig.Limit %d is negative", c.Limit)
	}
	return nil
}

// lockStripes is the number of per-id lock stripes. A Put holds its
// stripe across the directory fsync and the synced index commit, so two
// concurrent Puts of different ids that share a stripe wait for each
// other's syncs: with 1024 stripes, 32 Puts in flight collide about 3% of
// the time (64 stripes: about 40%). Memory: 24 bytes a stripe.
const lockStripes = 1024

// Disk is the node-local shard store: one file per shard under
// DIR/shards/xx/<id>, a pebble index in DIR/index, temporary files in
// DIR/tmp. A Disk is safe for concurrent use. See the package documentation
// for the durability protocol.
type Disk struct {
	cfg      DiskConfig
	fs       vfs.FS
	osFiles  bool // fs is the default (the operating system's): GetRaw opens shard files with os.Open
	dir      string
	token    string // random per open: names of this process's temporary files
	seq      atomic.Uint64
	bufs     sync.Pool // Put's copy buffers
	spills   sync.Pool // Put's inline buffers (cap InlineMax)
	readBufs bufPool   // Get's record buffers

	db *pebble.DB

	// locks order the publish step (rename + index) of each id against
	// readers opening it: Put and Delete take the write lock of the id's
	// stripe, Get and the scrubber the read lock.
	locks [lockStripes]sync.RWMutex

	// state guards closed; index writes hold it for reading, Close for writing.
	state  sync.RWMutex
	closed bool

	shards atomic.Int64 // running totals of the index, kept by Put and Delete
	used   atomic.Int64

	damaged atomic.Bool // the index met corruption in the background (Usage.Damaged)

	spaceChecked atomic.Int64 // unix nanos of lowOnSpace's last statfs (0: never)
	spaceLow     atomic.Bool  // its answer

	recovery Recovery
	fresh    bool // the directory was formatted by this open: nothing to reconcile
}

// Recovery reports what OpenDisk did to bring the index and the files back in
// line after an unclean stop.
type Recovery struct {
	Unclean        bool `json:"unclean"`         // no clean-shutdown marker was found
	TempRemoved    int  `json:"temp_removed"`    // temporary files deleted
	EntriesDropped int  `json:"entries_dropped"` // index entries whose file was missing
	FilesAdded     int  `json:"files_added"`     // complete files without (or with a stale) entry, verified and indexed
	FilesRemoved   int  `json:"files_removed"`   // files that failed verification or did not belong, deleted
}

var _ Store = (*Disk)(nil)

// OpenDisk opens (or formats) the data directory cfg.Dir. A directory holding
// an unknown format, or holding files but no FORMAT, is refused with
// ErrFormat. After an unclean stop the index is reconciled with the files
// before OpenDisk returns (see Recovery).
func OpenDisk(cfg DiskConfig) (*Disk, error) {
	osFiles := cfg.FS == nil
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	d := &Disk{cfg: cfg, fs: cfg.FS, dir: cfg.Dir, osFiles: osFiles}
	var tok [4]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("open store %s: %w", d.dir, err)
	}
	d.token = hex.EncodeToString(tok[:])
	d.bufs.New = func() any { b := make([]byte, cfg.BufferSize); return &b }
	d.spills.New = func() any { b := make([]byte, 0, max(cfg.InlineMax, 0)); return &b }
	if err := d.checkFormat(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", d.dir, err)
	}
	if err := d.makeDirs(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", d.dir, err)
	}
	// A bloom filter per table: a new shard's write looks up an entry
	// that does not exist yet.
	db, err := pebble.Open(filepath.Join(d.dir, "index"), &pebble.Options{FS: d.fs, Logger: quietLogger{},
		Levels:        []pebble.LevelOptions{{FilterPolicy: bloom.FilterPolicy(10)}},
		EventListener: &pebble.EventListener{BackgroundError: d.backgroundError}})
	if err != nil {
		return nil, fmt.Errorf("open store %s: index: %w", d.dir, err)
	}
	d.db = db
	if err := d.start(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", d.dir, err)
	}
	return d, nil
}

// quietLogger keeps pebble off stderr; fatal conditions still stop the
// process, as pebble requires.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("storage: pebble: "+format, args...))
}

// checkFormat reads DIR/FORMAT, or writes it into an empty directory.
func (d *Disk) checkFormat() error {
	if err := d.fs.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(d.dir, "FORMAT")
	line := func(v int) string { return fmt.Sprintf("%s %d", formatMagic, v) }
	supported := fmt.Sprintf("%q or %q", line(formatVersion1), line(FormatVersion))
	want := line(FormatVersion)
	if d.cfg.InlineMax < 0 {
		want = line(formatVersion1)
	}
	f, err := d.fs.Open(path)
	if err == nil {
		b, err := io.ReadAll(io.LimitReader(f, 256))
		f.Close()
		if err != nil {
			return fmt.Errorf("read FORMAT: %w", err)
		}
		switch got := strings.TrimSpace(string(b)); {
		case got == line(FormatVersion) || got == want:
			return nil
		case got == line(formatVersion1):
			// Inline shards are on: mark the directory before any is
			// written, so a version-1 build refuses it.
			return d.writeFormat(path, want)
		default:
			return fmt.Errorf("%w: FORMAT says %q, this version supports %s", ErrFormat, got, supported)
		}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open FORMAT: %w", err)
	}
	names, err := d.fs.List(d.dir)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: no FORMAT file in non-empty directory (found %q …); this version supports %s", ErrFormat, names[0], supported)
	}
	d.fresh = true
	return d.writeFormat(path, want)
}

// writeFormat replaces FORMAT with the line, durably (temporary file,
// fsync, rename, directory fsync).
func (d *Disk) writeFormat(path, line string) error {
	tmp := path + ".tmp"
	if err := d.writeFileSync(tmp, []byte(line+"\n")); err != nil {
		return fmt.Errorf("write FORMAT: %w", err)
	}
	if err := d.fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("write FORMAT: %w", err)
	}
	return d.syncDir(d.dir)
}

func (d *Disk) writeFileSync(path string, b []byte) error {
	f, err := d.fs.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// makeDirs creates DIR/tmp and the 256 fan-out directories (idempotent;
// the directories are fsynced only when the last one had to be made).
func (d *Disk) makeDirs() error {
	if _, err := d.fs.Stat(filepath.Join(d.dir, "shards", "ff")); err == nil {
		return nil
	}
	if err := d.fs.MkdirAll(filepath.Join(d.dir, "tmp"), 0o700); err != nil {
		return err
	}
	for i := 0; i < 256; i++ {
		if err := d.fs.MkdirAll(filepath.Join(d.dir, "shards", fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return err
		}
	}
	for _, p := range []string{filepath.Join(d.dir, "shards"), d.dir} {
		if err := d.syncDir(p); err != nil {
			return err
		}
	}
	return nil
}

// start consumes the clean-shutdown marker (reconciling when it is absent),
// empties DIR/tmp and loads the running totals.
func (d *Disk) start() error {
	_, closer, err := d.db.Get([]byte(keyClean))
	switch {
	case err == nil:
		closer.Close()
		if err := d.db.Delete([]byte(keyClean), pebble.Sync); err != nil {
			return fmt.Errorf("clear clean marker: %w", err)
		}
	case errors.Is(err, pebble.ErrNotFound):
		d.recovery.Unclean = !d.fresh
	default:
		return fmt.Errorf("read clean marker: %w", err)
	}
	if err := d.clearTemp(); err != nil {
		return err
	}
	if d.recovery.Unclean {
		if err := d.reconcile(); err != nil {
			return fmt.Errorf("reconcile index with files: %w", err)
		}
	}
	return d.loadTotals()
}

// Recovery reports what the last OpenDisk repaired.
func (d *Disk) Recovery() Recovery { return d.recovery }

// Dir returns the data directory.
func (d *Disk) Dir() string { return d.dir }

func (d *Disk) clearTemp() error {
	tmp := filepath.Join(d.dir, "tmp")
	names, err := d.fs.List(tmp)
	if err != nil {
		return fmt.Errorf("list temporary files: %w", err)
	}
	for _, n := range names {
		if err := d.fs.Remove(filepath.Join(tmp, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove temporary file %s: %w", n, err)
		}
		d.recovery.TempRemoved++
	}
	return nil
}

func (d *Disk) loadTotals() error {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte(keyShard), UpperBound: upperBound(keyShard)})
	if err != nil {
		return err
	}
	var n, used int64
	for it.First(); it.Valid(); it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("index entry %q: %w", it.Key(), err)
		}
		n++
		used += e.lay.size
	}
	if err := it.Close(); err != nil {
		if !pebble.IsCorruptionError(err) {
			return err
		}
		// Rot in the index: open damaged (Full: nothing new is placed here)
		// with the totals of what could be read, so the node serves what
		// it still can and an operator drains it, rather than not start.
		d.damaged.Store(true)
	}
	d.shards.Store(n)
	d.used.Store(used)
	return nil
}

// Close writes the clean-shutdown marker and closes the index. Operations
// after Close fail with ErrClosed; readers already returned by Get keep
// working until they are closed. Close is idempotent.
func (d *Disk) Close() error {
	d.state.Lock()
	defer d.state.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	err := d.db.Set([]byte(keyClean), nil, pebble.Sync)
	if cerr := d.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", d.dir, err)
	}
	return nil
}

// shardPath is DIR/shards/xx/<id>, xx the low byte of the id's XXH3 in hex.
func (d *Disk) shardPath(id string) string {
	return filepath.Join(d.dir, "shards", fanout(id), id)
}

func fanout(id string) string {
	return fmt.Sprintf("%02x", byte(xxh3.HashString(id)))
}

func (d *Disk) lockFor(id string) *sync.RWMutex {
	return &d.locks[xxh3.HashString(id)>>32%lockStripes]
}

func (d *Disk) syncDir(path string) error {
	f, err := d.fs.OpenDir(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", path, err)
	}
	return nil
}

// readEntry returns id's index entry; ok is false when there is none.
func (d *Disk) readEntry(id string) (e entry, ok bool, err error) {
	v, closer, err := d.db.Get(shardKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return entry{}, false, nil
	}
	if pebble.IsCorruptionError(err) {
		return entry{}, false, &CorruptError{ID: id, Err: err}
	}
	if err != nil {
		return entry{}, false, err
	}
	defer closer.Close()
	e, err = decodeEntry(v)
	if err != nil {
		return entry{}, false, fmt.Errorf("index entry of %s: %w", id, err)
	}
	return e, true, nil
}

// enter runs fn with the store open for index writes, or returns ErrClosed.
func (d *Disk) enter(fn func() error) error {
	d.state.RLock()
	defer d.state.RUnlock()
	if d.closed {
		return ErrClosed
	}
	return fn()
}

func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	if errors.Is(err, errOverLimit) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// Put implements Store. The stream goes to DIR/tmp/<id>.<token>-<n> through
// an erasure.Verifier; the file is fsynced, renamed to its shard path, the
// fan-out directory fsynced, and the index entry committed with a synced
// write — only then does Put return. A failure before the rename leaves
// nothing (the temporary file is removed); a failure after it removes the
// shard altogether, so neither a stale index entry nor an unindexed file
// survives it.
func (d *Disk) Put(ctx context.Context, id string, r io.Reader) (Info, error) {
	if err := ValidateID(id); err != nil {
		return Info{}, fmt.Errorf("put shard: %w", err)
	}
	info, err := d.put(ctx, id, r)
	if err != nil {
		return Info{}, fmt.Errorf("put shard %s: %w", id, classify(err))
	}
	return info, nil
}

func (d *Disk) put(ctx context.Context, id string, r io.Reader) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if err := d.enter(func() error { return nil }); err != nil {
		return Info{}, err
	}
	w := &spill{d: d, id: id}
	defer w.release()
	if d.cfg.InlineMax < 0 || d.lowOnSpace() {
		if err := w.spill(); err != nil {
			return Info{}, err
		}
	} else {
		w.buf = d.spills.Get().(*[]byte)
	}
	budget := int64(-1)
	if d.cfg.Limit > 0 {
		budget = max(d.cfg.Limit-d.used.Load(), 0)
	}
	bp := d.bufs.Get().(*[]byte)
	in, err := ingest(ctx, id, r, w, *bp, budget)
	d.bufs.Put(bp)
	if err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	e := entry{lay: in.lay, sum: in.sum, created: time.Unix(0, d.cfg.Now().UnixNano()).UTC()}
	if w.f == nil {
		e.inline = true
		return e.info(id), d.publishInline(id, e, *w.buf)
	}
	if err := w.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync: %w", err)
	}
	if fi, err := w.f.Stat(); err == nil {
		e.ino = inode(fi)
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return Info{}, fmt.Errorf("close: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	return e.info(id), d.publishFile(id, e, w)
}

// inlineReserve is the free space below which Put stops storing shards
// inline: pebble treats a failed WAL write as fatal, while a shard file
// that meets a full disk fails with ErrFull and keeps the node up.
const inlineReserve = 64 << 20

// lowOnSpace reports whether the data directory's device is below
// inlineReserve (or the store below it under Limit). The device is asked
// (statfs) at most once a second, not on every Put: a reserve of 64 MiB
// outlasts a second of small shards.
func (d *Disk) lowOnSpace() bool {
	if d.cfg.Limit > 0 && d.cfg.Limit-d.used.Load() < inlineReserve {
		return true
	}
	now := d.cfg.Now().UnixNano()
	if last := d.spaceChecked.Load(); last != 0 && now-last < int64(time.Second) && now >= last {
		return d.spaceLow.Load()
	}
	du, err := d.fs.GetDiskUsage(d.dir)
	d.spaceLow.Store(err != nil || du.AvailBytes < inlineReserve)
	d.spaceChecked.Store(now)
	return d.spaceLow.Load()
}

// spill is where Put writes a shard: a pooled buffer while the shard fits
// in InlineMax, then a temporary file (named uniquely for this Put) holding
// everything written so far and the rest.
type spill struct {
	d         *Disk
	id        string
	buf       *[]byte // inline bytes; nil once spilled (or never, with InlineMax < 0)
	f         vfs.File
	tmp       string
	published bool // the temporary file was renamed into place
}

func (w *spill) Write(p []byte) (int, error) {
	if w.f == nil && w.buf != nil && len(*w.buf)+len(p) <= w.d.cfg.InlineMax {
		*w.buf = append(*w.buf, p...)
		return len(p), nil
	}
	if w.f == nil {
		if err := w.spill(); err != nil {
			return 0, err
		}
	}
	return w.f.Write(p)
}

// spill creates the temporary file and moves the buffered bytes into it.
func (w *spill) spill() error {
	w.tmp = filepath.Join(w.d.dir, "tmp", fmt.Sprintf("%s.%s-%d", w.id, w.d.token, w.d.seq.Add(1)))
	f, err := w.d.fs.Create(w.tmp)
	if err != nil {
		w.tmp = ""
		return err
	}
	w.f = f
	if w.buf != nil {
		_, err := f.Write(*w.buf)
		*w.buf = (*w.buf)[:0]
		w.d.spills.Put(w.buf)
		w.buf = nil
		return err
	}
	return nil
}

// release returns the buffer to its pool, and closes and removes the
// temporary file unless it was published.
func (w *spill) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		w.d.spills.Put(w.buf)
		w.buf = nil
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.tmp != "" && !w.published {
		_ = w.d.fs.Remove(w.tmp)
	}
}

// publishInline commits an inline shard: entry and bytes in one synced
// batch, which either replaces the old shard entirely or leaves it as it
// was. An old shard file is removed after the commit; a crash before its
// removal leaves a file beside an inline entry, which reconcile deletes.
func (d *Disk) publishInline(id string, e entry, data []byte) error {
	return d.replacing(id, func(old entry, hadOld, rotten bool) error {
		b := d.db.NewBatch()
		_ = b.Set(shardKey(id), e.encode(), nil)
		_ = b.Set(dataKey(id), data, nil)
		_ = b.Delete(badKey(id), nil)
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if (hadOld && !old.inline) || rotten {
			_ = d.fs.Remove(d.shardPath(id))
		}
		d.account(old, hadOld, e)
		return nil
	})
}

// publishFile renames w's synced temporary file into place and commits its
// entry.
func (d *Disk) publishFile(id string, e entry, w *spill) error {
	return d.replacing(id, func(old entry, hadOld, rotten bool) error {
		final := d.shardPath(id)
		if err := d.fs.Rename(w.tmp, final); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		w.published = true
		// The directory fsync and the index commit are independent: run them
		// together and acknowledge when both are durable. A crash in between
		// leaves one without the other, which reconcile resolves (an entry
		// whose file is missing or is another inode; a file without an entry).
		dirDone := make(chan error, 1)
		go func() { dirDone <- d.syncDir(filepath.Dir(final)) }()
		b := d.db.NewBatch()
		_ = b.Set(shardKey(id), e.encode(), nil)
		_ = b.Delete(badKey(id), nil)
		if (hadOld && old.inline) || rotten {
			_ = b.Delete(dataKey(id), nil)
		}
		err := b.Commit(pebble.Sync)
		if derr := <-dirDone; err == nil {
			err = derr
		}
		if err != nil {
			// The new file is in place but not durably indexed: withdraw the
			// shard entirely rather than serve it with a stale entry.
			d.withdraw(id, final, old, hadOld)
			return fmt.Errorf("publish: %w", err)
		}
		d.account(old, hadOld, e)
		return nil
	})
}

// replacing runs fn inside enter under id's lock, with the entry id has
// now (oldEntry): the frame of every change to a shard's entry.
func (d *Disk) replacing(id string, fn func(old entry, hadOld, rotten bool) error) error {
	return d.enter(func() error {
		mu := d.lockFor(id)
		mu.Lock()
		defer mu.Unlock()
		old, hadOld, rotten, err := d.oldEntry(id)
		if err != nil {
			return err
		}
		return fn(old, hadOld, rotten)
	})
}

// account updates the running totals for e replacing old (if hadOld).
func (d *Disk) account(old entry, hadOld bool, e entry) {
	if hadOld {
		d.shards.Add(-1)
		d.used.Add(-old.lay.size)
	}
	d.shards.Add(1)
	d.used.Add(e.lay.size)
}

// withdraw removes id's file and index entry after a failed publish (best
// effort: the disk is misbehaving). Called with id's lock held.
func (d *Disk) withdraw(id, path string, old entry, hadOld bool) {
	_ = d.fs.Remove(path)
	_ = d.syncDir(filepath.Dir(path))
	if d.dropKeys(id) == nil && hadOld {
		d.shards.Add(-1)
		d.used.Add(-old.lay.size)
	}
}

// Get implements Store. The returned reader verifies each record before
// handing out its bytes and honours ctx on every record. It holds the open
// file, so it keeps reading the shard it opened even if the id is
// overwritten or deleted meanwhile.
func (d *Disk) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if err := ValidateID(id); err != nil {
		return nil, fmt.Errorf("get shard: %w", err)
	}
	rc, err := d.open(ctx, id, off, n, nil)
	if err != nil {
		return nil, fmt.Errorf("get shard %s: %w", id, err)
	}
	return rc, nil
}

// open opens a verified reader of [off, off+n) of id; wait paces file reads.
func (d *Disk) open(ctx context.Context, id string, off, n int64, wait func(context.Context, int64) error) (*recordStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, data, f, err := d.locate(id, func(p string) (rawFile, error) { return d.fs.Open(p) })
	if err != nil {
		return nil, err
	}
	first, end, length, err := e.lay.span(off, n)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, err
	}
	var (
		src    io.Reader
		closer io.Closer
	)
	if e.inline {
		src = bytes.NewReader(data[off : off+length])
	} else {
		src, closer = io.NewSectionReader(f, off, length), f
	}
	s := newRecordStream(ctx, id, src, closer, e.lay, first, end, length, &d.readBufs)
	s.wait = wait
	return s, nil
}

// locate reads id's entry and, under the same hold of id's read lock (so
// no overwrite comes between them), its inline bytes or its file opened
// with openFile. ErrNotFound when id has no entry, or its file is missing.
func (d *Disk) locate(id string, openFile func(string) (rawFile, error)) (e entry, data []byte, f rawFile, err error) {
	ok := false
	err = d.enter(func() error {
		mu := d.lockFor(id)
		mu.RLock()
		defer mu.RUnlock()
		var err error
		e, ok, err = d.readEntry(id)
		if err != nil || !ok {
			return err
		}
		if e.inline {
			data, err = d.readInline(id, e)
			return err
		}
		f, err = openFile(d.shardPath(id))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: indexed but its file is missing", ErrNotFound)
		}
		return err
	})
	if err == nil && !ok {
		err = ErrNotFound
	}
	return e, data, f, err
}

// dropKeys deletes id's entry, inline bytes and bad mark in one synced
// batch.
func (d *Disk) dropKeys(id string) error {
	b := d.db.NewBatch()
	_ = b.Delete(shardKey(id), nil)
	_ = b.Delete(dataKey(id), nil)
	_ = b.Delete(badKey(id), nil)
	return b.Commit(pebble.Sync)
}

// oldEntry is readEntry for a write that replaces or deletes id: an entry
// the index cannot read for rot (its block fails pebble's checksum) is
// rotten, not an error — the write goes ahead blind, so an overwrite or a
// delete (garbage collection) is never refused for it. The running totals
// then keep the unknown old shard's bytes until the next open.
func (d *Disk) oldEntry(id string) (old entry, ok, rotten bool, err error) {
	old, ok, err = d.readEntry(id)
	if errors.As(err, new(*CorruptError)) {
		return entry{}, false, true, nil
	}
	return old, ok, false, err
}

// readInline returns a copy of inline shard id's bytes (pebble's own
// buffer lives only until its closer is closed), checked against e's size.
func (d *Disk) readInline(id string, e entry) ([]byte, error) {
	v, closer, err := d.db.Get(dataKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: indexed inline but its bytes are missing", ErrNotFound)
	}
	if pebble.IsCorruptionError(err) {
		// Rot in the index under the bytes (pebble's block checksum): the
		// shard is lost here, for repair to re-create like a rotten file.
		return nil, &CorruptError{ID: id, Err: err}
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	if int64(len(v)) != e.lay.size {
		return nil, &CorruptError{ID: id, Err: fmt.Errorf("%w: inline shard is %d bytes, the index says %d", erasure.ErrCorruptRecord, len(v), e.lay.size)}
	}
	return bytes.Clone(v), nil
}

// Stat implements Store.
func (d *Disk) Stat(ctx context.Context, id string) (Info, error) {
	if err := ValidateID(id); err != nil {
		return Info{}, fmt.Errorf("stat shard: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("stat shard %s: %w", id, err)
	}
	var (
		e  entry
		ok bool
	)
	err := d.enter(func() (err error) {
		e, ok, err = d.readEntry(id)
		return err
	})
	if err == nil && !ok {
		err = ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat shard %s: %w", id, err)
	}
	return e.info(id), nil
}

// Delete implements Store: the file is removed, its directory fsynced, then
// the index entry deleted with a synced write. Idempotent.
func (d *Disk) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("delete shard: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete shard %s: %w", id, err)
	}
	err := d.replacing(id, func(old entry, ok, rotten bool) error {
		if rotten || (ok && old.inline) {
			// Entry and bytes go in one batch; a file beside them (an
			// inline overwrite failed to remove it, or a rotten entry's
			// kind is unknown) goes after, best effort.
			if err := d.dropKeys(id); err != nil {
				return err
			}
			if err := d.fs.Remove(d.shardPath(id)); err == nil {
				_ = d.syncDir(filepath.Dir(d.shardPath(id)))
			}
			if ok {
				d.shards.Add(-1)
				d.used.Add(-old.lay.size)
			}
			return nil
		}
		path := d.shardPath(id)
		err := d.fs.Remove(path)
		switch {
		case err == nil:
			if err := d.syncDir(filepath.Dir(path)); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrNotExist):
			if !ok {
				return nil // nothing there: the common idempotent case, no sync
			}
		default:
			return err
		}
		if err := d.dropKeys(id); err != nil {
			return err
		}
		if ok {
			d.shards.Add(-1)
			d.used.Add(-old.lay.size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete shard %s: %w", id, err)
	}
	return nil
}

// List implements Store from the index alone (it never walks the file
// system). limit ≤ 0 means DefaultListLimit.
func (d *Disk) List(ctx context.Context, prefix, after string, limit int) ([]Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list shards %q: %w", prefix, err)
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	var out []Info
	err := d.enter(func() error {
		lower := []byte(keyShard + prefix)
		if after >= prefix {
			lower = []byte(keyShard + after + "\x00")
		}
		it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upperBound(keyShard + prefix)})
		if err != nil {
			return err
		}
		for it.First(); it.Valid() && len(out) < limit; it.Next() {
			e, err := decodeEntry(it.Value())
			if err != nil {
				it.Close()
				return fmt.Errorf("index entry %q: %w", it.Key(), err)
			}
			out = append(out, e.info(string(it.Key()[len(keyShard):])))
		}
		return it.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("list shards %q after %q: %w", prefix, after, err)
	}
	return out, nil
}

// backgroundError is pebble's report of a failed flush or compaction. A
// rotten block in the index cannot be compacted away (every compaction
// over its range fails), and the stalled compactions would in time stop
// every write: the store is marked damaged, which makes it Full, so
// placement sends it nothing new while it still serves reads.
func (d *Disk) backgroundError(err error) {
	if pebble.IsCorruptionError(err) {
		d.damaged.Store(true)
	}
}

// Usage implements Store from the running totals and one statfs call.
func (d *Disk) Usage(ctx context.Context) (Usage, error) {
	if err := ctx.Err(); err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", d.dir, err)
	}
	du, err := d.fs.GetDiskUsage(d.dir)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", d.dir, err)
	}
	u := Usage{Shards: d.shards.Load(), Used: d.used.Load(), Free: int64(du.AvailBytes)}
	capacity := int64(du.TotalBytes)
	if d.cfg.Limit > 0 {
		capacity = d.cfg.Limit
		u.Free = min(u.Free, max(d.cfg.Limit-u.Used, 0))
	}
	threshold := d.cfg.FullThreshold
	if threshold == 0 {
		threshold = min(1<<30, capacity/20)
	}
	u.Full = threshold > 0 && u.Free < threshold
	u.Capacity = capacity
	if d.damaged.Load() {
		u.Damaged, u.Full = true, true
	}
	return u, nil
}

// inode returns fi's inode number, or 0 when the FS does not expose one.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
