package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/internal/pace"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "Z9", "abc.0.1", "x_y-z", strings.Repeat("a", MaxIDLen), "a.b.c"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "a\\b", ".x", "_x", "-x", "a..b", "x..", "a b",
		"a\x00", "é", strings.Repeat("a", MaxIDLen+1)} {
		if err := ValidateID(id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}

// FuzzValidateID: whatever ValidateID accepts is one plain file name that
// stays inside the directory it is joined to.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"a", "..", "a/b", "a..b", "x.y", ".", strings.Repeat("z", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateID(id) != nil {
			return
		}
		dir := "/data/shards/00"
		p := filepath.Join(dir, id)
		if filepath.Dir(p) != dir || filepath.Base(p) != id || id == "." || id == ".." || len(id) > MaxIDLen {
			t.Fatalf("accepted id %q escapes or is not a plain name (joined: %q)", id, p)
		}
		if strings.ContainsAny(id, "/\\\x00") || strings.HasPrefix(id, ".") {
			t.Fatalf("accepted id %q", id)
		}
	})
}

func TestEntryRoundTrip(t *testing.T) {
	e := entry{lay: layout{size: 3*536 + 88, recLen: 536, records: 4}, sum: 0xfeedface, created: time.Unix(12, 345).UTC(), ino: 99}
	got, err := decodeEntry(e.encode())
	if err != nil || got != e {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", e, got, err)
	}
	empty := entry{created: time.Unix(0, 0).UTC()}
	if got, err := decodeEntry(empty.encode()); err != nil || got != empty {
		t.Fatalf("empty entry round trip: %+v, %v", got, err)
	}
}

// FuzzDecodeEntry: the index entry parser never panics and only accepts
// entries with a possible layout that re-encode to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(entry{lay: layout{size: 536, recLen: 536, records: 1}, sum: 1, created: time.Unix(1, 0)}.encode())
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		if !e.lay.valid() {
			t.Fatalf("accepted impossible layout %+v", e.lay)
		}
		if again, err := decodeEntry(e.encode()); err != nil || again != e {
			t.Fatalf("re-encode of %+v gave %+v, %v", e, again, err)
		}
	})
}

func TestLayoutSpan(t *testing.T) {
	l := layout{size: 3*100 + 40, recLen: 100, records: 4}
	for _, c := range []struct {
		off, n           int64
		first, end, leng int64
		ok               bool
	}{
		{0, -1, 0, 4, 340, true},
		{100, 200, 1, 3, 200, true},
		{300, -1, 3, 4, 40, true},
		{300, 40, 3, 4, 40, true},
		{340, -1, 4, 4, 0, true},
		{340, 0, 4, 4, 0, true},
		{0, 0, 0, 0, 0, true},
		{50, -1, 0, 0, 0, false},
		{0, 50, 0, 0, 0, false},
		{300, 100, 0, 0, 0, false},
		{400, -1, 0, 0, 0, false},
		{-100, 100, 0, 0, 0, false},
		{100, 1 << 62, 0, 0, 0, false},
	} {
		first, end, n, err := l.span(c.off, c.n)
		if c.ok != (err == nil) || (c.ok && (first != c.first || end != c.end || n != c.leng)) {
			t.Errorf("span(%d, %d) = %d, %d, %d, %v; want %d, %d, %d ok=%v", c.off, c.n, first, end, n, err, c.first, c.end, c.leng, c.ok)
		}
		if err != nil && !errors.Is(err, ErrRange) {
			t.Errorf("span(%d, %d) error %v is not ErrRange", c.off, c.n, err)
		}
	}
}

