package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/shale-store/shale/object"
)

// conditions are the four conditional headers of a GET/HEAD, or the
// x-amz-copy-source-if-* headers of a copy.
type conditions struct {
	ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince string
}

func requestConditions(h http.Header) conditions {
	return conditions{
		ifMatch:           h.Get("If-Match"),
		ifNoneMatch:       h.Get("If-None-Match"),
		ifModifiedSince:   h.Get("If-Modified-Since"),
		ifUnmodifiedSince: h.Get("If-Unmodified-Since"),
	}
}

func copySourceConditions(h http.Header) conditions {
	return conditions{
		ifMatch:           h.Get("x-amz-copy-source-if-match"),
		ifNoneMatch:       h.Get("x-amz-copy-source-if-none-match"),
		ifModifiedSince:   h.Get("x-amz-copy-source-if-modified-since"),
		ifUnmodifiedSince: h.Get("x-amz-copy-source-if-unmodified-since"),
	}
}

// check evaluates c against an object with bare ETag etag, last modified at
// modified, in S3's order:
//
//  1. If-Match false → ErrPreconditionFailed.
//  2. If-Unmodified-Since, only when If-Match is absent: modified later →
//     ErrPreconditionFailed.
//  3. If-None-Match true (the ETag matches) → ErrNotModified.
//  4. If-Modified-Since, only when If-None-Match is absent: not modified
//     since → ErrNotModified.
//
// For a copy source (copy=true) the "not modified" outcomes are
// ErrPreconditionFailed as well. Unparseable dates are ignored. Times compare
// at one-second resolution, as Last-Modified carries.
func (c conditions) check(etag string, modified time.Time, copy bool) error {
	modified = modified.Truncate(time.Second)
	notModified := ErrNotModified
	if copy {
		notModified = ErrPreconditionFailed
	}
	if c.ifMatch != "" {
		if !etagMatches(c.ifMatch, etag) {
			return ErrPreconditionFailed
		}
	} else if t, err := http.ParseTime(c.ifUnmodifiedSince); c.ifUnmodifiedSince != "" && err == nil && modified.After(t) {
		return ErrPreconditionFailed
	}
	if c.ifNoneMatch != "" {
		if etagMatches(c.ifNoneMatch, etag) {
			return notModified
		}
	} else if t, err := http.ParseTime(c.ifModifiedSince); c.ifModifiedSince != "" && err == nil && !modified.After(t) {
		return notModified
	}
	return nil
}

// etagMatches reports whether the comma-separated ETag list in header names
// etag ("*" names every existing object; weak prefixes and quotes ignored).
func etagMatches(header, etag string) bool {
	for _, tok := range strings.Split(header, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "*" {
			return true
		}
		tok = strings.Trim(strings.TrimPrefix(tok, "W/"), `"`)
		if tok == etag {
			return true
		}
	}
	return false
}

// writePrecondition reads the conditional headers of a write (PutObject,
// CopyObject's destination, CompleteMultipartUpload) as S3 takes them:
// "If-None-Match: *" (create only if the key is absent) or
// "If-Match: <etag>" (replace only that version; quotes optional). S3
// accepts nothing else there: another If-None-Match value, an If-Match
// of "*" or of several ETags, and both headers at once are NotImplemented.
// If-Modified-Since and If-Unmodified-Since are ignored on writes, as S3
// does.
func writePrecondition(h http.Header) (object.Precondition, error) {
	inm := strings.TrimSpace(h.Get("If-None-Match"))
	im := strings.TrimSpace(h.Get("If-Match"))
	switch {
	case inm != "" && im != "":
		return object.Precondition{}, detail(ErrNotImplemented, "A write takes If-Match or If-None-Match, not both.")
	case inm != "" && inm != "*":
		return object.Precondition{}, detail(ErrNotImplemented, "A write takes only If-None-Match: * (create only if the key does not exist).")
	case inm == "*":
		return object.Precondition{Absent: true}, nil
	case im == "":
		return object.Precondition{}, nil
	}
	etag := strings.Trim(im, `"`)
	if etag == "" || etag == "*" || strings.ContainsAny(etag, `,"`) {
		return object.Precondition{}, detail(ErrNotImplemented, "A write takes If-Match with one ETag.")
	}
	return object.Precondition{ETag: etag}, nil
}
