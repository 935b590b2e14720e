package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
)

// maxResponse bounds a result the client reads into memory.
const maxResponse = 256 << 20

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	// Addrs are the base URLs of the metadata replicas (e.g.
	// "http://127.0.0.1:7000", or https:// with an HTTP client that trusts
	// the cluster CA), in the order tried first. At least one; a single
	// one is a single meta process (or a one-voter group).
	Addrs []string
	// Secret is the cluster secret (at least peerauth.MinSecretLen bytes;
	// shorter panics) the client signs with for Identity.
	Secret []byte
	// HTTP carries the calls. nil: a default client without a timeout;
	// calls are bounded by their context and RetryFor.
	HTTP *http.Client
	// RetryFor bounds how long one call keeps retrying (following the
	// leader, trying the next replica, waiting out an election) before it
	// gives up with an error wrapping meta.ErrUnavailable; the call's
	// context bounds it too. Default 10s: several elections with dev's
	// timeouts, short enough for an S3 client to see 503 SlowDown and
	// retry on its own.
	RetryFor time.Duration
	// AttemptTimeout bounds one attempt on one replica, so a replica that
	// is cut off (packets dropped, not refused) costs one attempt, not the
	// whole call. A mutation cut short may still commit; its retry carries
	// the same request id. Default 3s.
	AttemptTimeout time.Duration
	// BackoffMin and BackoffMax bound the pause between attempts, which
	// doubles from BackoffMin (with jitter) up to BackoffMax. Following a
	// fresh leader hint does not pause. Defaults 20ms and 500ms.
	BackoffMin, BackoffMax time.Duration
}

// Client is a meta.Service (and the repair-side calls of *meta.Store) over
// HTTP, against one replica or a raft group of them: it sends each call to
// the replica it believes leads, follows a follower's leader hint, tries
// the next address when a replica does not answer, and retries with
// backoff within Config.RetryFor and the call's context. Every mutation
// but Heartbeat carries a request id (the context's, meta.WithRequestID, or a fresh
// one), the same on every retry, so a mutation whose reply was lost is
// applied once. It is safe for concurrent use.
type Client struct {
	cfg    Config
	signer *peerauth.Signer
	// leader is the index in cfg.Addrs of the replica calls go to first.
	leader atomic.Int64
}

var _ Backend = (*Client)(nil)

// NewClient returns a client of the service at baseURL, which may be a
// comma-separated list of replica URLs (see Config.Addrs), signing with
// secret; hc nil means a default client. Defaults as in New.
func NewClient(baseURL string, secret []byte, hc *http.Client) *Client {
	return New(Config{Addrs: strings.Split(baseURL, ","), Secret: secret, HTTP: hc})
}

// New returns a client configured by cfg. It panics without an address or
// with a short secret (a programming error in cmd, as in peerauth).
func New(cfg Config) *Client {
	var addrs []string
	for _, a := range cfg.Addrs {
		if a = strings.TrimRight(strings.TrimSpace(a), "/"); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		panic("meta/remote: client without an address")
	}
	cfg.Addrs = addrs
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 10 * time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 3 * time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 20 * time.Millisecond
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(cfg.BackoffMin, 500*time.Millisecond)
	}
	return &Client{cfg: cfg, signer: peerauth.NewSigner(cfg.Secret, Identity)}
}

// validUTF8 refuses strings JSON could not carry unchanged (encoding/json
// replaces invalid UTF-8 with U+FFFD), so a bad key fails here as it would
// against a local store instead of silently naming another key.
func validUTF8(method string, ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return fmt.Errorf("meta %s: %w: %q is not UTF-8", method, meta.ErrInvalidArgument, s)
		}
	}
	return nil
}

