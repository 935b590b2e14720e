package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/storage"
)

// Header and trailer names of the protocol.
const (
	headerErrorCode = "X-Shale-Error-Code" // error responses: the wire code
	headerSize      = "X-Shale-Size"       // HEAD: Info.Size
	headerChecksum  = "X-Shale-Checksum"   // HEAD: Info.Checksum, decimal
	headerCreated   = "X-Shale-Created"    // HEAD: Info.Created, RFC 3339 with nanoseconds
	trailerError    = "X-Shale-Error"      // JSON wireError: header of an error response, trailer of a failed GET stream
	trailerBytes    = "X-Shale-Bytes"      // GET trailer: bytes sent, on success
)

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// Secret is the cluster secret (≥ peerauth.MinSecretLen bytes; required).
	Secret []byte
	// Node is the id of the node this handler serves (required): it
	// accepts only requests signed for NodeIdentity(Node), so a request
	// captured on its way to another node cannot be replayed here.
	Node string
	// Auth tunes request verification (clock window, replay cache). Its
	// defaults are peerauth's; Node's identity is added to its Identities.
	Auth peerauth.Config
	// BufferSize is the copy buffer for a GET, taken from a pool per
	// request: memory per stream in flight. Default 256 KiB.
	BufferSize int
	// MaxList caps the limit of a list request. Default 1000.
	MaxList int
	// VerifyReads makes GET verify every record on the node, in the
	// chunked form with trailers, even when the store can hand out its
	// bytes as stored (storage.Disk.GetRaw). Default false: a store that
	// can is read raw and sent with a Content-Length (with sendfile for a
	// shard file), and the reader verifies (see the package comment).
	VerifyReads bool
	// Rebuilder, when set, serves POST /v1/rebuild/{id}: the node
	// re-creates a shard itself from its peers (see Rebuilder). Nil: the
	// route is not served (404).
	Rebuilder Rebuilder
	// MaxRebuilds bounds the rebuilds running at once; more wait for a
	// slot within their RebuildTimeout. Each holds the codec's read-ahead
	// records of every source (erasure.Codec.DecodeMemory). Default 2.
	MaxRebuilds int
	// RebuildTimeout bounds one rebuild request, the wait for a slot
	// included. Default 5 minutes.
	RebuildTimeout time.Duration
}

func (c *HandlerConfig) setDefaults() {
	if c.BufferSize <= 0 {
		c.BufferSize = 256 << 10
	}
	if c.MaxList <= 0 {
		c.MaxList = 1000
	}
	if c.MaxRebuilds <= 0 {
		c.MaxRebuilds = 2
	}
	if c.RebuildTimeout <= 0 {
		c.RebuildTimeout = 5 * time.Minute
	}
}

// rawStore is a store that can hand out a shard range as it is stored,
// unverified (storage.Disk).
type rawStore interface {
	GetRaw(ctx context.Context, id string, off, n int64) (*storage.Raw, error)
}

// handler serves one store.
type handler struct {
	store  storage.Store
	cfg    HandlerConfig
	bufs   sync.Pool // *[]byte of cfg.BufferSize: GET copy buffers
	limits rebuildLimits
}

// NewHandler serves store over HTTP (routes in the package comment), every
// request authenticated with cfg.Secret and addressed to cfg.Node. It
// panics if the secret is shorter than peerauth.MinSecretLen (load it with
// peerauth.LoadSecret) or cfg.Node is not a valid node id. The handler does
// not close the store. Requests dated before the call are refused (see
// peerauth.Verifier): make the handler when the node starts.
func NewHandler(store storage.Store, cfg HandlerConfig) http.Handler {
	cfg.setDefaults()
	h := &handler{store: store, cfg: cfg,
		limits: rebuildLimits{slots: make(chan struct{}, cfg.MaxRebuilds), timeout: cfg.RebuildTimeout}}
	h.bufs.New = func() any { b := make([]byte, cfg.BufferSize); return &b }
	if cfg.Node == "" {
		panic("storage/remote: HandlerConfig.Node is required")
	}
	cfg.Auth.Identities = append([]string{NodeIdentity(cfg.Node)}, cfg.Auth.Identities...)
	v := peerauth.NewVerifier(cfg.Secret, cfg.Auth)
	r := chi.NewRouter()
	r.Use(v.Middleware)
	r.Put("/v1/shards/{id}", h.put)
	r.Get("/v1/shards/{id}", h.get)
	r.Head("/v1/shards/{id}", h.stat)
	r.Delete("/v1/shards/{id}", h.del)
	r.Get("/v1/shards", h.list)
	r.Get("/v1/usage", h.usage)
	if cfg.Rebuilder != nil {
		r.Post("/v1/rebuild/{id}", h.rebuild)
	}
	return r
}

