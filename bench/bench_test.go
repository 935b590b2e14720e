package bench

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestEncodeSmall(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	var progress []EncodeProgress
	ms, err := Encode(context.Background(), EncodeConfig{
		Codings:    []Coding{{4, 2}, {3, 1}},
		BlockSizes: []int{64 << 10},
		Size:       3<<20 + 12345, // partial last stripe
		Runs:       3,
		Procs:      []int{1, 2},
		Progress:   func(p EncodeProgress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOMAXPROCS(0) != procs {
		t.Fatalf("GOMAXPROCS %d after Encode, was %d", runtime.GOMAXPROCS(0), procs)
	}
	if want := 2 * 2 * len(AllPaths); len(ms) != want || len(progress) != want {
		t.Fatalf("%d measurements, %d progress calls, want %d", len(ms), len(progress), want)
	}
	for i, m := range ms {
		if m.GBps <= 0 || len(m.Samples) != 3 || m.BlockSize != 64<<10 || m.Size != 3<<20+12345 {
			t.Fatalf("measurement %d: %+v", i, m)
		}
		if progress[i].Done != i+1 || progress[i].Last.Path != m.Path {
			t.Fatalf("progress %d: %+v", i, progress[i])
		}
	}
	if ms[0].K != 4 || ms[0].Procs != 1 || ms[0].Path != PathRaw || ms[len(ms)-1].K != 3 || ms[len(ms)-1].Procs != 2 {
		t.Fatalf("order: first %+v last %+v", ms[0], ms[len(ms)-1])
	}
	var buf bytes.Buffer
	if err := WriteEncodeTable(&buf, ms); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(ms)+1 || !strings.Contains(lines[1], "1.00") || !strings.Contains(lines[0], "÷memcpy") {
		t.Fatalf("table:\n%s", buf.String())
	}
}

func TestEncodeConfigAndCancel(t *testing.T) {
	for _, cfg := range []EncodeConfig{{Runs: -1}, {Procs: []int{0}}, {Paths: []string{"warp"}}, {Codings: []Coding{{0, 1}}, Size: 1000}} {
		if _, err := Encode(context.Background(), cfg); err == nil {
			t.Errorf("Encode(%+v) succeeded", cfg)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Encode(ctx, EncodeConfig{Codings: []Coding{{2, 1}}, BlockSizes: []int{64}, Size: 1000, Procs: []int{1}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1000": 1000, "64MiB": 64 << 20, "256k": 256 << 10, "1 GiB": 1 << 30, "3mb": 3 << 20, "7B": 7} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1.5M", "1T", "99999999999999999999", "9000000000000G"} {
		if _, err := ParseBytes(in); !errors.Is(err, ErrSize) {
			t.Errorf("ParseBytes(%q) = %v, want ErrSize", in, err)
		}
	}
	for n, want := range map[int64]string{256 << 10: "256KiB", 1 << 20: "1MiB", 1000: "1000B", 0: "0B", 3 << 30: "3GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"64MiB", "1", "256 k", "x", "18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			if !errors.Is(err, ErrSize) {
				t.Fatalf("ParseBytes(%q): error %v is not ErrSize", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d", s, n)
		}
		if back, err := ParseBytes(FormatBytes(n)); err != nil || back != n {
			t.Fatalf("round trip of %d via %q: %d, %v", n, FormatBytes(n), back, err)
		}
	})
}