// call posts in as JSON to /v1/method on the leader and decodes the result
// into out (nil: discard), retrying as the Client's comment says.
func (c *Client) call(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("meta %s: encoding request: %w", method, err)
	}
	path := "/v1/" + method
	if mutating[method] {
		rid := meta.RequestID(ctx)
		if rid == "" {
			rid = meta.NewRequestID()
		}
		path += "?" + url.Values{requestIDParam: {rid}}.Encode()
	}
	n := int64(len(c.cfg.Addrs))
	giveUp := time.Now().Add(c.cfg.RetryFor)
	backoff := c.cfg.BackoffMin
	followed := false
	for attempt := 1; ; attempt++ {
		i := c.leader.Load()
		a := attemptResult{hint: -1}
		if i >= 0 && i < n {
			a = c.once(ctx, i, method, path, body, out)
		}
		if !a.retry {
			return a.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("meta %s: %w", method, ctx.Err())
		}
		next, follow := (i+1)%n, false
		if a.hint >= 0 && a.hint != i {
			next, follow = a.hint, true
		}
		c.leader.CompareAndSwap(i, next)
		if follow && !followed {
			followed = true // a fresh hint: go at once, but not twice in a row
		} else {
			followed = false
			pause := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, c.cfg.BackoffMax)
			if until := time.Until(giveUp); pause > until {
				pause = max(until, 0)
			}
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("meta %s: %w", method, ctx.Err())
			case <-t.C:
			}
		}
		if !time.Now().Before(giveUp) {
			if errors.Is(a.err, meta.ErrUnavailable) {
				return fmt.Errorf("meta %s: gave up after %d attempts over %v: %w", method, attempt, c.cfg.RetryFor, a.err)
			}
			return fmt.Errorf("meta %s: %w: gave up after %d attempts over %v: %w", method, meta.ErrUnavailable, attempt, c.cfg.RetryFor, a.err)
		}
	}
}

// attemptResult is one attempt's outcome: err (nil on success), whether
// the call may be retried, and the index of the leader a follower named
// (-1: none, or one not in Addrs).
type attemptResult struct {
	err   error
	retry bool
	hint  int64
}

