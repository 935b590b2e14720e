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

	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/storage"
)

// Client is a storage.Store served by a node's NewHandler. It is safe for
// concurrent use. Every call honours its ctx: cancelling it aborts the
// request, and for Get also the body being read.
type Client struct {
	base   string // scheme://host[:port], no trailing slash
	signer *peerauth.Signer
	hc     *http.Client
	bufs   sync.Pool // *[]byte of uploadChunk bytes: upload copy buffers
}

var _ storage.Store = (*Client)(nil)

// NewClient returns a client for the node with id node at baseURL (e.g.
// "http://10.0.0.5:7001", or https:// with an hc that trusts the cluster
// CA) signing with the cluster secret for that node only (NodeIdentity). hc
// nil means a client of its own with keep-alive connections (up to 64 idle
// per node) and no overall timeout — a shard stream can take long; ctx
// bounds each call. It panics if the secret is shorter than
// peerauth.MinSecretLen or node is not a valid id.
func NewClient(baseURL, node string, secret []byte, hc *http.Client) *Client {
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.MaxIdleConns = 0 // the default 100 in all is fewer than a gateway keeps busy (32 PUTs × 6 nodes): no cap beyond the per-peer one
		hc = &http.Client{Transport: t}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), signer: peerauth.NewSigner(secret, NodeIdentity(node)), hc: hc}
	c.bufs.New = func() any { b := make([]byte, uploadChunk); return &b }
	return c
}

// do sends a signed request; body nil means none.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rb io.Reader = http.NoBody
	hash := peerauth.EmptySHA256
	if body != nil {
		// ctxReader hides the concrete type, so the transport streams it
		// (chunked) whatever it is and never re-reads it, and stops the
		// upload at the first Read after ctx is done: the node then sees a
		// truncated body and keeps nothing.
		rb = &ctxReader{ctx: ctx, r: body, bufs: &c.bufs}
		hash = peerauth.Streaming
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rb)
	if err != nil {
		return nil, err
	}
	c.signer.Sign(req, hash)
	return c.hc.Do(req)
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	bufs *sync.Pool // copy buffers for WriteTo
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// uploadChunk is the size of the pieces WriteTo hands the transport (each
// becomes one HTTP chunk) when the body cannot write itself: larger than
// io.Copy's 32 KiB so a shard crosses the connection in fewer, bigger
// writes.
const uploadChunk = 256 << 10

// WriteTo feeds the transport's copy of the request body. A body that can
// write itself (an io.WriterTo, such as the object layer's shard pipes) does
// so straight into the connection, with no buffer in between, each of its
// writes one HTTP chunk; any other body is copied in uploadChunk pieces
// through a pooled buffer. Either way ctx is checked before every read or
// write, like Read.
func (c *ctxReader) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.r.(io.WriterTo); ok {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
		return wt.WriteTo(&ctxWriter{ctx: c.ctx, w: w})
	}
	bp := c.bufs.Get().(*[]byte)
	defer c.bufs.Put(bp)
	buf := *bp
	var total int64
	for {
		n, rerr := 0, error(nil)
		for n < len(buf) && rerr == nil {
			var k int
			k, rerr = c.Read(buf[n:]) // checks ctx before every read
			n += k
		}
		if n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// ctxWriter fails writes once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

func shardPath(id string) string { return "/v1/shards/" + escapeID(id) }

// checkID refuses what cannot be put in a path at all; the node's store
// decides about every other id.
func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", storage.ErrInvalidID)
	}
	return nil
}

// drain discards a little of a body so the connection can be reused, then
// closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// Put streams r to the node, which verifies and stores it durably before
// answering. See storage.Store. A cancelled ctx stops the upload mid-stream
// and the node keeps nothing; only a cancellation after the last byte was
// sent can race the node's commit (the shard is then stored although Put
// reports the cancellation, like any reply lost in transit: callers treat a
// failed Put's shard as garbage, never as absent-for-sure).
func (c *Client) Put(ctx context.Context, id string, r io.Reader) (storage.Info, error) {
	if err := checkID(id); err != nil {
		return storage.Info{}, fmt.Errorf("remote put %s: %w", id, err)
	}
	resp, err := c.do(ctx, http.MethodPut, shardPath(id), nil, r)
	if err != nil {
		return storage.Info{}, fmt.Errorf("remote put %s on %s: %w", id, c.base, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return storage.Info{}, fmt.Errorf("remote put %s on %s: %w", id, c.base, readError(resp))
	}
	var info storage.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return storage.Info{}, fmt.Errorf("remote put %s on %s: decode answer: %w", id, c.base, err)
	}
	return info, nil
}

// Get streams bytes [off, off+n) of the shard. The node may send them as
// stored, unverified (see the package comment): the caller verifies every
// record it uses. The returned reader reports corruption the node found
// mid-stream as *storage.CorruptError, and a stream cut short as
// io.ErrUnexpectedEOF (or the transport's error), never as a clean EOF.
func (c *Client) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("remote get %s: %w", id, err)
	}
	q := url.Values{}
	q.Set("off", strconv.FormatInt(off, 10))
	q.Set("n", strconv.FormatInt(n, 10))
	resp, err := c.do(ctx, http.MethodGet, shardPath(id), q, nil)
	if err != nil {
		return nil, fmt.Errorf("remote get %s on %s: %w", id, c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer drain(resp)
		return nil, fmt.Errorf("remote get %s on %s: %w", id, c.base, readError(resp))
	}
	b := &bodyReader{resp: resp, id: id, node: c.base, length: -1}
	if _, chunked := resp.Trailer[trailerBytes]; !chunked {
		// The raw form: the body is the range, Content-Length long.
		switch {
		case resp.ContentLength < 0:
			drain(resp)
			return nil, fmt.Errorf("remote get %s on %s: answer has neither a length nor a %s trailer", id, c.base, trailerBytes)
		case n >= 0 && resp.ContentLength != n:
			drain(resp)
			return nil, fmt.Errorf("remote get %s on %s: node answers %d bytes for a range of %d", id, c.base, resp.ContentLength, n)
		}
		b.length = resp.ContentLength
	}
	return b, nil
}

