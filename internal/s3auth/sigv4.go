package s3auth

import (
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	sha256 "github.com/minio/sha256-simd"
)

// Wire constants of SigV4 for S3.
const (
	algorithm       = "AWS4-HMAC-SHA256"
	algorithmV4A    = "AWS4-ECDSA-P256-SHA256"
	scopeTerminator = "aws4_request"
	serviceS3       = "s3"
	iso8601Basic    = "20060102T150405Z"
	scopeDate       = "20060102"

	// x-amz-content-sha256 values other than a hex digest.
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingPayload         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingPayloadTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSAPrefix     = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"

	// emptySHA256 is hex(sha256("")).
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// authorization is the parsed signature part of a request, from either the
// Authorization header or the presigned query.
type authorization struct {
	accessKey     string
	date          string // credential scope date, yyyymmdd
	region        string
	service       string
	signedHeaders []string // lower-case, as listed
	signature     string   // 64 lower-case hex digits
}

// scope is the credential scope string "date/region/service/aws4_request".
func (z *authorization) scope() string {
	return z.date + "/" + z.region + "/" + z.service + "/" + scopeTerminator
}

// signed is what a verified request signature leaves behind for the body:
// the chaining state for aws-chunked signatures.
type signed struct {
	accessKey   string
	key         []byte // signing key of the scope
	amzDate     string // request time, ISO 8601 basic
	scope       string
	seed        string // request signature (hex), the chunk-chain seed
	payloadHash string // x-amz-content-sha256 as used in the canonical request
	presigned   bool
}

// parseAuthorization parses an "AWS4-HMAC-SHA256 Credential=…,
// SignedHeaders=…, Signature=…" header value. Components may come in any
// order, separated by commas with optional spaces.
func parseAuthorization(v string) (*authorization, error) {
	rest, ok := strings.CutPrefix(v, algorithm)
	if !ok {
		if strings.HasPrefix(v, algorithmV4A) || strings.HasPrefix(v, "AWS ") {
			return nil, fmt.Errorf("authorization scheme %.24q: %w", v, ErrUnsupported)
		}
		return nil, fmt.Errorf("authorization scheme is not %s: %w", algorithm, ErrMalformedAuth)
	}
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return nil, fmt.Errorf("authorization: no components after algorithm: %w", ErrMalformedAuth)
	}
	var z authorization
	var haveCred, haveSH, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("authorization component %q without '=': %w", part, ErrMalformedAuth)
		}
		var err error
		switch k {
		case "Credential":
			if haveCred {
				return nil, fmt.Errorf("authorization: Credential twice: %w", ErrMalformedAuth)
			}
			haveCred = true
			err = z.parseCredential(val)
		case "SignedHeaders":
			if haveSH {
				return nil, fmt.Errorf("authorization: SignedHeaders twice: %w", ErrMalformedAuth)
			}
			haveSH = true
			z.signedHeaders, err = parseSignedHeaders(val)
		case "Signature":
			if haveSig {
				return nil, fmt.Errorf("authorization: Signature twice: %w", ErrMalformedAuth)
			}
			haveSig = true
			z.signature, err = parseSignature(val)
		default:
			err = fmt.Errorf("authorization: unknown component %q: %w", k, ErrMalformedAuth)
		}
		if err != nil {
			return nil, err
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return nil, fmt.Errorf("authorization: needs Credential, SignedHeaders and Signature: %w", ErrMalformedAuth)
	}
	return &z, nil
}

// parseCredential parses "AK/yyyymmdd/region/service/aws4_request". The
// access key may not contain '/'; region and service are checked later
// (so that a wrong region gets its own error).
func (z *authorization) parseCredential(v string) error {
	f := strings.Split(v, "/")
	if len(f) != 5 {
		return fmt.Errorf("credential %q: want AK/date/region/service/aws4_request: %w", v, ErrMalformedAuth)
	}
	if f[0] == "" || f[2] == "" || f[3] == "" {
		return fmt.Errorf("credential %q: empty field: %w", v, ErrMalformedAuth)
	}
	if _, err := time.Parse(scopeDate, f[1]); err != nil || len(f[1]) != 8 {
		return fmt.Errorf("credential %q: bad date: %w", v, ErrMalformedAuth)
	}
	if f[4] != scopeTerminator {
		return fmt.Errorf("credential %q: scope must end in %s: %w", v, scopeTerminator, ErrMalformedAuth)
	}
	z.accessKey, z.date, z.region, z.service = f[0], f[1], f[2], f[3]
	return nil
}

