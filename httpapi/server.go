package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shale-store/shale/internal/progress"
	"github.com/shale-store/shale/internal/s3auth"
)

// handler serves the S3 API. It is immutable after New, apart from the
// in-flight semaphore it owns.
type handler struct {
	cfg Config
	svc ObjectService
	sem chan struct{} // one token per request in flight; nil means no limit
	mux chi.Router

	// maxPut bounds one PUT or part body: MaxPutSize (tests lower it).
	maxPut int64
}

// New returns the S3 API handler serving svc with cfg (defaults applied).
func New(cfg Config, svc ObjectService) http.Handler {
	h := &handler{cfg: cfg.withDefaults(), svc: svc, maxPut: MaxPutSize}
	if h.cfg.MaxInFlight > 0 {
		h.sem = make(chan struct{}, h.cfg.MaxInFlight)
	}
	m := chi.NewRouter()
	m.Use(h.identify, h.shed, h.clientDeadlines, h.authenticate, h.virtualHost)
	m.HandleFunc("/", h.service)
	m.HandleFunc("/*", h.resource)
	h.mux = m
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyHostID
	keyAuth
	keyClientIO
)

// identify gives the request its x-amz-request-id and x-amz-id-2, and
// watches its client's I/O (clientio.go).
func (h *handler) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [32]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		id := strings.ToUpper(hex.EncodeToString(b[:8]))
		id2 := base64.StdEncoding.EncodeToString(b[8:])
		w.Header().Set("x-amz-request-id", id)
		w.Header().Set("x-amz-id-2", id2)
		w.Header().Set("Server", "shale")
		ctx := context.WithValue(watchClient(r), keyRequestID, id)
		ctx = context.WithValue(ctx, keyHostID, id2)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func requestID(r *http.Request) string { s, _ := r.Context().Value(keyRequestID).(string); return s }
func hostID(r *http.Request) string    { s, _ := r.Context().Value(keyHostID).(string); return s }

// shed refuses requests beyond Config.MaxInFlight with SlowDown.
func (h *handler) shed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.sem != nil {
			select {
			case h.sem <- struct{}{}:
				defer func() { <-h.sem }()
			default:
				h.writeError(w, r, ErrSlowDown)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// clientDeadlines makes the client keep the request moving: every read of
// the request body must get bytes within Config.BodyStall and the body as a
// whole must keep Config.MinBodyRate after Config.BodyRateGrace; every
// write of the response must be taken within Config.WriteStall. A client
// that breaks a rule has its connection's deadline set to the past, which
// ends the blocked call and the connection: the handler sees
// ErrRequestTimeout and returns, giving back its slot and whatever it held.
func (h *handler) clientDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody && (h.cfg.BodyStall > 0 || h.cfg.MinBodyRate > 0) {
			br := &guardedBody{r: r.Body, stall: h.cfg.BodyStall,
				rate: progress.MinRate{BytesPerSec: h.cfg.MinBodyRate, Grace: h.cfg.BodyRateGrace},
				wd:   progress.New(func() { _ = rc.SetReadDeadline(aLongTimeAgo) })}
			defer br.wd.Stop()
			r.Body = br
		}
		if h.cfg.WriteStall > 0 {
			gw := &guardedResponse{ResponseWriter: w, limit: h.cfg.WriteStall,
				wd: progress.New(func() { _ = rc.SetWriteDeadline(aLongTimeAgo) })}
			defer gw.wd.Stop()
			w = gw
		}
		next.ServeHTTP(w, r)
	})
}

// aLongTimeAgo is a deadline in the past: setting it ends a blocked call.
var aLongTimeAgo = time.Unix(1, 0)

// guardedBody is a request body under the BodyStall and MinBodyRate rules.
type guardedBody struct {
	r      io.ReadCloser
	wd     *progress.Watchdog
	stall  time.Duration
	rate   progress.MinRate
	n      int64         // bytes read
	waited time.Duration // time spent inside Read
}

func (b *guardedBody) Read(p []byte) (int, error) {
	limit, ok := b.rate.Allowance(b.n, b.waited)
	if !ok || (b.stall > 0 && b.stall < limit) {
		limit = b.stall
	}
	start := time.Now()
	b.wd.Arm(limit)
	n, err := b.r.Read(p)
	expired := b.wd.Disarm()
	b.waited += time.Since(start)
	b.n += int64(n)
	if expired && err != nil && err != io.EOF {
		err = fmt.Errorf("%w: request body: %d bytes in %v: %w", ErrRequestTimeout, b.n, b.waited.Round(time.Millisecond), err)
	}
	return n, err
}

func (b *guardedBody) Close() error { return b.r.Close() }

// guardedResponse is a ResponseWriter under the WriteStall rule.
type guardedResponse struct {
	http.ResponseWriter
	wd    *progress.Watchdog
	limit time.Duration
}

func (w *guardedResponse) Write(p []byte) (int, error) {
	w.wd.Arm(w.limit)
	n, err := w.ResponseWriter.Write(p)
	if w.wd.Disarm() && err != nil {
		err = fmt.Errorf("%w: response write: %w", ErrRequestTimeout, err)
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *guardedResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authenticate refuses an oversized header section, then verifies the
// request's signature before anything else reads it; handlers read the body
// through authReq(r).Body.
func (h *handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := checkHeaderSection(r)
		if err == nil && h.cfg.Auth == nil {
			err = ErrNoCredentials
		}
		var q *s3auth.Request
		if err == nil {
			q, err = h.cfg.Auth.Authenticate(r)
		}
		if err != nil {
			// An unauthenticated client does not keep its connection: it
			// could otherwise hold one of the listener's few by sending a
			// refused request now and then.
			w.Header().Set("Connection", "close")
			h.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyAuth, q)))
	})
}

