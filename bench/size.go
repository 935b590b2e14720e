package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSize: a byte size string cannot be parsed.
var ErrSize = errors.New("bench: invalid size")

// ParseBytes parses a byte count: a non-negative integer with an optional
// unit, B, K/KiB, M/MiB, G/GiB (powers of 1024; case-insensitive; KB, MB, GB
// are also read as powers of 1024, as operators type them for buffer sizes).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: %q", ErrSize, s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrSize, s, err)
	}
	var shift uint
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	default:
		return 0, fmt.Errorf("%w: %q: unknown unit", ErrSize, s)
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("%w: %q: too large", ErrSize, s)
	}
	return n << shift, nil
}

// FormatBytes prints n with the largest binary unit that divides it exactly
// (e.g. "256KiB", "64MiB", "1000B").
func FormatBytes(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}