// parseSignedHeaders parses "host;x-amz-date". Names must be non-empty
// lower-case header tokens.
func parseSignedHeaders(v string) ([]string, error) {
	if v == "" {
		return nil, fmt.Errorf("signed headers empty: %w", ErrMalformedAuth)
	}
	hs := strings.Split(v, ";")
	for _, h := range hs {
		if h == "" {
			return nil, fmt.Errorf("signed headers %q: empty name: %w", v, ErrMalformedAuth)
		}
		for i := 0; i < len(h); i++ {
			c := h[i]
			if c >= 'A' && c <= 'Z' || !isTokenChar(c) {
				return nil, fmt.Errorf("signed headers %q: bad name %q: %w", v, h, ErrMalformedAuth)
			}
		}
	}
	return hs, nil
}

// isTokenChar reports whether c may appear in an HTTP header name.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseSignature accepts exactly 64 lower-case hex digits.
func parseSignature(v string) (string, error) {
	if len(v) != 64 {
		return "", fmt.Errorf("signature %.70q: want 64 hex digits: %w", v, ErrMalformedAuth)
	}
	for i := 0; i < len(v); i++ {
		if !isLowerHex(v[i]) {
			return "", fmt.Errorf("signature %.70q: want lower-case hex: %w", v, ErrMalformedAuth)
		}
	}
	return v, nil
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// verifySignature authenticates r by its Authorization header or presigned
// query and returns the state needed to verify the body.
func (a *Authenticator) verifySignature(r *http.Request) (*signed, error) {
	hdr := r.Header.Get("Authorization")
	query := r.URL.Query()
	_, hasQueryAlg := query["X-Amz-Algorithm"]
	switch {
	case hdr != "" && hasQueryAlg:
		return nil, fmt.Errorf("both Authorization header and X-Amz-Algorithm query: %w", ErrMalformedAuth)
	case hdr != "":
		return a.verifyHeader(r, hdr)
	case hasQueryAlg:
		return a.verifyPresigned(r, query)
	case query.Get("Signature") != "" || query.Get("AWSAccessKeyId") != "":
		return nil, fmt.Errorf("signature version 2 query: %w", ErrUnsupported)
	}
	return nil, ErrMissingAuth
}

// verifyHeader authenticates a request signed in its Authorization header.
func (a *Authenticator) verifyHeader(r *http.Request, hdr string) (*signed, error) {
	z, err := parseAuthorization(hdr)
	if err != nil {
		return nil, err
	}
	if err := a.checkScope(z); err != nil {
		return nil, err
	}
	t, amzDate, err := requestTime(r)
	if err != nil {
		return nil, err
	}
	if amzDate[:8] != z.date {
		return nil, fmt.Errorf("credential date %s differs from request date %s: %w", z.date, amzDate[:8], ErrMalformedAuth)
	}
	now := a.cfg.Now()
	if d := now.Sub(t); d > a.cfg.MaxSkew || d < -a.cfg.MaxSkew {
		return nil, fmt.Errorf("request time %s, server time %s: %w", amzDate, now.UTC().Format(iso8601Basic), ErrSkew)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return nil, fmt.Errorf("x-amz-content-sha256 header missing: %w", ErrMalformedAuth)
	}
	if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}
	return a.verifyRequest(r, z, amzDate, payload, "", false)
}

