package httpapi

import (
	"math"
	"strings"
)

// byteRange is a satisfiable range of an object: length > 0 bytes from start.
type byteRange struct {
	start, length int64
}

// parseRange interprets a Range header against an object of size bytes.
//
// It returns ok=false (serve the whole object with 200) when the header is
// empty or not syntactically one of "bytes=a-b", "bytes=a-" and "bytes=-n"
// (multiple ranges, b < a, other units, signs and garbage included), as S3
// does. A well-formed range whose first byte lies at or past the end, or a
// suffix of zero bytes, returns ErrInvalidRange. Otherwise the range is
// clamped to the object: 0 ≤ start, length ≥ 1, start+length ≤ size.
func parseRange(header string, size int64) (br byteRange, ok bool, err error) {
	const unit = "bytes="
	header = strings.TrimSpace(header)
	if len(header) < len(unit) || !strings.EqualFold(header[:len(unit)], unit) {
		return byteRange{}, false, nil
	}
	spec := strings.TrimSpace(header[len(unit):])
	first, last, found := strings.Cut(spec, "-")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix: the last n bytes
		n, ok := parseDigits(last)
		if !ok {
			return byteRange{}, false, nil
		}
		if n == 0 || size <= 0 {
			return byteRange{}, false, ErrInvalidRange
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, true, nil
	}
	a, ok := parseDigits(first)
	if !ok {
		return byteRange{}, false, nil
	}
	b := int64(math.MaxInt64)
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return byteRange{}, false, nil
		}
	}
	if a >= size {
		return byteRange{}, false, ErrInvalidRange
	}
	b = min(b, size-1)
	return byteRange{start: a, length: b - a + 1}, true, nil
}

// parseDigits parses a non-empty run of ASCII digits, saturating at
// math.MaxInt64 (a position that large is past any object's end).
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			v = math.MaxInt64
			continue
		}
		v = v*10 + d
	}
	return v, true
}

// parseCopyRange interprets x-amz-copy-source-range, which S3 accepts only as
// "bytes=a-b" with a ≤ b < size.
func parseCopyRange(header string, size int64) (byteRange, error) {
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found {
		return byteRange{}, detail(ErrInvalidArgument, "the x-amz-copy-source-range value must be of the form bytes=first-last")
	}
	first, last, _ := strings.Cut(spec, "-")
	a, okA := parseDigits(first)
	b, okB := parseDigits(last)
	if !okA || !okB || b < a {
		return byteRange{}, detail(ErrInvalidArgument, "the x-amz-copy-source-range value must be of the form bytes=first-last")
	}
	if b >= size {
		return byteRange{}, detail(ErrInvalidArgument, "range specified is not valid for source object of size: %d", size)
	}
	return byteRange{start: a, length: b - a + 1}, nil
}