func TestFormatFile(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, DiskConfig{Dir: dir})
	b, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
	if err != nil || string(b) != "shale-storage 2\n" {
		t.Fatalf("FORMAT = %q, %v", b, err)
	}
	put(t, d, "keep", stripes(t, 1, 2))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := openDisk(t, DiskConfig{Dir: dir})
	if got, err := get(d2, "keep", 0, -1); err != nil || !bytes.Equal(got, stripes(t, 1, 2)) {
		t.Fatalf("reopened store lost the shard: %v", err)
	}
	if d2.Recovery().Unclean {
		t.Fatalf("clean close then open reported an unclean stop")
	}
	d2.Close()

	if err := os.WriteFile(filepath.Join(dir, "FORMAT"), []byte("shale-storage 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenDisk(DiskConfig{Dir: dir})
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "shale-storage 7") || !strings.Contains(err.Error(), "shale-storage 1") {
		t.Fatalf("open of a version-7 dir: %v; want ErrFormat naming found and supported versions", err)
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "stuff"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDisk(DiskConfig{Dir: other}); !errors.Is(err, ErrFormat) {
		t.Fatalf("open of a non-empty dir without FORMAT: %v, want ErrFormat", err)
	}
	if _, err := os.Stat(filepath.Join(other, "FORMAT")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused directory was formatted anyway")
	}
}

// TestFormatVersions: without inline shards a store is (and stays)
// version 1, which builds from before them read; opening it with inline
// shards on marks it 2 before any is written; a version-2 store opens with
// inline shards off too.
func TestFormatVersions(t *testing.T) {
	dir := t.TempDir()
	format := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "FORMAT"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	d := openDisk(t, DiskConfig{Dir: dir, InlineMax: -1})
	put(t, d, "f", stripes(t, 3, 1))
	d.Close()
	if got := format(); got != "shale-storage 1" {
		t.Fatalf("FORMAT without inline shards = %q", got)
	}
	d = openDisk(t, DiskConfig{Dir: dir})
	if got := format(); got != "shale-storage 2" {
		t.Fatalf("FORMAT after opening with inline shards = %q", got)
	}
	put(t, d, "i", stripes(t, 4, 1))
	d.Close()
	d = openDisk(t, DiskConfig{Dir: dir, InlineMax: -1})
	for _, id := range []string{"f", "i"} {
		if _, err := get(d, id, 0, -1); err != nil {
			t.Fatalf("%s in a version-2 store opened without inline shards: %v", id, err)
		}
	}
	if got := format(); got != "shale-storage 2" {
		t.Fatalf("FORMAT went back to %q", got)
	}
}

func TestFilesLandWhereDocumented(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: -1})
	s := stripes(t, 2, 3)
	put(t, d, "obj.1.2", s)
	b, err := os.ReadFile(filepath.Join(d.dir, "shards", fanout("obj.1.2"), "obj.1.2"))
	if err != nil || !bytes.Equal(b, s) {
		t.Fatalf("shard file: %v (%d bytes)", err, len(b))
	}
	checkIndexMatchesFiles(t, d)
}

func TestClosed(t *testing.T) {
	d := openDisk(t, DiskConfig{})
	s := stripes(t, 3, 1)
	put(t, d, "a", s)
	rc, err := d.Get(context.Background(), "a", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, err := d.Put(ctx, "b", bytes.NewReader(s)); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if _, err := d.Get(ctx, "a", 0, -1); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := d.Stat(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Stat after Close: %v", err)
	}
	if err := d.Delete(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete after Close: %v", err)
	}
	if _, err := d.List(ctx, "", "", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close: %v", err)
	}
	// A reader opened before Close still reads.
	b := new(bytes.Buffer)
	if _, err := b.ReadFrom(rc); err != nil || !bytes.Equal(b.Bytes(), s) {
		t.Errorf("reader opened before Close: %v", err)
	}
	rc.Close()
}

func TestLimit(t *testing.T) {
	small, big := stripes(t, 4, 2), stripes(t, 5, 10)
	limit := int64(len(small) + len(big) - 1)
	d := openDisk(t, DiskConfig{Limit: limit})
	put(t, d, "small", small)
	if _, err := d.Put(context.Background(), "big", bytes.NewReader(big)); !errors.Is(err, ErrFull) {
		t.Fatalf("Put over the limit: %v, want ErrFull", err)
	}
	if _, err := d.Stat(context.Background(), "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused shard visible: %v", err)
	}
	u, err := d.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.Free != limit-int64(len(small)) || u.Used != int64(len(small)) {
		t.Fatalf("Usage %+v, want free %d", u, limit-int64(len(small)))
	}
	if u.Full { // threshold = 5% of the limit
		t.Fatalf("Usage.Full with %d of %d free", u.Free, limit)
	}
	checkIndexMatchesFiles(t, d)

	d2 := openDisk(t, DiskConfig{Limit: limit, FullThreshold: limit + 1})
	if u, _ := d2.Usage(context.Background()); !u.Full {
		t.Fatalf("Usage.Full false with free %d below the threshold %d", u.Free, limit)
	}
	d3 := openDisk(t, DiskConfig{Limit: limit, FullThreshold: -1})
	put(t, d3, "small", small)
	if u, _ := d3.Usage(context.Background()); u.Full {
		t.Fatalf("Usage.Full with a negative threshold")
	}
}