// verifyPresigned authenticates a request signed in its query.
func (a *Authenticator) verifyPresigned(r *http.Request, q url.Values) (*signed, error) {
	get := func(k string) (string, error) {
		vs := q[k]
		if len(vs) != 1 || vs[0] == "" {
			return "", fmt.Errorf("presigned query needs exactly one %s: %w", k, ErrMalformedAuth)
		}
		return vs[0], nil
	}
	alg, err := get("X-Amz-Algorithm")
	if err != nil {
		return nil, err
	}
	if alg != algorithm {
		if alg == algorithmV4A {
			return nil, fmt.Errorf("presigned algorithm %s: %w", alg, ErrUnsupported)
		}
		return nil, fmt.Errorf("presigned algorithm %q: %w", alg, ErrMalformedAuth)
	}
	var z authorization
	cred, err := get("X-Amz-Credential")
	if err != nil {
		return nil, err
	}
	if err := z.parseCredential(cred); err != nil {
		return nil, err
	}
	sh, err := get("X-Amz-SignedHeaders")
	if err != nil {
		return nil, err
	}
	if z.signedHeaders, err = parseSignedHeaders(sh); err != nil {
		return nil, err
	}
	sig, err := get("X-Amz-Signature")
	if err != nil {
		return nil, err
	}
	if z.signature, err = parseSignature(sig); err != nil {
		return nil, err
	}
	amzDate, err := get("X-Amz-Date")
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(iso8601Basic, amzDate)
	if err != nil {
		return nil, fmt.Errorf("X-Amz-Date %q: %w", amzDate, ErrMalformedAuth)
	}
	exp, err := get("X-Amz-Expires")
	if err != nil {
		return nil, err
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs < 0 || exp[0] == '+' {
		return nil, fmt.Errorf("X-Amz-Expires %q: want non-negative seconds: %w", exp, ErrMalformedAuth)
	}
	if secs > int64(MaxPresignExpiry/time.Second) {
		return nil, fmt.Errorf("X-Amz-Expires %d: must be at most %d (7 days): %w", secs, int64(MaxPresignExpiry/time.Second), ErrMalformedAuth)
	}
	if err := a.checkScope(&z); err != nil {
		return nil, err
	}
	if amzDate[:8] != z.date {
		return nil, fmt.Errorf("credential date %s differs from X-Amz-Date %s: %w", z.date, amzDate, ErrMalformedAuth)
	}
	now := a.cfg.Now()
	if t.Sub(now) > a.cfg.MaxSkew {
		return nil, fmt.Errorf("presigned X-Amz-Date %s is in the future (server time %s): %w", amzDate, now.UTC().Format(iso8601Basic), ErrSkew)
	}
	if now.After(t.Add(time.Duration(secs) * time.Second)) {
		return nil, fmt.Errorf("presigned at %s for %ds, server time %s: %w", amzDate, secs, now.UTC().Format(iso8601Basic), ErrExpired)
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = q.Get("X-Amz-Content-Sha256")
	}
	if payload == "" {
		payload = unsignedPayload
	}
	if err := checkPayloadHash(payload); err != nil {
		return nil, err
	}
	return a.verifyRequest(r, &z, amzDate, payload, "X-Amz-Signature", true)
}

// checkScope checks the parts of the credential scope we can check without
// the secret: region, service, and that host is signed.
func (a *Authenticator) checkScope(z *authorization) error {
	if z.service != serviceS3 {
		return fmt.Errorf("credential scope service %q, want %s: %w", z.service, serviceS3, ErrMalformedAuth)
	}
	if z.region != a.cfg.Region {
		return fmt.Errorf("credential scope region %q, expecting %q: %w", z.region, a.cfg.Region, ErrRegion)
	}
	hostSigned := false
	for _, h := range z.signedHeaders {
		if h == "host" {
			hostSigned = true
		}
	}
	if !hostSigned {
		return fmt.Errorf("signed headers %q must include host: %w", strings.Join(z.signedHeaders, ";"), ErrMalformedAuth)
	}
	return nil
}

// checkPayloadHash accepts the x-amz-content-sha256 values we implement.
func checkPayloadHash(v string) error {
	switch v {
	case unsignedPayload, streamingPayload, streamingPayloadTrailer, streamingUnsignedTrailer:
		return nil
	}
	if strings.HasPrefix(v, streamingECDSAPrefix) {
		return fmt.Errorf("x-amz-content-sha256 %s: %w", v, ErrUnsupported)
	}
	if len(v) == 64 {
		if _, err := hex.DecodeString(v); err == nil {
			return nil
		}
	}
	return fmt.Errorf("x-amz-content-sha256 %.70q: not a SHA-256 or a known payload type: %w", v, ErrMalformedAuth)
}

// requestTime returns the request time from X-Amz-Date (ISO 8601 basic) or,
// failing that, the Date header, together with its ISO 8601 basic form
// (which is what the string to sign carries).
func requestTime(r *http.Request) (time.Time, string, error) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		t, err := time.Parse(iso8601Basic, v)
		if err != nil {
			return time.Time{}, "", fmt.Errorf("x-amz-date %.40q: %w", v, ErrMalformedAuth)
		}
		return t, v, nil
	}
	if v := r.Header.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return time.Time{}, "", fmt.Errorf("date %.40q: %w", v, ErrMalformedAuth)
		}
		return t, t.UTC().Format(iso8601Basic), nil
	}
	return time.Time{}, "", fmt.Errorf("neither x-amz-date nor date header: %w", ErrMalformedAuth)
}

