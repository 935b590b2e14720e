package peerauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Header names used by the scheme (see the package comment).
const (
	HeaderDate      = "X-Shale-Date"
	HeaderNonce     = "X-Shale-Nonce"
	HeaderBodyHash  = "X-Shale-Content-SHA256"
	HeaderSignature = "X-Shale-Signature"
	HeaderTarget    = "X-Shale-Target"
)

// Streaming is the body-hash value for a body that is not hashed up front
// (a large or streamed body); the verifier passes such a body through
// unchecked.
const Streaming = "STREAMING"

// EmptySHA256 is the hex SHA-256 of an empty body: what a request without a
// body is signed with.
const EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// DateFormat is the layout of the X-Shale-Date header (always UTC, with
// milliseconds, so a Verifier can refuse what was signed before it started
// to within a millisecond).
const DateFormat = "2006-01-02T15:04:05.000Z"

// scheme is the first line of the string to sign; it changes with the format.
const scheme = "SHALE-HMAC-SHA256-V3"

// Signer signs outgoing requests to one target with the cluster secret. It
// is safe for concurrent use.
type Signer struct {
	secret []byte
	target string
}

// NewSigner returns a Signer for secret (copied) whose requests are
// addressed to target: the identity of the receiving service (a node's
// "node/<id>", meta's "meta"; see ValidTarget), which its Verifier must list
// in Config.Identities. A secret shorter than MinSecretLen (load secrets with
// LoadSecret) or an invalid target is a programming error and panics.
func NewSigner(secret []byte, target string) *Signer {
	if len(secret) < MinSecretLen {
		panic(ErrShortSecret)
	}
	if !ValidTarget(target) {
		panic(fmt.Sprintf("peerauth: invalid target %q", target))
	}
	return &Signer{secret: append([]byte(nil), secret...), target: target}
}

// Target is the identity this Signer addresses its requests to.
func (s *Signer) Target() string { return s.target }

// ValidTarget reports whether t can name a receiver: 1–128 characters of
// [A-Za-z0-9._:/@-].
func ValidTarget(t string) bool {
	if len(t) == 0 || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/@-", c) >= 0) {
			return false
		}
	}
	return true
}

// BodySHA256 returns the hex SHA-256 of b, the value to pass to Sign for a
// body held in memory.
func BodySHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Sign sets the authentication headers on r for the current time and a fresh
// nonce. bodySHA256Hex is the lower-case hex SHA-256 of the body that will be
// sent (EmptySHA256 for none), or Streaming. Sign must be called after r's
// method and URL are final; it does not read r.Body.
func (s *Signer) Sign(r *http.Request, bodySHA256Hex string) {
	s.SignAt(r, bodySHA256Hex, time.Now())
}

// SignAt is Sign with the date taken from t (tests and tools use it to make
// requests dated in the past or future).
func (s *Signer) SignAt(r *http.Request, bodySHA256Hex string, t time.Time) {
	var nb [16]byte
	_, _ = rand.Read(nb[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	date := t.UTC().Format(DateFormat)
	nonce := hex.EncodeToString(nb[:])
	r.Header.Set(HeaderDate, date)
	r.Header.Set(HeaderNonce, nonce)
	r.Header.Set(HeaderBodyHash, bodySHA256Hex)
	r.Header.Set(HeaderTarget, s.target)
	r.Header.Set(HeaderSignature, hex.EncodeToString(mac(s.secret, r.Method, s.target, r.URL, date, nonce, bodySHA256Hex)))
}

// Transport returns a RoundTripper that signs every request it sends and
// then hands it to base (http.DefaultTransport when nil). A request already
// carrying X-Shale-Content-SHA256 is signed with that value; otherwise a
// request without a body is signed with EmptySHA256, one whose body can be
// re-read (GetBody set, as http.NewRequest does for bytes and strings) is
// hashed, and any other body is signed as Streaming. The caller's request is
// not modified.
func (s *Signer) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &signingTransport{s: s, base: base}
}

type signingTransport struct {
	s    *Signer
	base http.RoundTripper
}

func (t *signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	h := r.Header.Get(HeaderBodyHash)
	if h == "" {
		h = Streaming
		switch {
		case r.Body == nil || r.Body == http.NoBody:
			h = EmptySHA256
		case r.GetBody != nil:
			body, err := r.GetBody()
			if err != nil {
				closeBody(r)
				return nil, err
			}
			hs := sha256.New()
			_, err = io.Copy(hs, body)
			_ = body.Close()
			if err != nil {
				closeBody(r)
				return nil, err
			}
			h = hex.EncodeToString(hs.Sum(nil))
		}
	}
	t.s.Sign(r2, h)
	return t.base.RoundTrip(r2)
}

// closeBody honours RoundTripper's rule that the request body is closed even
// on errors.
func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// mac computes the signature over the string to sign.
// The target is signed, and each Verifier accepts only its own identities,
// so that a request captured on its way to one node cannot be replayed to
// another (each node keeps its own replay cache).
func mac(secret []byte, method, target string, u *url.URL, date, nonce, bodyHash string) []byte {
	var b bytes.Buffer
	b.WriteString(scheme)
	b.WriteByte('\n')
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(target)
	b.WriteByte('\n')
	b.WriteString(u.EscapedPath())
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(u.RawQuery))
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')
	b.WriteString(nonce)
	b.WriteByte('\n')
	b.WriteString(bodyHash)
	m := hmac.New(sha256.New, secret)
	m.Write(b.Bytes())
	return m.Sum(nil)
}

// canonicalQuery sorts the query's keys and each key's values and encodes
// them, so that re-encoding between client and server cannot change the
// signature. A query that does not parse is used as it is (byte for byte);
// the Verifier refuses such queries anyway.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}
