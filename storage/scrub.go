package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/internal/pace"
)

// ScrubConfig configures a Scrubber.
type ScrubConfig struct {
	// Rate is the read rate in bytes per second, so that scrubbing never
	// takes the disk from foreground traffic. Zero or negative: unlimited.
	// The node's default (cmd) is a few tens of MB/s.
	Rate int64
	// Interval is the pause between the end of one pass over every shard
	// and the start of the next. Default 24h.
	Interval time.Duration
	// OnBad, if set, is called (from the scrubbing goroutine) for every shard
	// found bad: err is a *CorruptError, or wraps ErrNotFound when the
	// indexed file is missing. The node reports these to meta for repair.
	OnBad func(id string, err error)
	// Limiter, if set, is used instead of a new one built from Rate, so that
	// several background tasks can share one budget.
	Limiter *pace.Limiter
}

// ScrubStats summarises one pass.
type ScrubStats struct {
	Shards int   `json:"shards"` // shards checked
	Bytes  int64 `json:"bytes"`  // bytes read
	Bad    int   `json:"bad"`    // shards found bad in this pass
}

// BadShard is a shard the scrubber found bad; it stays marked (in the index)
// until the shard is overwritten or deleted.
type BadShard struct {
	ID    string    `json:"id"`
	Found time.Time `json:"found"`
	Err   string    `json:"err"`
}

// Scrubber walks every shard of a Disk through its index, verifying each at a
// bounded rate, and marks bad ones in the index. One Scrubber runs one pass
// at a time.
type Scrubber struct {
	d   *Disk
	cfg ScrubConfig
	lim *pace.Limiter

	mu   sync.Mutex // serialises passes
	last ScrubStats
}

// NewScrubber returns a scrubber for store.
func NewScrubber(store *Disk, cfg ScrubConfig) *Scrubber {
	if cfg.Interval <= 0 {
		cfg.Interval = 24 * time.Hour
	}
	lim := cfg.Limiter
	if lim == nil {
		lim = pace.New(pace.Config{Rate: cfg.Rate, Now: store.cfg.Now})
	}
	return &Scrubber{d: store, cfg: cfg, lim: lim}
}