// verifyRequest looks up the secret, computes the request signature and
// compares it with the one the client sent. skipQuery names the query
// parameter left out of the canonical query (the presigned signature).
func (a *Authenticator) verifyRequest(r *http.Request, z *authorization, amzDate, payload, skipQuery string, presigned bool) (*signed, error) {
	if names := unsignedHeaders(r.Header, z.signedHeaders); len(names) > 0 {
		return nil, &UnsignedHeadersError{Names: names}
	}
	secret, ok := a.cfg.Lookup(z.accessKey)
	if !ok {
		return nil, fmt.Errorf("access key %q: %w", z.accessKey, ErrUnknownAccessKey)
	}
	query, err := canonicalQuery(r.URL.RawQuery, skipQuery)
	if err != nil {
		return nil, err
	}
	headers := canonicalHeaders(r, z.signedHeaders)
	key := signingKey(secret, z.date, z.region, z.service)
	scope := z.scope()
	wire := requestPath(r)
	canon := canonicalPath(wire)
	try := func(path string) bool {
		creq := r.Method + "\n" + path + "\n" + query + "\n" + headers + "\n" +
			strings.Join(z.signedHeaders, ";") + "\n" + payload
		return hmac.Equal([]byte(z.signature), []byte(signString(key, algorithm, amzDate, scope, hashHex([]byte(creq)))))
	}
	// Compliant clients sign the path encoded per RFC 3986; some sign the
	// path exactly as they sent it. Accept either, never a third form.
	if !try(canon) && (canon == wire || !try(wire)) {
		return nil, fmt.Errorf("access key %s: %w", z.accessKey, ErrSignatureMismatch)
	}
	return &signed{
		accessKey:   z.accessKey,
		key:         key,
		amzDate:     amzDate,
		scope:       scope,
		seed:        z.signature,
		payloadHash: payload,
		presigned:   presigned,
	}, nil
}

// exemptUnsigned is the one x-amz-* header S3 accepts without it being listed
// in the signed headers: x-amz-content-sha256, whose value is the last line
// of the canonical request (the payload hash) and is therefore covered by
// the signature anyway — changing it changes the signature. Presigners
// leave it out of X-Amz-SignedHeaders, and S3 accepts it there.
const exemptUnsigned = "x-amz-content-sha256"

// unsignedHeaders returns, lower-cased and sorted, the names of the x-amz-*
// headers in h that signed (lower-case names) does not list, apart from
// exemptUnsigned. Every header S3 acts on that a client may set (copy
// source, metadata directive, user metadata, checksums, ACLs …) is an
// x-amz-* header, so none of them can be added to a signed request or a
// presigned URL by someone who does not hold the secret. Names are compared
// case-insensitively: the server's header map may hold a name in a form
// other than its canonical one. x-amzn-* (trace ids) is a different prefix
// and is not covered, as the AWS signers leave it unsigned.
func unsignedHeaders(h http.Header, signed []string) []string {
	var out []string
	for k := range h {
		if len(k) < len("x-amz-") || !strings.EqualFold(k[:len("x-amz-")], "x-amz-") ||
			strings.EqualFold(k, exemptUnsigned) || slices.ContainsFunc(signed, func(n string) bool { return strings.EqualFold(n, k) }) {
			continue
		}
		out = append(out, strings.ToLower(k))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// signString returns hex(HMAC(key, alg\ndate\nscope\nrest)).
func signString(key []byte, alg, amzDate, scope, rest string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(alg + "\n" + amzDate + "\n" + scope + "\n" + rest))
	return hex.EncodeToString(m.Sum(nil))
}

// signingKey derives the SigV4 signing key of a scope.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, scopeTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
