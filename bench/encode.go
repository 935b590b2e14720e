package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/shale-store/shale/erasure"
)

// Paths measured by Encode, in the order they are run.
const (
	PathRaw            = "raw"
	PathPipeline       = "pipeline"
	PathDecode         = "decode"
	PathDecodeDegraded = "decode_degraded"
	PathMemcpy         = "memcpy"
)

// AllPaths lists every path Encode knows.
var AllPaths = []string{PathRaw, PathPipeline, PathDecode, PathDecodeDegraded, PathMemcpy}

// ErrConfig: an EncodeConfig field is out of range or names an unknown path.
var ErrConfig = errors.New("bench: invalid config")

// Coding is a k data + m parity layout.
type Coding struct {
	K int `json:"k"`
	M int `json:"m"`
}

// DefaultCodings are the layouts measured when none are configured.
var DefaultCodings = []Coding{{4, 2}, {8, 3}, {10, 4}, {12, 4}}

// DefaultBlockSizes are the block sizes measured when none are configured.
var DefaultBlockSizes = []int{64 << 10, 256 << 10, 1 << 20}

// EncodeConfig says what Encode measures. Zero fields take the defaults.
type EncodeConfig struct {
	// Codings to measure. Default DefaultCodings.
	Codings []Coding
	// BlockSizes (bytes per shard per stripe) to measure. Default DefaultBlockSizes.
	BlockSizes []int
	// Size is the object size in bytes per run. Default 64 MiB: larger than
	// the CPU caches, so the paths stream from memory as a real object would.
	Size int64
	// Runs per measurement; the median is reported. Default 5.
	Runs int
	// Procs are the GOMAXPROCS values to measure at. Default {1, NumCPU}
	// (just {1} on a one-CPU machine).
	Procs []int
	// Paths to measure, a subset of AllPaths. Default AllPaths.
	Paths []string
	// Seed makes the object's bytes. Default 1.
	Seed uint64
	// Progress, if set, is called after each measurement completes, from
	// the goroutine that called Encode.
	Progress func(EncodeProgress)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// EncodeProgress reports one finished measurement.
type EncodeProgress struct {
	Done, Total int         // measurements finished / planned
	Last        Measurement // the one just finished
}

// Measurement is the median throughput of one path.
type Measurement struct {
	K         int       `json:"k"`
	M         int       `json:"m"`
	BlockSize int       `json:"block_size"`
	Procs     int       `json:"procs"`
	Path      string    `json:"path"`
	GBps      float64   `json:"gbps"`       // median of Samples, GB/s (10^9 B/s) of object bytes
	Samples   []float64 `json:"samples"`    // GB/s of each run, in run order
	Size      int64     `json:"size_bytes"` // object bytes per run
}

func (cfg EncodeConfig) withDefaults() (EncodeConfig, error) {
	if len(cfg.Codings) == 0 {
		cfg.Codings = DefaultCodings
	}
	if len(cfg.BlockSizes) == 0 {
		cfg.BlockSizes = DefaultBlockSizes
	}
	if cfg.Size == 0 {
		cfg.Size = 64 << 20
	}
	if cfg.Runs == 0 {
		cfg.Runs = 5
	}
	if len(cfg.Procs) == 0 {
		cfg.Procs = []int{1}
		if n := runtime.NumCPU(); n > 1 {
			cfg.Procs = append(cfg.Procs, n)
		}
	}
	if len(cfg.Paths) == 0 {
		cfg.Paths = AllPaths
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Size < 0 || cfg.Size > 1<<34 || cfg.Runs < 1 {
		return cfg, fmt.Errorf("%w: size %d, runs %d", ErrConfig, cfg.Size, cfg.Runs)
	}
	for _, p := range cfg.Procs {
		if p < 1 {
			return cfg, fmt.Errorf("%w: procs %d", ErrConfig, p)
		}
	}
	for _, p := range cfg.Paths {
		if !slices.Contains(AllPaths, p) {
			return cfg, fmt.Errorf("%w: unknown path %q", ErrConfig, p)
		}
	}
	return cfg, nil
}

// Encode measures the configured paths for every coding × block size ×
// GOMAXPROCS and returns one Measurement per path, in that order. It sets
// GOMAXPROCS while it runs and restores it before returning, so it must not
// run beside other benchmarks in the same process. It stops with ctx's error
// between runs.
func Encode(ctx context.Context, cfg EncodeConfig) ([]Measurement, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	src := objectBytes(cfg.Seed, cfg.Size)
	total := len(cfg.Codings) * len(cfg.BlockSizes) * len(cfg.Procs) * len(cfg.Paths)
	out := make([]Measurement, 0, total)
	for _, cd := range cfg.Codings {
		for _, bs := range cfg.BlockSizes {
			ps, err := newPaths(cd, bs, src)
			if err != nil {
				return out, err
			}
			for _, procs := range cfg.Procs {
				runtime.GOMAXPROCS(procs)
				ms, err := ps.measure(ctx, cfg)
				if err != nil {
					return out, fmt.Errorf("bench %d+%d block %d procs %d: %w", cd.K, cd.M, bs, procs, err)
				}
				for _, m := range ms {
					m.Procs = procs
					out = append(out, m)
					if cfg.Progress != nil {
						cfg.Progress(EncodeProgress{Done: len(out), Total: total, Last: m})
					}
				}
			}
		}
	}
	return out, nil
}

func objectBytes(seed uint64, n int64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// paths holds everything the paths of one coding and block size need,
// prepared once: the codec, the object laid out as raw stripes, its encoded
// shard streams.
type paths struct {
	cd      Coding
	bs      int
	src     []byte
	codec   *erasure.Codec
	stripes [][][]byte // raw: per stripe k data views into src (last one padded) + shared parity
	streams [][]byte   // encoded shard streams
	copyBuf []byte
}

func newPaths(cd Coding, bs int, src []byte) (*paths, error) {
	c, err := erasure.New(cd.K, cd.M, bs)
	if err != nil {
		return nil, fmt.Errorf("bench %d+%d block %d: %w", cd.K, cd.M, bs, err)
	}
	p := &paths{cd: cd, bs: bs, src: src, codec: c, copyBuf: make([]byte, cd.K*bs)}
	p.stripes = rawStripes(c, src)
	n := cd.K + cd.M
	bufs := make([]*bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = bytes.NewBuffer(make([]byte, 0, c.ShardSize(int64(len(src)))))
		ws[i] = bufs[i]
	}
	if _, err := c.Encode(context.Background(), bytes.NewReader(src), ws, cd.K); err != nil {
		return nil, fmt.Errorf("bench %d+%d block %d: prepare shards: %w", cd.K, cd.M, bs, err)
	}
	p.streams = make([][]byte, n)
	for i, b := range bufs {
		p.streams[i] = b.Bytes()
	}
	return p, nil
}

// rawStripes lays src out as c's stripes: full stripes' data blocks are
// views into src, the final partial stripe is a zero-padded copy laid out as
// the codec lays it out, and all stripes share one set of parity buffers.
func rawStripes(c *erasure.Codec, src []byte) [][][]byte {
	k, m, bs := c.K(), c.M(), c.BlockSize()
	sd := k * bs
	parity := make([][]byte, m)
	for i := range parity {
		parity[i] = make([]byte, bs)
	}
	var out [][][]byte
	for off := 0; off < len(src); off += sd {
		data := src[off:min(off+sd, len(src))]
		bl := bs
		if len(data) < sd {
			per := (len(data) + k - 1) / k
			bl = (per + 63) &^ 63
			padded := make([]byte, k*bl)
			copy(padded, data)
			data = padded
		}
		blocks := make([][]byte, k+m)
		for i := 0; i < k; i++ {
			blocks[i] = data[i*bl : (i+1)*bl]
		}
		for i := 0; i < m; i++ {
			blocks[k+i] = parity[i][:bl]
		}
		out = append(out, blocks)
	}
	return out
}

// run performs one run of path.
func (p *paths) run(ctx context.Context, path string) error {
	size := int64(len(p.src))
	switch path {
	case PathRaw:
		for _, st := range p.stripes {
			if err := p.codec.EncodeBlocks(st); err != nil {
				return err
			}
		}
	case PathPipeline:
		ws := make([]io.Writer, p.cd.K+p.cd.M)
		for i := range ws {
			ws[i] = io.Discard
		}
		res, err := p.codec.Encode(ctx, bytes.NewReader(p.src), ws, p.cd.K+p.cd.M)
		if err == nil && res.Size != size {
			err = fmt.Errorf("pipeline encoded %d of %d bytes", res.Size, size)
		}
		return err
	case PathDecode, PathDecodeDegraded:
		missing := 0
		if path == PathDecodeDegraded {
			missing = min(p.cd.M, p.cd.K)
		}
		open := func(_ context.Context, shard int, off, n int64) (io.ReadCloser, error) {
			if shard < missing {
				return nil, errors.New("shard missing (benchmark)")
			}
			return io.NopCloser(bytes.NewReader(p.streams[shard][off : off+n])), nil
		}
		rep, err := p.codec.Decode(ctx, io.Discard, size, 0, size, open)
		if err == nil && len(rep.Failures) != missing && size > 0 {
			err = fmt.Errorf("decode reported %d failures, want %d", len(rep.Failures), missing)
		}
		return err
	case PathMemcpy:
		for off := 0; off < len(p.src); off += len(p.copyBuf) {
			copy(p.copyBuf, p.src[off:])
		}
	}
	return nil
}

// measure runs one warm-up of every path, then cfg.Runs interleaved rounds,
// and returns the medians.
func (p *paths) measure(ctx context.Context, cfg EncodeConfig) ([]Measurement, error) {
	for _, path := range cfg.Paths {
		if err := p.run(ctx, path); err != nil {
			return nil, fmt.Errorf("%s warm-up: %w", path, err)
		}
	}
	samples := make([][]float64, len(cfg.Paths))
	for range cfg.Runs {
		for i, path := range cfg.Paths {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := cfg.Now()
			if err := p.run(ctx, path); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			samples[i] = append(samples[i], gbps(len(p.src), cfg.Now().Sub(start)))
		}
	}
	out := make([]Measurement, len(cfg.Paths))
	for i, path := range cfg.Paths {
		out[i] = Measurement{K: p.cd.K, M: p.cd.M, BlockSize: p.bs, Path: path,
			GBps: median(samples[i]), Samples: samples[i], Size: int64(len(p.src))}
	}
	return out, nil
}

func gbps(bytes int, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(bytes) / d.Seconds() / 1e9
}

// median of xs (which it does not modify); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteEncodeTable prints ms as a table, one row per measurement, with each
// path's throughput as a ratio to raw Reed-Solomon and to memcpy of the same
// coding, block size and GOMAXPROCS ("-" when that path was not measured).
func WriteEncodeTable(w io.Writer, ms []Measurement) error {
	type key struct{ k, m, bs, procs int }
	ref := map[key]map[string]float64{}
	for _, m := range ms {
		kk := key{m.K, m.M, m.BlockSize, m.Procs}
		if ref[kk] == nil {
			ref[kk] = map[string]float64{}
		}
		ref[kk][m.Path] = m.GBps
	}
	ratio := func(x float64, kk key, path string) string {
		if r, ok := ref[kk][path]; ok && r > 0 {
			return fmt.Sprintf("%.2f", x/r)
		}
		return "-"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "k+m\tblock\tprocs\tpath\tGB/s\t÷raw\t÷memcpy\t")
	for _, m := range ms {
		kk := key{m.K, m.M, m.BlockSize, m.Procs}
		fmt.Fprintf(tw, "%d+%d\t%s\t%d\t%s\t%.2f\t%s\t%s\t\n", m.K, m.M, FormatBytes(int64(m.BlockSize)), m.Procs, m.Path,
			m.GBps, ratio(m.GBps, kk, PathRaw), ratio(m.GBps, kk, PathMemcpy))
	}
	return tw.Flush()
}