// once makes one attempt at replica i.
func (c *Client) once(ctx context.Context, i int64, method, path string, body []byte, out any) attemptResult {
	addr := c.cfg.Addrs[i]
	callCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, addr+path, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("meta %s: %w", method, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	c.signer.Sign(req, peerauth.BodySHA256(body))
	resp, err := c.cfg.HTTP.Do(req)
	if err != nil {
		if callCtx.Err() != nil {
			return attemptResult{err: fmt.Errorf("meta %s: %w", method, callCtx.Err())}
		}
		return attemptResult{err: fmt.Errorf("meta %s on %s: %w: %w", method, addr, meta.ErrUnavailable, err), retry: true, hint: -1}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		if callCtx.Err() != nil {
			return attemptResult{err: fmt.Errorf("meta %s: %w", method, callCtx.Err())}
		}
		return attemptResult{err: fmt.Errorf("meta %s on %s: %w: reading reply: %w", method, addr, meta.ErrUnavailable, err), retry: true, hint: -1}
	}
	if len(rb) > maxResponse {
		return attemptResult{err: fmt.Errorf("meta %s: %w: reply over %d bytes", method, ErrProtocol, maxResponse)}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if out == nil {
			return attemptResult{}
		}
		if err := json.Unmarshal(rb, out); err != nil {
			return attemptResult{err: fmt.Errorf("meta %s: %w: reply: %v", method, ErrProtocol, err)}
		}
		return attemptResult{}
	case http.StatusUnauthorized:
		return attemptResult{err: fmt.Errorf("meta %s: %w: %s", method, ErrUnauthorized, strings.TrimSpace(string(rb)))}
	}
	var eb errorBody
	if err := json.Unmarshal(rb, &eb); err != nil || eb.Code == "" {
		err := fmt.Errorf("meta %s on %s: %w: status %d: %.200s", method, addr, ErrProtocol, resp.StatusCode, rb)
		if resp.StatusCode == http.StatusServiceUnavailable {
			// Not our JSON but a refusal to serve now (peerauth's full
			// replay cache, a proxy): try again.
			return attemptResult{err: fmt.Errorf("%w: %w", meta.ErrUnavailable, err), retry: true, hint: -1}
		}
		return attemptResult{err: err}
	}
	switch eb.Code {
	case codeNotLeader:
		hint := c.index(resp.Header.Get(LeaderHeader))
		nl := &meta.NotLeaderError{LeaderID: eb.LeaderID}
		if hint >= 0 {
			nl.LeaderAddr = c.cfg.Addrs[hint]
		}
		return attemptResult{err: &Error{Method: method, Code: eb.Code, Message: eb.Message, err: nl}, retry: true, hint: hint}
	case codeUnavailable:
		return attemptResult{err: decodeError(method, eb), retry: true, hint: -1}
	}
	return attemptResult{err: decodeError(method, eb)}
}

// index returns the position of u in Addrs, or -1.
func (c *Client) index(u string) int64 {
	u = strings.TrimRight(u, "/")
	if u == "" {
		return -1
	}
	for i, a := range c.cfg.Addrs {
		if a == u {
			return int64(i)
		}
	}
	return -1
}

// CreateBucket implements meta.Service.
func (c *Client) CreateBucket(ctx context.Context, name, region string) error {
	if err := validUTF8("CreateBucket", name, region); err != nil {
		return err
	}
	return c.call(ctx, "CreateBucket", nameReq{Name: name, Region: region}, nil)
}

// HeadBucket implements meta.Service.
func (c *Client) HeadBucket(ctx context.Context, name string) (meta.Bucket, error) {
	var b meta.Bucket
	if err := validUTF8("HeadBucket", name); err != nil {
		return b, err
	}
	return b, c.call(ctx, "HeadBucket", nameReq{Name: name}, &b)
}

// DeleteBucket implements meta.Service.
func (c *Client) DeleteBucket(ctx context.Context, name string) error {
	if err := validUTF8("DeleteBucket", name); err != nil {
		return err
	}
	return c.call(ctx, "DeleteBucket", nameReq{Name: name}, nil)
}

// ListBuckets implements meta.Service.
func (c *Client) ListBuckets(ctx context.Context) ([]meta.Bucket, error) {
	var out []meta.Bucket
	return out, c.call(ctx, "ListBuckets", empty{}, &out)
}

// Commit implements meta.Service.
func (c *Client) Commit(ctx context.Context, m meta.Manifest) (meta.Manifest, error) {
	var out meta.Manifest
	if err := validUTF8("Commit", m.Bucket, m.Key); err != nil {
		return out, err
	}
	return out, c.call(ctx, "Commit", m, &out)
}

// CommitIf implements meta.Service.
func (c *Client) CommitIf(ctx context.Context, m meta.Manifest, cond meta.CommitCondition) (meta.Manifest, error) {
	if cond.IsZero() {
		return c.Commit(ctx, m)
	}
	var out meta.Manifest
	if err := validUTF8("CommitIf", m.Bucket, m.Key, cond.ETag); err != nil {
		return out, err
	}
	return out, c.call(ctx, "CommitIf", commitIfReq{Manifest: m, If: cond}, &out)
}

// Get implements meta.Service.
func (c *Client) Get(ctx context.Context, bucket, key string) (meta.Manifest, error) {
	var out meta.Manifest
	if err := validUTF8("Get", bucket, key); err != nil {
		return out, err
	}
	return out, c.call(ctx, "Get", objectReq{Bucket: bucket, Key: key}, &out)
}

// Delete implements meta.Service.
func (c *Client) Delete(ctx context.Context, bucket, key string) (bool, error) {
	if err := validUTF8("Delete", bucket, key); err != nil {
		return false, err
	}
	var out deleteResp
	err := c.call(ctx, "Delete", objectReq{Bucket: bucket, Key: key}, &out)
	return out.OK, err
}

// List implements meta.Service.
func (c *Client) List(ctx context.Context, bucket string, o meta.ListOptions) (meta.ListResult, error) {
	var out meta.ListResult
	if err := validUTF8("List", bucket, o.Prefix, o.Delimiter, o.After); err != nil {
		return out, err
	}
	return out, c.call(ctx, "List", listReq{Bucket: bucket, Prefix: o.Prefix, Delimiter: o.Delimiter, After: o.After, Limit: o.Limit}, &out)
}

// UpdateShards implements meta.Service.
func (c *Client) UpdateShards(ctx context.Context, bucket, key string, gen uint64, upd []meta.ShardUpdate) (meta.Manifest, error) {
	var out meta.Manifest
	if err := validUTF8("UpdateShards", bucket, key); err != nil {
		return out, err
	}
	return out, c.call(ctx, "UpdateShards", updateReq{Bucket: bucket, Key: key, Generation: gen, Updates: upd}, &out)
}

// CreateUpload implements meta.Service.
func (c *Client) CreateUpload(ctx context.Context, u meta.Upload) (meta.Upload, error) {
	var out meta.Upload
	if err := validUTF8("CreateUpload", u.Bucket, u.Key); err != nil {
		return out, err
	}
	return out, c.call(ctx, "CreateUpload", u, &out)
}

// GetUpload implements meta.Service.
func (c *Client) GetUpload(ctx context.Context, bucket, key, uploadID string) (meta.Upload, error) {
	var out meta.Upload
	if err := validUTF8("GetUpload", bucket, key, uploadID); err != nil {
		return out, err
	}
	return out, c.call(ctx, "GetUpload", uploadReq{Bucket: bucket, Key: key, UploadID: uploadID}, &out)
}

// PutPart implements meta.Service.
func (c *Client) PutPart(ctx context.Context, bucket, key string, p meta.Part) error {
	if err := validUTF8("PutPart", bucket, key, p.UploadID); err != nil {
		return err
	}
	return c.call(ctx, "PutPart", partReq{Bucket: bucket, Key: key, Part: p}, nil)
}

// ListParts implements meta.Service.
func (c *Client) ListParts(ctx context.Context, bucket, key, uploadID string) ([]meta.Part, error) {
	var out []meta.Part
	if err := validUTF8("ListParts", bucket, key, uploadID); err != nil {
		return out, err
	}
	return out, c.call(ctx, "ListParts", uploadReq{Bucket: bucket, Key: key, UploadID: uploadID}, &out)
}

// ListUploads implements meta.Service.
func (c *Client) ListUploads(ctx context.Context, bucket string, opts meta.UploadListOptions) (meta.UploadListResult, error) {
	var out meta.UploadListResult
	if err := validUTF8("ListUploads", bucket, opts.Prefix, opts.Delimiter, opts.KeyMarker, opts.UploadIDMarker); err != nil {
		return out, err
	}
	return out, c.call(ctx, "ListUploads", uploadsReq{Bucket: bucket, Opts: opts}, &out)
}

// CompleteUpload implements meta.Service.
func (c *Client) CompleteUpload(ctx context.Context, uploadID string, m meta.Manifest) (meta.Manifest, error) {
	var out meta.Manifest
	if err := validUTF8("CompleteUpload", uploadID, m.Bucket, m.Key); err != nil {
		return out, err
	}
	return out, c.call(ctx, "CompleteUpload", completeReq{UploadID: uploadID, Manifest: m}, &out)
}

// CompleteUploadIf implements meta.Service.
func (c *Client) CompleteUploadIf(ctx context.Context, uploadID string, m meta.Manifest, cond meta.CommitCondition) (meta.Manifest, error) {
	if cond.IsZero() {
		return c.CompleteUpload(ctx, uploadID, m)
	}
	var out meta.Manifest
	if err := validUTF8("CompleteUploadIf", uploadID, m.Bucket, m.Key, cond.ETag); err != nil {
		return out, err
	}
	return out, c.call(ctx, "CompleteUploadIf", completeIfReq{UploadID: uploadID, Manifest: m, If: cond}, &out)
}

// AbortUpload implements meta.Service.
func (c *Client) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	if err := validUTF8("AbortUpload", bucket, key, uploadID); err != nil {
		return err
	}
	return c.call(ctx, "AbortUpload", uploadReq{Bucket: bucket, Key: key, UploadID: uploadID}, nil)
}

