package storage

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/shale-store/shale/erasure"
)

// Test streams: shard 0 of a 2+1 code with 512-byte blocks.
const (
	tK         = 2
	tBlock     = 512
	tRecord    = erasure.RecordHeaderSize + tBlock
	tStripeObj = tK * tBlock
)

// shardStream returns shard 0 of a deterministic object of size bytes.
func shardStream(t testing.TB, seed int64, size int) []byte {
	t.Helper()
	c, err := erasure.New(tK, 1, tBlock)
	if err != nil {
		t.Fatal(err)
	}
	obj := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(obj)
	bufs := []*bytes.Buffer{{}, {}, {}}
	if _, err := c.Encode(context.Background(), bytes.NewReader(obj), []io.Writer{bufs[0], bufs[1], bufs[2]}, 3); err != nil {
		t.Fatal(err)
	}
	return bufs[0].Bytes()
}

// stripes returns a stream of n full records.
func stripes(t testing.TB, seed int64, n int) []byte {
	return shardStream(t, seed, n*tStripeObj)
}

func openDisk(t testing.TB, cfg DiskConfig) *Disk {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	d, err := OpenDisk(cfg)
	if err != nil {
		t.Fatalf("OpenDisk: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func put(t testing.TB, s Store, id string, b []byte) Info {
	t.Helper()
	info, err := s.Put(context.Background(), id, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
	return info
}

func get(s Store, id string, off, n int64) ([]byte, error) {
	rc, err := s.Get(context.Background(), id, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// closeUnclean closes the index without the clean-shutdown marker, as a
// crash would leave it.
func (d *Disk) closeUnclean(t testing.TB) {
	t.Helper()
	d.state.Lock()
	defer d.state.Unlock()
	d.closed = true
	if err := d.db.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkIndexMatchesFiles fails unless the shard files on disk are exactly
// the ids indexed as files with the indexed sizes, every inline entry has
// its bytes, and DIR/tmp is empty.
func checkIndexMatchesFiles(t testing.TB, d *Disk) {
	t.Helper()
	var files []string
	root := filepath.Join(d.dir, "shards")
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			files = append(files, filepath.Base(p)+"="+itoa(fi.Size()))
			if filepath.Base(filepath.Dir(p)) != fanout(filepath.Base(p)) {
				t.Errorf("file %s in the wrong fan-out directory", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	infos, err := d.List(context.Background(), "", "", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var indexed []string
	var used int64
	for _, in := range infos {
		used += in.Size
		e, ok, err := d.readEntry(in.ID)
		if err != nil || !ok {
			t.Fatalf("entry of listed %s: %v, %v", in.ID, ok, err)
		}
		if e.inline {
			if _, err := d.readInline(in.ID, e); err != nil {
				t.Fatalf("inline shard %s: %v", in.ID, err)
			}
			continue
		}
		indexed = append(indexed, in.ID+"="+itoa(in.Size))
	}
	sort.Strings(files)
	if strings.Join(files, " ") != strings.Join(indexed, " ") {
		t.Fatalf("index and files differ:\nfiles:   %v\nindexed: %v", files, indexed)
	}
	tmp, _ := os.ReadDir(filepath.Join(d.dir, "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d temporary files left, first %s", len(tmp), tmp[0].Name())
	}
	u, err := d.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if u.Shards != int64(len(infos)) || u.Used != used {
		t.Fatalf("Usage %+v, index holds %d shards of %d bytes", u, len(infos), used)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
