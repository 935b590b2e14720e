package httpapi

import (
	"net/http"
)

// MaxHeaderSection is S3's limit on the request header section: 8 KiB
// (names, values and the ": " and CRLF of every field line, Host included).
// A request over it is refused with RequestHeaderSectionTooLarge before it
// is authenticated. The listener's own limit (http.Server.MaxHeaderBytes)
// must be at least this for the S3 error to be seen; above it, net/http
// answers 431 itself.
const MaxHeaderSection = 8 << 10

// headerSectionSize is the size of r's header section as sent on the wire
// by HTTP/1.1: "Name: value\r\n" for every value, plus the Host line that
// net/http keeps out of r.Header.
func headerSectionSize(r *http.Request) int {
	n := 0
	if r.Host != "" {
		n += len("Host: \r\n") + len(r.Host)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// checkHeaderSection refuses a request whose header section exceeds
// MaxHeaderSection.
func checkHeaderSection(r *http.Request) error {
	if n := headerSectionSize(r); n > MaxHeaderSection {
		return detail(ErrHeadersTooLarge, "Your request header section is %d bytes; the maximum allowed is %d.", n, MaxHeaderSection)
	}
	return nil
}