// bodyReader checks a GET's end: the trailers of the chunked form, the
// byte count of the raw form.
type bodyReader struct {
	resp   *http.Response
	id     string
	node   string
	length int64 // raw form: Content-Length; -1 for the chunked form
	n      int64 // bytes read so far
	err    error // sticky final error (io.EOF on a verified end)

	closeOnce sync.Once
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	k, err := b.resp.Body.Read(p)
	b.n += int64(k)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		b.err = b.end()
	default:
		b.err = fmt.Errorf("remote get %s from %s: %w", b.id, b.node, err)
	}
	if k > 0 && b.err != nil && !errors.Is(b.err, io.EOF) {
		// Hand out the bytes first; the error comes on the next Read.
		return k, nil
	}
	return k, b.err
}

// end decides whether the body's EOF is the true end of the range.
func (b *bodyReader) end() error {
	if b.length >= 0 {
		if b.n != b.length {
			return fmt.Errorf("remote get %s from %s: got %d of %d bytes: %w", b.id, b.node, b.n, b.length, io.ErrUnexpectedEOF)
		}
		return io.EOF
	}
	if s := b.resp.Trailer.Get(trailerError); s != "" {
		var we wireError
		if err := json.Unmarshal([]byte(s), &we); err != nil {
			we = wireError{Code: codeInternal, Message: s}
		}
		return fmt.Errorf("remote get %s from %s: %w", b.id, b.node, fromWire(we, http.StatusOK))
	}
	s := b.resp.Trailer.Get(trailerBytes)
	if s == "" {
		return fmt.Errorf("remote get %s from %s: stream ended without its trailer after %d bytes: %w", b.id, b.node, b.n, io.ErrUnexpectedEOF)
	}
	if want, err := strconv.ParseInt(s, 10, 64); err != nil || want != b.n {
		return fmt.Errorf("remote get %s from %s: got %d bytes, node sent %s: %w", b.id, b.node, b.n, s, io.ErrUnexpectedEOF)
	}
	return io.EOF
}

// Close releases the connection. Closing before EOF abandons the stream.
func (b *bodyReader) Close() error {
	b.closeOnce.Do(func() { _ = b.resp.Body.Close() })
	return nil
}

// Stat returns the shard's info. See storage.Store.
func (c *Client) Stat(ctx context.Context, id string) (storage.Info, error) {
	if err := checkID(id); err != nil {
		return storage.Info{}, fmt.Errorf("remote stat %s: %w", id, err)
	}
	resp, err := c.do(ctx, http.MethodHead, shardPath(id), nil, nil)
	if err != nil {
		return storage.Info{}, fmt.Errorf("remote stat %s on %s: %w", id, c.base, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return storage.Info{}, fmt.Errorf("remote stat %s on %s: %w", id, c.base, readError(resp))
	}
	info := storage.Info{ID: id}
	var e1, e2, e3 error
	info.Size, e1 = strconv.ParseInt(resp.Header.Get(headerSize), 10, 64)
	info.Checksum, e2 = strconv.ParseUint(resp.Header.Get(headerChecksum), 10, 64)
	info.Created, e3 = time.Parse(time.RFC3339Nano, resp.Header.Get(headerCreated))
	if err := errors.Join(e1, e2, e3); err != nil {
		return storage.Info{}, fmt.Errorf("remote stat %s on %s: bad answer: %w", id, c.base, err)
	}
	return info, nil
}

// Delete removes the shard; absent is not an error. See storage.Store.
func (c *Client) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("remote delete %s: %w", id, err)
	}
	resp, err := c.do(ctx, http.MethodDelete, shardPath(id), nil, nil)
	if err != nil {
		return fmt.Errorf("remote delete %s on %s: %w", id, c.base, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("remote delete %s on %s: %w", id, c.base, readError(resp))
	}
	return nil
}

// List returns up to limit shards after `after` with the prefix. The node
// may return fewer than limit (it caps each page); an empty result is the
// end. See storage.Store.
func (c *Client) List(ctx context.Context, prefix, after string, limit int) ([]storage.Info, error) {
	q := url.Values{}
	q.Set("prefix", prefix)
	q.Set("after", after)
	q.Set("limit", strconv.Itoa(max(limit, 0)))
	resp, err := c.do(ctx, http.MethodGet, "/v1/shards", q, nil)
	if err != nil {
		return nil, fmt.Errorf("remote list %q after %q on %s: %w", prefix, after, c.base, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("remote list %q after %q on %s: %w", prefix, after, c.base, readError(resp))
	}
	var infos []storage.Info
	if err := json.NewDecoder(resp.Body).Decode(&infos); err != nil {
		return nil, fmt.Errorf("remote list %q after %q on %s: decode answer: %w", prefix, after, c.base, err)
	}
	if len(infos) == 0 {
		return nil, nil
	}
	return infos, nil
}

// Usage reports the node's space accounting. See storage.Store.
func (c *Client) Usage(ctx context.Context) (storage.Usage, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/usage", nil, nil)
	if err != nil {
		return storage.Usage{}, fmt.Errorf("remote usage on %s: %w", c.base, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return storage.Usage{}, fmt.Errorf("remote usage on %s: %w", c.base, readError(resp))
	}
	var u storage.Usage
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		return storage.Usage{}, fmt.Errorf("remote usage on %s: decode answer: %w", c.base, err)
	}
	return u, nil
}
