package peerauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

var (
	// ErrMissing: the request lacks one of the authentication headers.
	ErrMissing = errors.New("peerauth: missing authentication headers")
	// ErrMalformed: an authentication header is present but badly formed.
	ErrMalformed = errors.New("peerauth: malformed authentication header")
	// ErrClockSkew: the request's date lies outside the verifier's window.
	ErrClockSkew = errors.New("peerauth: request date outside the allowed window")
	// ErrSignature: the signature does not match the request (wrong secret,
	// or the method, path, query, date, nonce or body hash was altered).
	ErrSignature = errors.New("peerauth: signature mismatch")
	// ErrReplay: the nonce was already used within the window.
	ErrReplay = errors.New("peerauth: replayed request")
	// ErrBodyHash: the body's SHA-256 differs from the signed value.
	ErrBodyHash = errors.New("peerauth: body does not match its signed hash")
	// ErrBodyTooLarge: a hashed body is larger than Config.MaxBody.
	ErrBodyTooLarge = errors.New("peerauth: hashed body too large (sign it as STREAMING)")
	// ErrBusy: the replay cache is full of live nonces; the request is refused
	// rather than accepted unprotected.
	ErrBusy = errors.New("peerauth: replay cache full")
	// ErrWrongTarget: the request is signed for another receiver (its
	// X-Shale-Target is not one of the verifier's Identities): a request
	// captured on its way to one peer and replayed to another.
	ErrWrongTarget = errors.New("peerauth: request addressed to another peer")
	// ErrBeforeStart: the request is dated before the verifier was created.
	// Its nonce may have been used with a process that is gone (the replay
	// cache lives in memory), so it is refused.
	ErrBeforeStart = errors.New("peerauth: request dated before this process started")
)

// Config tunes a Verifier. Identities is required; the rest has defaults.
type Config struct {
	// Identities are the targets this verifier answers for (see
	// NewSigner): a request whose signed X-Shale-Target is not one of them
	// is refused with 401. A storage node lists "node/<its id>", meta
	// "meta". Required; each must satisfy ValidTarget.
	Identities []string
	// Window is how far a request's date may lie from the verifier's clock,
	// either way, and how long its nonce is remembered. Default 5 minutes.
	// Larger tolerates worse clock skew at the cost of a bigger replay cache.
	Window time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxBody bounds a body signed with its hash, which is buffered in full
	// and checked before the handler runs. Larger hashed bodies get 413.
	// Default 16 MiB. Bodies signed as Streaming are not buffered.
	MaxBody int64
	// MaxNonces bounds the replay cache (entries of a 64-bit hash, about
	// 16–40 bytes each with map overhead). A nonce is remembered until its
	// date leaves the window, and forgotten in generations of Window/8, so
	// at R requests/s dated about now the cache holds about
	// R·(Window + 1s + Window/8) entries. When it is full, new requests get
	// 503 rather than being accepted without a replay check. The default,
	// 4,000,000, sustains about 11,800 requests/s with a 5-minute window.
	MaxNonces int
}