// authReq is the authenticated request stored by authenticate.
func authReq(r *http.Request) *s3auth.Request {
	q, _ := r.Context().Value(keyAuth).(*s3auth.Request)
	return q
}

// virtualHost rewrites bucket.BaseDomain/key to /bucket/key. It runs after
// authentication, which signs the path as the client sent it.
func (h *handler) virtualHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bucket, ok := h.hostBucket(r.Host); ok {
			u := *r.URL
			u.Path = "/" + bucket + r.URL.Path
			if r.URL.RawPath != "" {
				u.RawPath = "/" + bucket + r.URL.RawPath
			}
			r2 := r.WithContext(r.Context())
			r2.URL = &u
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// hostBucket returns the bucket named by a virtual-host style Host header.
func (h *handler) hostBucket(host string) (string, bool) {
	if h.cfg.BaseDomain == "" {
		return "", false
	}
	if hst, _, err := net.SplitHostPort(host); err == nil {
		host = hst
	}
	host = strings.ToLower(host)
	suffix := "." + strings.ToLower(strings.Trim(h.cfg.BaseDomain, "."))
	if !strings.HasSuffix(host, suffix) || len(host) == len(suffix) {
		return "", false
	}
	return strings.TrimSuffix(host, suffix), true
}

// service serves "/": ListBuckets.
func (h *handler) service(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		h.writeError(w, r, ErrMethodNotAllowed)
		return
	}
	if name, ok := unsupportedSubresource(r.URL.Query()); ok {
		h.writeError(w, r, detail(ErrNotImplemented, "sub-resource %q is not implemented", name))
		return
	}
	h.listBuckets(w, r)
}

// resource serves "/bucket[/key]": it splits the decoded path itself (the
// key may hold any character, including encoded slashes) and dispatches on
// method and query.
func (h *handler) resource(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if err := checkBucketName(bucket); err != nil {
		h.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	if name, ok := unsupportedSubresource(q); ok {
		h.writeError(w, r, detail(ErrNotImplemented, "sub-resource %q is not implemented", name))
		return
	}
	if key == "" {
		h.bucketOp(w, r, bucket, q)
		return
	}
	if err := checkKey(key); err != nil {
		h.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodPut || r.Method == http.MethodPost {
		if err := checkNewKey(key); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	h.objectOp(w, r, bucket, key, q)
}

func (h *handler) bucketOp(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	switch r.Method {
	case http.MethodGet:
		switch {
		case q.Has("location"):
			h.getBucketLocation(w, r, bucket)
		case q.Has("versioning"):
			h.getBucketVersioning(w, r, bucket)
		case q.Has("uploads"):
			h.listUploads(w, r, bucket, q)
		case q.Has("versions"):
			h.listVersions(w, r, bucket, q)
		case q.Get("list-type") == "2":
			h.listObjectsV2(w, r, bucket, q)
		default:
			h.listObjectsV1(w, r, bucket, q)
		}
	case http.MethodHead:
		h.headBucket(w, r, bucket)
	case http.MethodPut:
		if q.Has("versioning") {
			h.writeError(w, r, detail(ErrNotImplemented, "versioning is not implemented"))
			return
		}
		h.createBucket(w, r, bucket)
	case http.MethodDelete:
		h.deleteBucket(w, r, bucket)
	case http.MethodPost:
		if q.Has("delete") {
			h.deleteObjects(w, r, bucket)
			return
		}
		h.writeError(w, r, detail(ErrNotImplemented, "POST object (browser form upload) is not implemented"))
	default:
		h.writeError(w, r, ErrMethodNotAllowed)
	}
}

func (h *handler) objectOp(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	if err := checkVersionID(q.Get("versionId"), q.Has("versionId")); err != nil {
		h.writeError(w, r, err)
		return
	}
	copySource := r.Header.Get("x-amz-copy-source")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if q.Has("uploadId") && r.Method == http.MethodGet {
			h.listParts(w, r, bucket, key, q)
			return
		}
		h.getObject(w, r, bucket, key, q)
	case http.MethodPut:
		switch {
		case q.Has("uploadId") || q.Has("partNumber"):
			if copySource != "" {
				h.uploadPartCopy(w, r, bucket, key, q, copySource)
				return
			}
			h.uploadPart(w, r, bucket, key, q)
		case copySource != "":
			h.copyObject(w, r, bucket, key, copySource)
		default:
			h.putObject(w, r, bucket, key)
		}
	case http.MethodDelete:
		if q.Has("uploadId") {
			h.abortUpload(w, r, bucket, key, q)
			return
		}
		h.deleteObject(w, r, bucket, key)
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			h.createUpload(w, r, bucket, key)
		case q.Has("uploadId"):
			h.completeUpload(w, r, bucket, key, q)
		default:
			h.writeError(w, r, detail(ErrNotImplemented, "this POST operation is not implemented"))
		}
	default:
		h.writeError(w, r, ErrMethodNotAllowed)
	}
}

// unsupportedSubresource reports the first S3 sub-resource in q that shale
// does not serve (ACLs, policies, tagging, lifecycle …).
func unsupportedSubresource(q url.Values) (string, bool) {
	for _, name := range []string{
		"accelerate", "acl", "analytics", "attributes", "cors", "encryption",
		"intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging",
		"metadataConfiguration", "metrics", "notification", "object-lock",
		"ownershipControls", "policy", "policyStatus", "publicAccessBlock",
		"renameObject", "replication", "requestPayment", "restore", "retention",
		"select", "session", "tagging", "torrent", "website",
	} {
		if q.Has(name) {
			return name, true
		}
	}
	return "", false
}
