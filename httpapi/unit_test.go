package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/internal/s3auth"
	"github.com/shale-store/shale/object"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		header        string
		size          int64
		start, length int64
		ok            bool
		err           error
	}{
		{"", 100, 0, 0, false, nil},
		{"bytes=0-0", 100, 0, 1, true, nil},
		{"bytes=0-99", 100, 0, 100, true, nil},
		{"bytes=10-", 100, 10, 90, true, nil},
		{"bytes=-10", 100, 90, 10, true, nil},
		{"bytes=-1000", 100, 0, 100, true, nil},
		{"bytes=50-1000", 100, 50, 50, true, nil},
		{"BYTES=1-2", 100, 1, 2, true, nil},
		{" bytes= 1 - 2 ", 100, 1, 2, true, nil},
		{"bytes=99-99999999999999999999999", 100, 99, 1, true, nil},
		{"bytes=100-", 100, 0, 0, false, ErrInvalidRange},
		{"bytes=100-200", 100, 0, 0, false, ErrInvalidRange},
		{"bytes=99999999999999999999999-", 100, 0, 0, false, ErrInvalidRange},
		{"bytes=-0", 100, 0, 0, false, ErrInvalidRange},
		{"bytes=0-", 0, 0, 0, false, ErrInvalidRange},
		{"bytes=-5", 0, 0, 0, false, ErrInvalidRange},
		// Syntactically invalid: ignored.
		{"bytes=5-2", 100, 0, 0, false, nil},
		{"bytes=0-1,3-4", 100, 0, 0, false, nil},
		{"bytes=", 100, 0, 0, false, nil},
		{"bytes=-", 100, 0, 0, false, nil},
		{"bytes=a-b", 100, 0, 0, false, nil},
		{"bytes=+1-2", 100, 0, 0, false, nil},
		{"bytes=1--2", 100, 0, 0, false, nil},
		{"items=1-2", 100, 0, 0, false, nil},
		{"bytes 1-2", 100, 0, 0, false, nil},
	} {
		br, ok, err := parseRange(tc.header, tc.size)
		if ok != tc.ok || !errors.Is(err, tc.err) || (ok && (br.start != tc.start || br.length != tc.length)) {
			t.Errorf("parseRange(%q, %d) = %+v %v %v, want {%d %d} %v %v", tc.header, tc.size, br, ok, err, tc.start, tc.length, tc.ok, tc.err)
		}
	}
}

func TestParseCopyRange(t *testing.T) {
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"bytes=0-9", true}, {"bytes=5-5", true}, {"bytes=0-10", false}, {"bytes=5-", false},
		{"bytes=-5", false}, {"bytes=6-5", false}, {"0-5", false}, {"bytes=a-b", false},
	} {
		_, err := parseCopyRange(tc.header, 10)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidArgument)) {
			t.Errorf("parseCopyRange(%q) = %v, want ok=%v", tc.header, err, tc.ok)
		}
	}
}

func TestConditions(t *testing.T) {
	mod := time.Date(2024, 5, 6, 7, 8, 9, 500e6, time.UTC)
	at := func(d time.Duration) string { return mod.Add(d).Format(http.TimeFormat) }
	const etag = "abc123"
	for _, tc := range []struct {
		c    conditions
		copy bool
		want error
	}{
		{conditions{}, false, nil},
		{conditions{ifMatch: `"abc123"`}, false, nil},
		{conditions{ifMatch: `"x", W/"abc123"`}, false, nil},
		{conditions{ifMatch: `*`}, false, nil},
		{conditions{ifMatch: `"x"`}, false, ErrPreconditionFailed},
		{conditions{ifUnmodifiedSince: at(0)}, false, nil}, // same second
		{conditions{ifUnmodifiedSince: at(-time.Second)}, false, ErrPreconditionFailed},
		{conditions{ifUnmodifiedSince: "not a date"}, false, nil},
		{conditions{ifMatch: `"abc123"`, ifUnmodifiedSince: at(-time.Hour)}, false, nil},
		{conditions{ifNoneMatch: `"abc123"`}, false, ErrNotModified},
		{conditions{ifNoneMatch: `*`}, false, ErrNotModified},
		{conditions{ifNoneMatch: `"x"`}, false, nil},
		{conditions{ifModifiedSince: at(0)}, false, ErrNotModified},
		{conditions{ifModifiedSince: at(-time.Second)}, false, nil},
		{conditions{ifModifiedSince: at(time.Hour)}, false, ErrNotModified},
		{conditions{ifNoneMatch: `"x"`, ifModifiedSince: at(time.Hour)}, false, nil},
		{conditions{ifMatch: `"x"`, ifNoneMatch: `"abc123"`}, false, ErrPreconditionFailed},
		{conditions{ifNoneMatch: `"abc123"`}, true, ErrPreconditionFailed},
		{conditions{ifModifiedSince: at(time.Hour)}, true, ErrPreconditionFailed},
	} {
		if got := tc.c.check(etag, mod, tc.copy); !errors.Is(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("%+v copy=%v: %v, want %v", tc.c, tc.copy, got, tc.want)
		}
	}
}