func (c *Config) setDefaults() {
	if c.Window <= 0 {
		c.Window = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxBody <= 0 {
		c.MaxBody = 16 << 20
	}
	if c.MaxNonces <= 0 {
		c.MaxNonces = 4_000_000
	}
}

// Verifier authenticates incoming requests. It is safe for concurrent use;
// its replay cache is shared by every request it sees, so use one Verifier
// per listening service.
//
// The replay cache lives in memory. So that a restart does not reopen the
// window for requests accepted before it, a Verifier refuses every request
// dated before its own creation (ErrBeforeStart): create it once, when the
// process starts serving. The start is read from this process's clock, so a
// peer whose clock lags by d has its requests refused for d after a restart
// (and one whose clock runs ahead by d could have a request captured up to
// d before the restart replayed once): keep clocks synchronised.
type Verifier struct {
	secret     []byte
	cfg        Config
	identities map[string]bool
	start      time.Time // cfg.Now() at creation, to the millisecond
	nonces     *nonceCache
}

// NewVerifier returns a Verifier for secret (copied) and cfg (defaults
// applied), accepting requests dated from now (cfg.Now) on. A secret shorter
// than MinSecretLen, or no or invalid cfg.Identities, panics: both are
// programming errors.
func NewVerifier(secret []byte, cfg Config) *Verifier {
	if len(secret) < MinSecretLen {
		panic(ErrShortSecret)
	}
	if len(cfg.Identities) == 0 {
		panic("peerauth: a Verifier needs its Identities")
	}
	ids := make(map[string]bool, len(cfg.Identities))
	for _, id := range cfg.Identities {
		if !ValidTarget(id) {
			panic(fmt.Sprintf("peerauth: invalid identity %q", id))
		}
		ids[id] = true
	}
	cfg.setDefaults()
	return &Verifier{
		secret:     append([]byte(nil), secret...),
		cfg:        cfg,
		identities: ids,
		start:      cfg.Now().Truncate(time.Millisecond),
		nonces:     newNonceCache(cfg.Window/8, cfg.MaxNonces),
	}
}

// Auth is the parsed authentication headers of one request.
type Auth struct {
	Date      time.Time
	DateRaw   string // the header exactly as signed
	Nonce     string
	Target    string // the identity of the receiver the request was signed for
	BodyHash  string // lower-case hex, or Streaming
	Signature []byte // 32 bytes
}

// ParseAuth extracts and checks the syntax of the authentication headers.
// Errors wrap ErrMissing or ErrMalformed.
func ParseAuth(h http.Header) (Auth, error) {
	var a Auth
	a.DateRaw = h.Get(HeaderDate)
	a.Nonce = h.Get(HeaderNonce)
	a.BodyHash = h.Get(HeaderBodyHash)
	a.Target = h.Get(HeaderTarget)
	sig := h.Get(HeaderSignature)
	if a.DateRaw == "" || a.Nonce == "" || a.BodyHash == "" || a.Target == "" || sig == "" {
		return Auth{}, ErrMissing
	}
	t, err := time.Parse(DateFormat, a.DateRaw)
	if err != nil || t.UTC().Format(DateFormat) != a.DateRaw {
		return Auth{}, fmt.Errorf("%w: %s", ErrMalformed, HeaderDate)
	}
	a.Date = t
	if !validNonce(a.Nonce) {
		return Auth{}, fmt.Errorf("%w: %s", ErrMalformed, HeaderNonce)
	}
	if !ValidTarget(a.Target) {
		return Auth{}, fmt.Errorf("%w: %s", ErrMalformed, HeaderTarget)
	}
	if a.BodyHash != Streaming && !isLowerHex(a.BodyHash, sha256.Size*2) {
		return Auth{}, fmt.Errorf("%w: %s", ErrMalformed, HeaderBodyHash)
	}
	if !isLowerHex(sig, sha256.Size*2) {
		return Auth{}, fmt.Errorf("%w: %s", ErrMalformed, HeaderSignature)
	}
	a.Signature, _ = hex.DecodeString(sig)
	return a, nil
}

func validNonce(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Middleware authenticates every request before next sees it. A request
// that fails gets a plain-text reason with 401 (bad or missing headers,
// date, signature, replay, body hash), 413 (hashed body over MaxBody) or
// 503 (replay cache full, or dated before this process started: a client
// that signed it while the process restarted re-signs and retries), and
// next is not called. A hashed body reaches
// next fully read and verified (as an in-memory reader); a Streaming body
// reaches next untouched.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := v.verify(r); err != nil {
			status := http.StatusUnauthorized
			switch {
			case errors.Is(err, ErrBodyTooLarge):
				status = http.StatusRequestEntityTooLarge
			case errors.Is(err, ErrBusy), errors.Is(err, ErrBeforeStart):
				status = http.StatusServiceUnavailable
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			// A refused peer does not keep its connection: it could
			// otherwise hold one of the listener's few.
			w.Header().Set("Connection", "close")
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Shale-HMAC-SHA256")
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, err.Error()+"\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// verify checks r's headers, and for a hashed body replaces r.Body with the
// verified bytes.
func (v *Verifier) verify(r *http.Request) error {
	a, err := ParseAuth(r.Header)
	if err != nil {
		return err
	}
	if !v.identities[a.Target] {
		return fmt.Errorf("%w: signed for %q", ErrWrongTarget, a.Target)
	}
	now := v.cfg.Now()
	if d := now.Sub(a.Date); d > v.cfg.Window || d < -v.cfg.Window {
		return fmt.Errorf("%w: date %s, server time %s", ErrClockSkew, a.DateRaw, now.UTC().Format(DateFormat))
	}
	if a.Date.Before(v.start) {
		return fmt.Errorf("%w: date %s, started %s", ErrBeforeStart, a.DateRaw, v.start.UTC().Format(DateFormat))
	}
	if r.URL.RawQuery != "" {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			return fmt.Errorf("%w: query does not parse", ErrMalformed)
		}
	}
	want := mac(v.secret, r.Method, a.Target, r.URL, a.DateRaw, a.Nonce, a.BodyHash)
	if !hmac.Equal(want, a.Signature) {
		return ErrSignature
	}
	// Only a validly signed nonce enters the cache, so strangers cannot fill
	// it. It is remembered until its date leaves the window.
	if err := v.nonces.add(a.Nonce, a.Date.Add(v.cfg.Window+time.Second), now); err != nil {
		return err
	}
	if a.BodyHash == Streaming {
		return nil
	}
	return v.checkBody(r, a.BodyHash)
}

// checkBody reads the whole (bounded) body, compares its hash and puts the
// bytes back for the handler.
func (v *Verifier) checkBody(r *http.Request, wantHex string) error {
	if r.ContentLength > v.cfg.MaxBody {
		return fmt.Errorf("%w: %d bytes > %d", ErrBodyTooLarge, r.ContentLength, v.cfg.MaxBody)
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, v.cfg.MaxBody+1))
		if err != nil {
			return fmt.Errorf("%w: reading body: %v", ErrBodyHash, err)
		}
		if int64(len(body)) > v.cfg.MaxBody {
			return fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, v.cfg.MaxBody)
		}
		_ = r.Body.Close()
	}
	got := sha256.Sum256(body)
	want, _ := hex.DecodeString(wantHex)
	if !hmac.Equal(got[:], want) {
		return ErrBodyHash
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}
