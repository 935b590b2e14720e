package remote

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/storage"
)

// benchShardBytes is the object size whose single shard (k=1, m=0) the
// benchmarks move: a 64 MiB shard stream plus its record headers.
const benchShardBytes = 64 << 20

// benchStream makes a valid shard stream of benchShardBytes of pseudo-random
// data in 1 MiB records.
func benchStream(b *testing.B) []byte {
	b.Helper()
	c, err := erasure.New(1, 0, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	res, err := c.Encode(context.Background(), bytes.NewReader(payload(benchShardBytes, 9)), []io.Writer{&out}, 1)
	if err != nil || res.ShardErrs[0] != nil {
		b.Fatalf("encode: %v %v", err, res.ShardErrs)
	}
	return out.Bytes()
}

func openBenchDisk(b *testing.B) *storage.Disk {
	b.Helper()
	d, err := storage.OpenDisk(storage.DiskConfig{Dir: b.TempDir(), FullThreshold: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = d.Close() })
	return d
}

// rawWrite is the baseline: create, write, fsync the file, close, fsync the
// directory (what a durable store must do at least).
func rawWrite(b *testing.B, path string, data []byte) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		b.Fatal(err)
	}
	d.Close()
}

// arm is one contender of an interleaved benchmark: op does one transfer
// of the stream.
type arm struct {
	name string
	op   func(i int)
}

// interleave runs the arms one after another in every iteration (rotating
// which goes first), so that all of them see the same background load on a
// shared machine, and reports each arm's median MB/s and the median of the
// per-iteration ratios of each arm to the first ("raw") as a percentage.
func interleave(b *testing.B, size int64, arms []arm) {
	durs := make([][]time.Duration, len(arms))
	for i := 0; i < b.N; i++ {
		for j := range arms {
			a := (i + j) % len(arms)
			start := time.Now()
			arms[a].op(i)
			durs[a] = append(durs[a], time.Since(start))
		}
	}
	mbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }
	for a := range arms {
		ds := slices.Clone(durs[a])
		slices.Sort(ds)
		b.ReportMetric(mbps(ds[len(ds)/2]), arms[a].name+"-MB/s")
		if a == 0 {
			continue
		}
		ratios := make([]float64, len(durs[a]))
		for i := range ratios {
			ratios[i] = durs[0][i].Seconds() / durs[a][i].Seconds() * 100
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], arms[a].name+"/raw-%")
	}
}

// BenchmarkPut: raw write+fsync vs storage.Disk.Put vs Put
// through the HTTP service, interleaved (see interleave).
func BenchmarkPut(b *testing.B) {
	data := benchStream(b)
	dir := b.TempDir()
	d := openBenchDisk(b)
	c := NewClient(serve(b, openBenchDisk(b), HandlerConfig{}).URL, testNode, secret, nil)
	put := func(s storage.Store) func(int) {
		return func(i int) {
			if _, err := s.Put(b.Context(), "s"+strconv.Itoa(i%2), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	interleave(b, int64(len(data)), []arm{
		{"raw", func(i int) { rawWrite(b, filepath.Join(dir, "f"+strconv.Itoa(i%2)), data) }},
		{"disk", put(d)},
		{"remote", put(c)},
	})
}

// BenchmarkGet: raw read vs storage.Disk.Get vs Get through the HTTP
// service (the node sending the file as stored, with sendfile: "remote";
// the node verifying every record, HandlerConfig.VerifyReads:
// "remote-verify") vs a bare HTTP stream from memory (page cache warm),
// interleaved.
func BenchmarkGet(b *testing.B) {
	data := benchStream(b)
	p := filepath.Join(b.TempDir(), "f")
	rawWrite(b, p, data)
	d := openBenchDisk(b)
	nd := openBenchDisk(b)
	c := NewClient(serve(b, nd, HandlerConfig{}).URL, testNode, secret, nil)
	cv := NewClient(serve(b, nd, HandlerConfig{VerifyReads: true}).URL, testNode, secret, nil)
	for _, s := range []storage.Store{d, c} {
		if _, err := s.Put(b.Context(), "s", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	// The transport's ceiling: the same bytes from memory over a bare HTTP
	// handler on loopback (no auth, no verification, no disk).
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for off := 0; off < len(data); off += 256 << 10 {
			if _, err := w.Write(data[off:min(off+256<<10, len(data))]); err != nil {
				return
			}
		}
	}))
	b.Cleanup(bare.Close)
	buf := make([]byte, 256<<10)
	drainAll := func(r io.Reader) {
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
		if err != nil || n != int64(len(data)) {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
	get := func(s storage.Store) func(int) {
		return func(int) {
			rc, err := s.Get(b.Context(), "s", 0, -1)
			if err != nil {
				b.Fatal(err)
			}
			drainAll(rc)
			rc.Close()
		}
	}
	b.ResetTimer()
	interleave(b, int64(len(data)), []arm{
		{"raw", func(int) {
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			drainAll(f)
			f.Close()
		}},
		{"disk", get(d)},
		{"remote", get(c)},
		{"remote-verify", get(cv)},
		{"http", func(int) {
			resp, err := http.Get(bare.URL)
			if err != nil {
				b.Fatal(err)
			}
			drainAll(resp.Body)
			resp.Body.Close()
		}},
	})
}