// corruptFile flips one byte of id's shard file.
func corruptFile(t *testing.T, d *Disk, id string, off int64) {
	t.Helper()
	p := d.shardPath(id)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x20
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantCorruptAt(t *testing.T, err error, id string, stripe int64) {
	t.Helper()
	var ce *CorruptError
	var ck *erasure.ChecksumError
	if !errors.As(err, &ce) || ce.ID != id || !errors.As(err, &ck) || ck.Stripe != stripe {
		t.Fatalf("err = %v; want *CorruptError for %s naming block %d", err, id, stripe)
	}
}

func TestBitrotCaughtByGet(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: -1})
	s := stripes(t, 6, 5)
	put(t, d, "rot", s)
	corruptFile(t, d, "rot", 2*tRecord+100) // inside block 2
	rc, err := d.Get(context.Background(), "rot", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	_, err = got.ReadFrom(rc)
	rc.Close()
	wantCorruptAt(t, err, "rot", 2)
	// Only the verified records before the bad one were handed out.
	if !bytes.Equal(got.Bytes(), s[:2*tRecord]) {
		t.Fatalf("read %d bytes before the error, want exactly the 2 good records (%d)", got.Len(), 2*tRecord)
	}
	// Ranges that avoid block 2 still read; ranges over it fail.
	if b, err := get(d, "rot", 0, 2*tRecord); err != nil || !bytes.Equal(b, s[:2*tRecord]) {
		t.Fatalf("range before the bad block: %v", err)
	}
	if b, err := get(d, "rot", 3*tRecord, -1); err != nil || !bytes.Equal(b, s[3*tRecord:]) {
		t.Fatalf("range after the bad block: %v", err)
	}
	_, err = get(d, "rot", 2*tRecord, tRecord)
	wantCorruptAt(t, err, "rot", 2)
	// A corrupt header is caught too.
	put(t, d, "rot2", s)
	corruptFile(t, d, "rot2", 4*tRecord+3)
	_, err = get(d, "rot2", 0, -1)
	wantCorruptAt(t, err, "rot2", 4)
}

func TestMemCorrupt(t *testing.T) {
	m := NewMem(MemConfig{})
	s := stripes(t, 7, 3)
	put(t, m, "x", s)
	if err := m.Corrupt("x", tRecord+erasure.RecordHeaderSize+1); err != nil {
		t.Fatal(err)
	}
	_, err := get(m, "x", 0, -1)
	wantCorruptAt(t, err, "x", 1)
	if err := m.Corrupt("nope", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Corrupt(nope): %v", err)
	}
}

// fakeClock advances only when a limiter sleeps on it.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.now = c.now.Add(d)
	return nil
}

func TestScrubber(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: -1})
	good, bad, gone := stripes(t, 8, 4), stripes(t, 9, 4), stripes(t, 10, 2)
	put(t, d, "good", good)
	put(t, d, "bad", bad)
	put(t, d, "gone", gone)
	corruptFile(t, d, "bad", 3*tRecord+7)
	if err := os.Remove(d.shardPath("gone")); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Unix(0, 0)}
	const rate = 1000 // bytes per (fake) second
	lim := pace.New(pace.Config{Rate: rate, Burst: 100, Now: clock.Now, Sleep: clock.Sleep})
	reported := map[string]error{}
	sc := NewScrubber(d, ScrubConfig{Limiter: lim, OnBad: func(id string, err error) { reported[id] = err }})
	st, err := sc.ScrubOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Shards != 3 || st.Bad != 2 {
		t.Fatalf("stats %+v, want 3 shards, 2 bad", st)
	}
	wantCorruptAt(t, reported["bad"], "bad", 3)
	if !errors.Is(reported["gone"], ErrNotFound) {
		t.Fatalf("missing file reported as %v", reported["gone"])
	}
	if _, ok := reported["good"]; ok {
		t.Fatalf("good shard reported bad")
	}
	if got := strings.Join(sc.Bad(), ","); got != "bad,gone" {
		t.Fatalf("Bad() = %q", got)
	}
	// Pacing: every byte read went through the limiter at `rate`, so the
	// fake clock moved by at least (bytes - burst) / rate.
	if min := time.Duration(float64(st.Bytes-100) / rate * float64(time.Second)); clock.now.Sub(time.Unix(0, 0)) < min || st.Bytes < int64(len(good)) {
		t.Fatalf("scrub of %d bytes took %v of paced time, want ≥ %v", st.Bytes, clock.now.Sub(time.Unix(0, 0)), min)
	}
	// Marks survive a restart, and are cleared by an overwrite or delete.
	dir := d.dir
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDisk(t, DiskConfig{Dir: dir, InlineMax: -1})
	bads, err := d.BadShards(context.Background())
	if err != nil || len(bads) != 2 || bads[0].ID != "bad" || !strings.Contains(bads[0].Err, "block 3") {
		t.Fatalf("BadShards after reopen = %+v, %v", bads, err)
	}
	put(t, d, "bad", bad)
	if err := d.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	sc = NewScrubber(d, ScrubConfig{})
	if st, err := sc.ScrubOnce(context.Background()); err != nil || st.Bad != 0 || st.Shards != 2 {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
	if len(sc.Bad()) != 0 {
		t.Fatalf("marks left after overwrite/delete: %v", sc.Bad())
	}
}

