package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
)

// maxResponse bounds a result the client reads into memory.
const maxResponse = 256 << 20

// Client is a meta.Service (and the repair-side calls of *meta.Store) over
// HTTP. It is safe for concurrent use.
type Client struct {
	base   string
	signer *peerauth.Signer
	hc     *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient returns a client of the service at baseURL (e.g.
// "http://127.0.0.1:7000", or https:// with an hc that trusts the cluster
// CA), signing with secret (at least peerauth.MinSecretLen bytes; shorter
// panics) for Identity. hc nil means a default client without a timeout:
// callers bound calls with their context.
func NewClient(baseURL string, secret []byte, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), signer: peerauth.NewSigner(secret, Identity), hc: hc}
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

// call posts in as JSON to /v1/method and decodes the result into out
// (nil: discard).
func (c *Client) call(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("meta %s: encoding request: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/"+method, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("meta %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	c.signer.Sign(req, peerauth.BodySHA256(body))
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("meta %s: %w", method, ctx.Err())
		}
		return fmt.Errorf("meta %s: %w: %w", method, meta.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("meta %s: reading reply: %w", method, err)
	}
	if len(rb) > maxResponse {
		return fmt.Errorf("meta %s: %w: reply over %d bytes", method, ErrProtocol, maxResponse)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(rb, out); err != nil {
			return fmt.Errorf("meta %s: %w: reply: %v", method, ErrProtocol, err)
		}
		return nil
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("meta %s: %w: %s", method, ErrUnauthorized, strings.TrimSpace(string(rb)))
	}
	var eb errorBody
	if err := json.Unmarshal(rb, &eb); err != nil || eb.Code == "" {
		return fmt.Errorf("meta %s: %w: status %d: %.200s", method, ErrProtocol, resp.StatusCode, rb)
	}
	return decodeError(method, eb)
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