// Heartbeat implements meta.Service.
func (c *Client) Heartbeat(ctx context.Context, r meta.NodeReport) error {
	return c.call(ctx, "Heartbeat", r, nil)
}

// Map implements meta.Service.
func (c *Client) Map(ctx context.Context) (*cluster.Map, error) {
	var m cluster.Map
	if err := c.call(ctx, "Map", empty{}, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Admin implements meta.Service.
func (c *Client) Admin(ctx context.Context, id cluster.NodeID, a meta.AdminAction) error {
	return c.call(ctx, "Admin", adminReq{Node: id, Action: a}, nil)
}

// SetWeight implements meta.Service.
func (c *Client) SetWeight(ctx context.Context, id cluster.NodeID, weight int64) error {
	return c.call(ctx, "SetWeight", weightReq{Node: id, Weight: weight}, nil)
}

// ReportBad implements meta.Service.
func (c *Client) ReportBad(ctx context.Context, b meta.BadShard) error {
	if err := validUTF8("ReportBad", b.ShardID, b.Bucket, b.Key); err != nil {
		return err
	}
	return c.call(ctx, "ReportBad", b, nil)
}

// NodeShards implements meta.Service.
func (c *Client) NodeShards(ctx context.Context, node cluster.NodeID, after string, limit int) ([]meta.ShardKey, error) {
	var out []meta.ShardKey
	if err := validUTF8("NodeShards", after); err != nil {
		return out, err
	}
	return out, c.call(ctx, "NodeShards", nodeShardsReq{Node: node, After: after, Limit: limit}, &out)
}

// HasShard is (*meta.Store).HasShard over the wire.
func (c *Client) HasShard(ctx context.Context, node cluster.NodeID, shardID string) (bool, error) {
	if err := validUTF8("HasShard", shardID); err != nil {
		return false, err
	}
	var out hasResp
	err := c.call(ctx, "HasShard", shardReq{Node: node, ShardID: shardID}, &out)
	return out.Has, err
}

// AddGarbage implements meta.Service.
func (c *Client) AddGarbage(ctx context.Context, g []meta.Garbage) error {
	return c.call(ctx, "AddGarbage", g, nil)
}

// ListGarbage implements meta.Service.
func (c *Client) ListGarbage(ctx context.Context, limit int) ([]meta.Garbage, error) {
	var out []meta.Garbage
	return out, c.call(ctx, "ListGarbage", limitReq{Limit: limit}, &out)
}

// ListGarbagePage implements meta.Service.
func (c *Client) ListGarbagePage(ctx context.Context, q meta.GarbageQuery) ([]meta.Garbage, error) {
	var out []meta.Garbage
	if q.After != nil {
		if err := validUTF8("ListGarbagePage", q.After.ShardID); err != nil {
			return out, err
		}
	}
	return out, c.call(ctx, "ListGarbagePage", q, &out)
}

// GarbageNodes implements meta.Service.
func (c *Client) GarbageNodes(ctx context.Context) ([]cluster.NodeID, error) {
	var out []cluster.NodeID
	return out, c.call(ctx, "GarbageNodes", empty{}, &out)
}

// RemoveGarbage implements meta.Service.
func (c *Client) RemoveGarbage(ctx context.Context, g []meta.Garbage) error {
	return c.call(ctx, "RemoveGarbage", g, nil)
}

// Degraded is (*meta.Store).Degraded over the wire.
func (c *Client) Degraded(ctx context.Context, limit int) ([]meta.DegradedEntry, error) {
	var out []meta.DegradedEntry
	return out, c.call(ctx, "Degraded", limitReq{Limit: limit}, &out)
}

// ResolveDegraded is (*meta.Store).ResolveDegraded over the wire.
func (c *Client) ResolveDegraded(ctx context.Context, bucket, key string, gen uint64) error {
	if err := validUTF8("ResolveDegraded", bucket, key); err != nil {
		return err
	}
	return c.call(ctx, "ResolveDegraded", resolveReq{Bucket: bucket, Key: key, Generation: gen}, nil)
}

// Status is (*meta.Store).Status over the wire.
func (c *Client) Status(ctx context.Context) (meta.Status, error) {
	var out meta.Status
	return out, c.call(ctx, "Status", empty{}, &out)
}

// ScanManifests is (*meta.Store).ScanManifests over the wire.
func (c *Client) ScanManifests(ctx context.Context, afterBucket, afterKey string, limit int) ([]meta.Manifest, error) {
	var out []meta.Manifest
	if err := validUTF8("ScanManifests", afterBucket, afterKey); err != nil {
		return out, err
	}
	return out, c.call(ctx, "ScanManifests", scanReq{AfterBucket: afterBucket, AfterKey: afterKey, Limit: limit}, &out)
}

// BadReports is (*meta.Store).BadReports over the wire.
func (c *Client) BadReports(ctx context.Context, limit int) ([]meta.BadShard, error) {
	var out []meta.BadShard
	return out, c.call(ctx, "BadReports", limitReq{Limit: limit}, &out)
}
