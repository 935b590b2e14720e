package s3auth

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// requestPath returns the request path exactly as the client sent it
// (escaped, without the query). Server requests carry it in RequestURI;
// requests built in process fall back to the URL's escaped path.
func requestPath(r *http.Request) string {
	p := ""
	switch ru := r.RequestURI; {
	case strings.HasPrefix(ru, "/"):
		p, _, _ = strings.Cut(ru, "?")
	case ru != "" && ru != "*":
		if u, err := url.ParseRequestURI(ru); err == nil {
			p = u.EscapedPath()
		}
	}
	if p == "" {
		p = r.URL.EscapedPath()
	}
	if p == "" {
		p = "/"
	}
	return p
}

// canonicalPath returns the S3 canonical URI of an escaped request path:
// each '/'-separated segment percent-decoded and then URI-encoded once per
// RFC 3986 (everything but A–Z a–z 0–9 - . _ ~ becomes %XX, upper-case
// hex). S3 does not normalise the path: empty segments, "." and ".." stay.
// An encoded slash (%2F) stays inside its segment. A segment that is not
// valid percent-encoding is encoded byte for byte ('%' becomes %25).
func canonicalPath(escaped string) string {
	segs := strings.Split(escaped, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			d = s
		}
		segs[i] = uriEncode(d)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery returns the canonical query string of a raw query: every
// name=value pair (a bare name has an empty value) decoded ('+' is a
// space) and re-encoded per RFC 3986, sorted by encoded name then encoded
// value, joined by '&'. Pairs named skip (after decoding) are left out.
// Invalid percent-encoding is ErrMalformedAuth.
func canonicalQuery(raw, skip string) (string, error) {
	if raw == "" {
		return "", nil
	}
	type pair struct{ k, v string }
	var ps []pair
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", fmt.Errorf("query name %.40q: %w", k, ErrMalformedAuth)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", fmt.Errorf("query value of %.40q: %w", k, ErrMalformedAuth)
		}
		if skip != "" && dk == skip {
			continue
		}
		ps = append(ps, pair{uriEncode(dk), uriEncode(dv)})
	}
	slices.SortFunc(ps, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String(), nil
}

// uriEncode percent-encodes every byte of s except the RFC 3986 unreserved
// characters, with upper-case hex digits.
func uriEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isUnreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexd = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexd[c>>4], hexd[c&15])
		}
	}
	return string(b)
}

func isUnreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// canonicalHeaders returns "name:value\n" for each signed header in the
// order listed. Values of repeated headers are joined with ','; each value
// is trimmed and runs of spaces inside it collapsed to one. host comes from
// r.Host; content-length and transfer-encoding, which net/http may move
// out of the header map, are rebuilt from the request. A signed header the
// request lacks contributes an empty value (and so, normally, a mismatch).
func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, name := range names {
		var vals []string
		switch name {
		case "host":
			h := r.Host
			if h == "" {
				h = r.URL.Host
			}
			vals = []string{h}
		case "content-length":
			vals = r.Header.Values("Content-Length")
			if len(vals) == 0 && r.ContentLength >= 0 {
				vals = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			vals = r.Header.Values("Transfer-Encoding")
			if len(vals) == 0 {
				vals = r.TransferEncoding
			}
		default:
			vals = r.Header.Values(name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(collapseSpaces(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// collapseSpaces trims leading and trailing spaces and tabs and collapses
// each inner run of spaces to one space (tabs inside are kept, as the AWS
// signers keep them).
func collapseSpaces(v string) string {
	v = strings.Trim(v, " \t")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