func TestBucketNames(t *testing.T) {
	for _, name := range []string{"abc", "my-bucket", "my.bucket.name", "a1b", "123", strings.Repeat("a", 63), "1.2.3.4.5"} {
		if err := checkBucketName(name); err != nil {
			t.Errorf("%q rejected: %v", name, err)
		}
	}
	for _, name := range []string{"", "ab", strings.Repeat("a", 64), "ABC", "a_b", "-ab", "ab-", ".ab", "ab.", "a..b",
		"a.-b", "a-.b", "10.0.0.1", "xn--ab", "sthree-ab", "ab-s3alias", "ab--ol-s3", "a b", "ab/c", "äbc"} {
		if err := checkBucketName(name); !errors.Is(err, ErrInvalidBucketName) {
			t.Errorf("%q accepted (%v)", name, err)
		}
	}
}

func TestKeys(t *testing.T) {
	if err := checkKey(strings.Repeat("k", 1024)); err != nil {
		t.Errorf("1024-byte key: %v", err)
	}
	if err := checkKey(strings.Repeat("é", 513)); !errors.Is(err, ErrKeyTooLong) { // 1026 bytes
		t.Errorf("1026-byte key: %v", err)
	}
	if err := checkKey("a\xffb"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestParseCopySource(t *testing.T) {
	for _, tc := range []struct{ in, bucket, key string }{
		{"src-bucket/a/b", "src-bucket", "a/b"},
		{"/src-bucket/a%20b%3Fc", "src-bucket", "a b?c"},
		{"src-bucket/k?versionId=null", "src-bucket", "k"},
		{"src-bucket/a+b", "src-bucket", "a+b"},
	} {
		b, k, err := parseCopySource(tc.in)
		if err != nil || b != tc.bucket || k != tc.key {
			t.Errorf("parseCopySource(%q) = %q %q %v", tc.in, b, k, err)
		}
	}
	for _, in := range []string{"", "src-bucket", "src-bucket/", "/src-bucket", "BAD/k", "src-bucket/%zz",
		"src-bucket/k?versionId=123", "src-bucket/k?versionId="} { // only "null" exists
		if _, _, err := parseCopySource(in); err == nil {
			t.Errorf("parseCopySource(%q) accepted", in)
		}
	}
}

func TestStripAWSChunked(t *testing.T) {
	for in, want := range map[string]string{"": "", "gzip": "gzip", "aws-chunked": "", "aws-chunked,gzip": "gzip", "gzip, AWS-CHUNKED": "gzip"} {
		if got := stripAWSChunked(in); got != want {
			t.Errorf("stripAWSChunked(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorTable: every sentinel of object, s3auth and httpapi that a
// request can meet has its own row; wrapping keeps the mapping; unknown
// errors are 500. (The object layer's translation of meta's sentinels is
// object's TestFrontErr; TestNoMetaLeaderIsSlowDown runs it end to end.)
func TestErrorTable(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   string
		status int
	}{
		{object.ErrNoSuchBucket, "NoSuchBucket", 404},
		{object.ErrBucketExists, "BucketAlreadyOwnedByYou", 409},
		{object.ErrBucketNotEmpty, "BucketNotEmpty", 409},
		{object.ErrNoSuchKey, "NoSuchKey", 404},
		{object.ErrNoSuchUpload, "NoSuchUpload", 404},
		{object.ErrInvalidArgument, "InvalidArgument", 400},
		{object.ErrPreconditionFailed, "PreconditionFailed", 412},
		{object.ErrConflict, "OperationAborted", 409},
		{object.ErrQuorum, "SlowDown", 503},
		{object.ErrUnavailable, "SlowDown", 503},
		{object.ErrNoPlacement, "SlowDown", 503},
		{object.ErrBusy, "SlowDown", 503},
		{object.ErrBadDigest, "BadDigest", 400},
		{object.ErrIncompleteBody, "IncompleteBody", 400},
		{object.ErrInvalidPart, "InvalidPart", 400},
		{object.ErrInvalidPartOrder, "InvalidPartOrder", 400},
		{object.ErrEntityTooSmall, "EntityTooSmall", 400},
		{object.ErrInvalidRange, "InvalidRange", 416},
		{object.ErrUnreadable, "InternalError", 500},
		{s3auth.ErrMissingAuth, "AccessDenied", 403},
		{s3auth.ErrMalformedAuth, "AuthorizationHeaderMalformed", 400},
		{s3auth.ErrUnknownAccessKey, "InvalidAccessKeyId", 403},
		{s3auth.ErrSignatureMismatch, "SignatureDoesNotMatch", 403},
		{s3auth.ErrContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400},
		{s3auth.ErrExpired, "AccessDenied", 403},
		{s3auth.ErrSkew, "RequestTimeTooSkewed", 403},
		{s3auth.ErrRegion, "AuthorizationHeaderMalformed", 400},
		{s3auth.ErrBadDigest, "BadDigest", 400},
		{s3auth.ErrInvalidDigest, "InvalidDigest", 400},
		{&s3auth.ChecksumError{Algorithm: "CRC32"}, "BadDigest", 400},
		{s3auth.ErrInvalidChecksum, "InvalidRequest", 400},
		{s3auth.ErrIncompleteBody, "IncompleteBody", 400},
		{s3auth.ErrMalformedChunk, "IncompleteBody", 400},
		{s3auth.ErrUnsupported, "NotImplemented", 501},
		{ErrMalformedXML, "MalformedXML", 400},
		{ErrMessageTooLarge, "MaxMessageLengthExceeded", 400},
		{ErrInvalidBucketName, "InvalidBucketName", 400},
		{ErrKeyTooLong, "KeyTooLongError", 400},
		{ErrInvalidArgument, "InvalidArgument", 400},
		{ErrInvalidRequest, "InvalidRequest", 400},
		{ErrInvalidRange, "InvalidRange", 416},
		{ErrInvalidPartNumber, "InvalidPartNumber", 416},
		{ErrPreconditionFailed, "PreconditionFailed", 412},
		{ErrNotModified, "NotModified", 304},
		{ErrNotImplemented, "NotImplemented", 501},
		{ErrMethodNotAllowed, "MethodNotAllowed", 405},
		{ErrEntityTooLarge, "EntityTooLarge", 400},
		{ErrMetadataTooLarge, "MetadataTooLarge", 400},
		{ErrHeadersTooLarge, "RequestHeaderSectionTooLarge", 400},
		{ErrCopySourceTooLarge, "InvalidRequest", 400},
		{s3auth.ErrUnsignedHeaders, "AccessDenied", 403},
		{&s3auth.UnsignedHeadersError{Names: []string{"x-amz-copy-source"}}, "AccessDenied", 403},
		{ErrInvalidLocationConstraint, "InvalidLocationConstraint", 400},
		{ErrSlowDown, "SlowDown", 503},
		{ErrRequestTimeout, "RequestTimeout", 400},
		{ErrNoCredentials, "AccessDenied", 403},
		{errors.New("disk on fire"), "InternalError", 500},
		{object.ErrMoveRefused, "InternalError", 500},
	} {
		wrapped := fmt.Errorf("outer: %w", fmt.Errorf("put shard 3 of b/k: %w", tc.err))
		got, _ := toS3(wrapped)
		if got.Code != tc.code || got.Status != tc.status || got.Message == "" {
			t.Errorf("%v → %s %d, want %s %d", tc.err, got.Code, got.Status, tc.code, tc.status)
		}
	}
	// A body error wrapped by the object layer maps to the body's code.
	err := fmt.Errorf("put b/k: %w", fmt.Errorf("read body: %w", &s3auth.ChecksumError{Algorithm: "CRC32"}))
	if got, _ := toS3(err); got.Code != "BadDigest" {
		t.Errorf("wrapped checksum error → %s", got.Code)
	}
	// Detail messages reach the client; the code stays the sentinel's.
	if got, _ := toS3(fmt.Errorf("x: %w", detail(ErrInvalidArgument, "max-keys must be %s", "positive"))); got.Code != "InvalidArgument" || got.Message != "max-keys must be positive" {
		t.Errorf("detail → %+v", got)
	}
}
