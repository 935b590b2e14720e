package s3auth

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultMaxSkew is the clock skew S3 tolerates between the request time and
// the server clock.
const DefaultMaxSkew = 15 * time.Minute

// MaxPresignExpiry is the longest X-Amz-Expires S3 accepts (7 days).
const MaxPresignExpiry = 7 * 24 * time.Hour

// Config holds the settings of an Authenticator.
type Config struct {
	// Region is the only region accepted in credential scopes, for example
	// "us-east-1". Required; a request scoped to another region fails with
	// ErrRegion.
	Region string

	// Lookup returns the secret key of an access key; ok=false means the
	// key is unknown (ErrUnknownAccessKey). Required. It is called once per
	// request and must be safe for concurrent use.
	Lookup func(accessKey string) (secret string, ok bool)

	// MaxSkew is how far the request time may be from Now before the
	// request is rejected with ErrSkew. Zero means DefaultMaxSkew (15m).
	MaxSkew time.Duration

	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Authenticator verifies SigV4-signed S3 requests. It is immutable after
// New and safe for concurrent use.
type Authenticator struct {
	cfg Config
}

// New returns an Authenticator for cfg, with defaults filled in. It panics
// if cfg.Lookup is nil or cfg.Region is empty: both are programming errors.
func New(cfg Config) *Authenticator {
	if cfg.Lookup == nil {
		panic("s3auth: Config.Lookup is nil")
	}
	if cfg.Region == "" {
		panic("s3auth: Config.Region is empty")
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{cfg: cfg}
}

// Request is an authenticated request: who signed it and the body to read
// in place of http.Request.Body.
type Request struct {
	// AccessKey is the access key whose secret verified the signature.
	AccessKey string

	// Body is the decoded, verifying body; never nil (empty when the
	// request has none). It yields the object bytes (aws-chunked framing
	// removed) and, when the body is complete, checks the declared length,
	// x-amz-content-sha256, Content-MD5 and x-amz-checksum-*: a failed
	// check is returned as an error by the final Read, before io.EOF, so a
	// caller that commits only after io.EOF never stores a bad body. After
	// the first error every Read returns that error. Not safe for
	// concurrent use. The caller still closes http.Request.Body.
	Body io.Reader

	// Size is the decoded body length if known (Content-Length, or
	// x-amz-decoded-content-length for aws-chunked bodies), else -1. Body
	// yields exactly Size bytes or fails.
	Size int64

	// MD5 is the binary Content-MD5 if given, else nil. Body verifies it
	// unless the caller takes that over (CallerChecksMD5).
	MD5 []byte

	// Streaming is the x-amz-content-sha256 value when the body was
	// aws-chunked ("STREAMING-…"), else empty. httpapi uses it to know the
	// Content-Encoding must have "aws-chunked" stripped before storing.
	Streaming string

	body *verifier
}

// Checksums returns the x-amz-checksum-* values of the body keyed by
// algorithm ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256") with base64
// values. An algorithm appears when the client sent that checksum (header
// or trailer) or named it in x-amz-sdk-checksum-algorithm; the values are
// computed over the body and, where the client sent one, equal to it. The
// map is complete only after Body returned io.EOF; before that it is nil.
// The caller owns the returned map.
func (q *Request) Checksums() map[string]string {
	if q == nil || q.body == nil {
		return nil
	}
	return q.body.checksums()
}

// CallerChecksMD5 hands the Content-MD5 check to the caller, which
// compares MD5 with a hash of the same bytes it computes anyway (the
// object layer's ETag, compared with its ExpectMD5): Body then does not
// hash the body a second time. Call it before the first Read of Body.
// Without a Content-MD5 it does nothing.
func (q *Request) CallerChecksMD5() {
	if q != nil && q.body != nil {
		q.body.md5 = nil
	}
}

// Authenticate checks the request's SigV4 signature — Authorization header
// or presigned query (X-Amz-Algorithm=AWS4-HMAC-SHA256…) — and returns the
// verified identity and the body to read instead of r.Body. It reads no
// body bytes itself (so "Expect: 100-continue" is answered only after auth
// succeeded). Errors wrap one of the package's sentinels.
//
// Payload forms (x-amz-content-sha256): a hex SHA-256 (verified as the
// body streams), UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// (every chunk signature checked), STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
// (chunk and trailer signatures checked) and STREAMING-UNSIGNED-PAYLOAD-TRAILER.
// Presigned requests without the header are UNSIGNED-PAYLOAD.
func (a *Authenticator) Authenticate(r *http.Request) (*Request, error) {
	sig, err := a.verifySignature(r)
	if err != nil {
		return nil, fmt.Errorf("authenticate %s %s: %w", r.Method, r.URL.Path, err)
	}
	q, err := a.bodyFor(r, sig)
	if err != nil {
		return nil, fmt.Errorf("authenticate %s %s: %w", r.Method, r.URL.Path, err)
	}
	return q, nil
}