// Run scrubs every shard, waits Interval, and again, until ctx is done (it
// then returns ctx.Err()) or the store is closed (ErrClosed). A pass that
// fails for another reason (the index is unreadable) is retried after
// Interval; that error is not returned.
func (s *Scrubber) Run(ctx context.Context) error {
	for {
		_, err := s.ScrubOnce(ctx)
		if errors.Is(err, ErrClosed) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.NewTimer(s.cfg.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ScrubOnce makes one pass over every shard in id order and returns what it
// saw. It stops early, with the error, when ctx is done or the store closed.
// Shards deleted or replaced during the pass are skipped or checked as they
// are when reached.
func (s *Scrubber) ScrubOnce(ctx context.Context) (ScrubStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st ScrubStats
	after := ""
	for {
		page, err := s.d.List(ctx, "", after, 256)
		if err != nil {
			return st, fmt.Errorf("scrub %s: %w", s.d.dir, err)
		}
		if len(page) == 0 {
			break
		}
		for _, in := range page {
			n, err := s.d.scrubShard(ctx, in.ID, s.lim.Wait)
			st.Bytes += n
			switch {
			case err == nil:
				st.Shards++
			case errors.Is(err, errGone):
			case isBad(err):
				st.Shards++
				st.Bad++
				if s.cfg.OnBad != nil {
					s.cfg.OnBad(in.ID, err)
				}
			default:
				return st, fmt.Errorf("scrub %s: shard %s: %w", s.d.dir, in.ID, err)
			}
		}
		after = page[len(page)-1].ID
	}
	s.last = st
	return st, nil
}

// Last returns the stats of the last complete pass.
func (s *Scrubber) Last() ScrubStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Bad lists the ids the scrubber has marked bad (in id order).
func (s *Scrubber) Bad() []string {
	bad, _ := s.d.BadShards(context.Background())
	ids := make([]string, len(bad))
	for i, b := range bad {
		ids[i] = b.ID
	}
	return ids
}

// errGone: the shard was deleted between listing and checking it.
var errGone = errors.New("shard deleted during scrub")

func isBad(err error) bool {
	var ce *CorruptError
	return errors.As(err, &ce) || errors.Is(err, ErrNotFound)
}

// scrubShard reads id in full through the verifying reader, pacing reads
// with wait, and marks it bad when it fails. It returns the bytes read and
// the shard's fault (*CorruptError, or ErrNotFound for a missing file), or
// errGone, or another error (ctx, I/O).
func (d *Disk) scrubShard(ctx context.Context, id string, wait func(context.Context, int64) error) (int64, error) {
	before, ok, err := d.entryOf(id)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, errGone
	}
	rs, err := d.open(ctx, id, 0, -1, wait)
	if err != nil {
		if errors.As(err, new(*CorruptError)) { // an inline shard's bytes are the wrong size
			return 0, d.markBad(id, before, err)
		}
		if errors.Is(err, ErrNotFound) {
			if _, ok, _ := d.entryOf(id); !ok {
				return 0, errGone
			}
			return 0, d.markBad(id, before, fmt.Errorf("scrub shard %s: %w", id, err))
		}
		return 0, err
	}
	defer rs.Close()
	n, err := io.Copy(io.Discard, rs)
	var ce *CorruptError
	if errors.As(err, &ce) {
		return n, d.markBad(id, before, err)
	}
	if err != nil {
		return n, err
	}
	// The file may be longer than the index says (the scrub reads only the
	// indexed bytes): compare sizes too.
	if f, ok := rs.closer.(vfs.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Size() != before.lay.size {
			return n, d.markBad(id, before, &CorruptError{ID: id, Err: fmt.Errorf("file is %d bytes, index says %d", fi.Size(), before.lay.size)})
		}
	}
	return n, nil
}

// entryOf reads id's entry with the store open.
func (d *Disk) entryOf(id string) (e entry, ok bool, err error) {
	err = d.enter(func() (err error) {
		e, ok, err = d.readEntry(id)
		return err
	})
	return e, ok, err
}

// markBad records the fault of the shard described by was, unless the id was
// replaced or deleted meanwhile (the new shard is not the bad one). It
// returns fault.
func (d *Disk) markBad(id string, was entry, fault error) error {
	replaced := false
	err := d.enter(func() error {
		mu := d.lockFor(id)
		mu.Lock()
		defer mu.Unlock()
		now, ok, err := d.readEntry(id)
		if err != nil {
			return err
		}
		if !ok || now.ino != was.ino || now.sum != was.sum || now.lay != was.lay {
			replaced = true
			return nil
		}
		v := binary.LittleEndian.AppendUint64(nil, uint64(d.cfg.Now().UnixNano()))
		v = append(v, fault.Error()...)
		return d.db.Set(badKey(id), v, pebble.Sync)
	})
	switch {
	case err != nil:
		return fmt.Errorf("mark shard %s bad: %w (fault: %w)", id, err, fault)
	case replaced:
		return errGone
	}
	return fault
}

// BadShards lists the shards the scrubber has marked bad, in id order.
func (d *Disk) BadShards(ctx context.Context) ([]BadShard, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []BadShard
	err := d.enter(func() error {
		it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte(keyBad), UpperBound: upperBound(keyBad)})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			v := it.Value()
			b := BadShard{ID: string(it.Key()[len(keyBad):])}
			if len(v) >= 8 {
				b.Found = time.Unix(0, int64(binary.LittleEndian.Uint64(v))).UTC()
				b.Err = string(v[8:])
			}
			out = append(out, b)
		}
		return it.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("list bad shards of %s: %w", d.dir, err)
	}
	return out, nil
}