// shardID recovers the id from the path: chi routes on the escaped path when
// there is one, so the parameter is unescaped here.
func shardID(r *http.Request) (string, error) {
	p := chi.URLParam(r, "id")
	if r.URL.RawPath == "" {
		return p, nil
	}
	id, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", storage.ErrInvalidID, p, err)
	}
	return id, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	id, err := shardID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := h.store.Put(r.Context(), id, r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, info)
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	id, err := shardID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	off, n, err := parseRange(r.URL.Query())
	if err != nil {
		writeWire(w, wireError{Code: codeBadRequest, Message: err.Error()}, http.StatusBadRequest)
		return
	}
	if rs, ok := h.store.(rawStore); ok && !h.cfg.VerifyReads {
		h.getRaw(w, r, rs, id, off, n)
		return
	}
	rc, err := h.store.Get(r.Context(), id, off, n)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rc.Close()

	// Read the first piece before committing to 200, so an error right at
	// the start (the first record is corrupt) is an ordinary error response.
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	first := *bp
	k, rerr := readSome(rc, first)
	if rerr != nil && !errors.Is(rerr, io.EOF) && k == 0 {
		writeError(w, rerr)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", trailerError+", "+trailerBytes)
	w.WriteHeader(http.StatusOK)
	sent, werr := w.Write(first[:k])
	total := int64(sent)
	if werr == nil && rerr == nil {
		ew := &errWriter{w: w}
		var m int64
		m, rerr = io.CopyBuffer(ew, onlyReader{rc}, first)
		total += m
		if ew.err != nil {
			rerr, werr = nil, ew.err
		}
	}
	if werr != nil {
		return // the client went away; nothing to tell it
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		we, _ := toWire(rerr)
		b, _ := json.Marshal(we)
		w.Header().Set(trailerError, string(b))
		return
	}
	w.Header().Set(trailerBytes, strconv.FormatInt(total, 10))
}

// getRaw sends a shard range as stored, with a Content-Length and no
// trailers: for a shard file, the kernel copies it from the page cache to
// the socket (net/http hands an *io.LimitedReader over an *os.File to the
// connection's ReadFrom, which uses sendfile). Nothing is verified here;
// the reader verifies every record. A range that ends short — the file
// failed or was cut part-way — aborts the response, so the client sees the
// connection end before Content-Length bytes (io.ErrUnexpectedEOF), never
// a clean EOF.
func (h *handler) getRaw(w http.ResponseWriter, r *http.Request, rs rawStore, id string, off, n int64) {
	raw, err := rs.GetRaw(r.Context(), id, off, n)
	if err != nil {
		writeError(w, err)
		return
	}
	defer raw.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(raw.Len(), 10))
	w.WriteHeader(http.StatusOK)
	// Out with the header now, so net/http passes the whole body to the
	// connection's ReadFrom instead of copying its first bytes to sniff.
	_ = http.NewResponseController(w).Flush()
	sent, err := io.Copy(w, raw.Reader())
	if err != nil || sent != raw.Len() {
		// Whether the store failed or the client went away, the
		// connection must not carry on as if the body were whole.
		panic(http.ErrAbortHandler)
	}
}

// readSome reads until it has at least one byte or an error.
func readSome(r io.Reader, buf []byte) (int, error) {
	for {
		k, err := r.Read(buf)
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// onlyReader hides WriteTo so io.CopyBuffer uses the buffer.
type onlyReader struct{ io.Reader }

// errWriter remembers its first write error, so a copy's error can be told
// apart: the client went away (write) or the store failed (read).
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

func parseRange(q url.Values) (off, n int64, err error) {
	n = -1
	if s := q.Get("off"); s != "" {
		if off, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bad off %q", s)
		}
	}
	if s := q.Get("n"); s != "" {
		if n, err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bad n %q", s)
		}
	}
	return off, n, nil
}

func (h *handler) stat(w http.ResponseWriter, r *http.Request) {
	id, err := shardID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := h.store.Stat(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set(headerSize, strconv.FormatInt(info.Size, 10))
	w.Header().Set(headerChecksum, strconv.FormatUint(info.Checksum, 10))
	w.Header().Set(headerCreated, info.Created.UTC().Format(time.RFC3339Nano))
	w.WriteHeader(http.StatusOK)
}

func (h *handler) del(w http.ResponseWriter, r *http.Request) {
	id, err := shardID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := h.store.Delete(r.Context(), id); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := h.cfg.MaxList
	if s := q.Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 0 {
			writeWire(w, wireError{Code: codeBadRequest, Message: fmt.Sprintf("bad limit %q", s)}, http.StatusBadRequest)
			return
		}
		limit = min(l, h.cfg.MaxList)
	}
	infos, err := h.store.List(r.Context(), q.Get("prefix"), q.Get("after"), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	if infos == nil {
		infos = []storage.Info{}
	}
	writeJSON(w, infos)
}

func (h *handler) usage(w http.ResponseWriter, r *http.Request) {
	u, err := h.store.Usage(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, u)
}

// NodeIdentity is the peerauth target of the node with id node: what its
// handler answers for and its clients sign for.
func NodeIdentity(node string) string { return "node/" + node }

// escapeID writes a shard id as one path segment (see the package comment).
func escapeID(id string) string {
	s := url.PathEscape(id)
	if strings.HasPrefix(s, ".") {
		s = "%2E" + s[1:]
	}
	return s
}