func TestScrubberRunStopsWithContext(t *testing.T) {
	d := openDisk(t, DiskConfig{InlineMax: -1})
	put(t, d, "a", stripes(t, 11, 2))
	put(t, d, "b", stripes(t, 12, 2))
	corruptFile(t, d, "b", 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []string
	sc := NewScrubber(d, ScrubConfig{Interval: time.Hour, OnBad: func(id string, err error) {
		seen = append(seen, id)
		cancel() // stop the loop from inside the pass
	}})
	if err := sc.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if len(seen) != 1 || seen[0] != "b" {
		t.Fatalf("OnBad saw %v", seen)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run on a closed store = %v, want ErrClosed", err)
	}
}

func TestReconcileAfterUncleanStop(t *testing.T) {
	dir := t.TempDir()
	d := openDisk(t, DiskConfig{Dir: dir, InlineMax: -1})
	keep, lost, replaced, replacement := stripes(t, 20, 2), stripes(t, 21, 2), stripes(t, 22, 3), stripes(t, 23, 3)
	put(t, d, "keep", keep)
	put(t, d, "lost", lost)
	put(t, d, "replaced", replaced)
	d.closeUnclean(t)

	// A crash inside Delete: file gone, entry left.
	if err := os.Remove(d.shardPath("lost")); err != nil {
		t.Fatal(err)
	}
	// A crash between rename and index commit of an overwrite of the same size.
	tmp := filepath.Join(dir, "tmp", "x")
	if err := os.WriteFile(tmp, replacement, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.shardPath("replaced")); err != nil {
		t.Fatal(err)
	}
	// A crash between rename and index commit of a new shard.
	orphan := stripes(t, 24, 1)
	mustWrite(t, d.shardPath("orphan"), orphan)
	// Garbage: a corrupt unindexed file, a misplaced file, a bad name, a temp file.
	mustWrite(t, d.shardPath("torn"), orphan[:len(orphan)-5])
	mustWrite(t, filepath.Join(dir, "shards", otherFanout("misplaced"), "misplaced"), orphan)
	mustWrite(t, filepath.Join(dir, "shards", "00", ".hidden"), orphan)
	mustWrite(t, filepath.Join(dir, "tmp", "keep.123-4"), keep[:10])
	// Something that is not ours beside the fan-out directories.
	mustWrite(t, filepath.Join(dir, "shards", "README"), []byte("operator's note"))

	d2 := openDisk(t, DiskConfig{Dir: dir, InlineMax: -1})
	// The stray file was left alone (and is set aside for the checks below).
	if err := os.Remove(filepath.Join(dir, "shards", "README")); err != nil {
		t.Fatalf("stray file: %v", err)
	}
	r := d2.Recovery()
	want := Recovery{Unclean: true, TempRemoved: 1, EntriesDropped: 1, FilesAdded: 2, FilesRemoved: 3}
	if r != want {
		t.Fatalf("Recovery = %+v, want %+v", r, want)
	}
	checkIndexMatchesFiles(t, d2)
	for id, want := range map[string][]byte{"keep": keep, "replaced": replacement, "orphan": orphan} {
		got, err := get(d2, id, 0, -1)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("after recovery %s: %v", id, err)
		}
	}
	info, err := d2.Stat(context.Background(), "replaced")
	if err != nil || info.Checksum != summaryOf(t, replacement) {
		t.Fatalf("replaced shard's entry not refreshed: %+v, %v", info, err)
	}
	for _, id := range []string{"lost", "torn", "misplaced"} {
		if _, err := d2.Stat(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after recovery: %v", id, err)
		}
	}
}

func summaryOf(t *testing.T, s []byte) uint64 {
	v := erasure.NewVerifier(-1)
	if _, err := v.Write(s); err != nil {
		t.Fatal(err)
	}
	return v.Summary()
}

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func otherFanout(id string) string {
	if fanout(id) == "00" {
		return "01"
	}
	return "00"
}

// TestFilesArePrivate: with no umask to help, every file and directory the
// store makes — FORMAT, shard files, fan-out and temporary directories, the
// pebble index — is readable by its owner only, so another local user cannot
// read shards.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "node")
	d := openDisk(t, DiskConfig{Dir: dir, InlineMax: -1})
	for i := range 20 {
		put(t, d, fmt.Sprintf("s%d", i), stripes(t, int64(i), 2))
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n++
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %04o", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20+256 {
		t.Fatalf("walked only %d entries", n)
	}
}
