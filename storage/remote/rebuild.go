package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/storage"
)

// RebuildRequest asks a node to re-create one shard of a segment from the
// segment's other shards, which it reads from their nodes itself, and to
// store it under the id in the path. It describes the segment as the
// manifest does: the layout, the segment's size, and every shard by index.
type RebuildRequest struct {
	K         int   `json:"k"`
	M         int   `json:"m"`
	BlockSize int   `json:"block_size"`
	Size      int64 `json:"size"` // object bytes of the segment
	// Index is the shard to re-create.
	Index int `json:"index"`
	// Sources are the shards to read from, by index (len K+M). A source
	// with no Node is not read (lost, or left out by the caller); Index's
	// own entry is never read, unless Copy.
	Sources []RebuildSource `json:"sources"`
	// Copy asks for a copy, not a rebuild: the node reads shard Index
	// itself from Sources[Index] as stored and stores it (a move of the
	// rebalancer, or of a drain), checking its records and summary.
	Copy bool `json:"copy,omitempty"`
}

// RebuildSource is one shard a rebuild may read: its id on node Node at
// Addr (host:port of the node's shard API), and its summary checksum as
// the manifest records it (meta.ShardRef.Checksum), which the rebuilding
// node checks the shard's records against.
type RebuildSource struct {
	Node     string `json:"node,omitempty"`
	Addr     string `json:"addr,omitempty"`
	ID       string `json:"id,omitempty"`
	Checksum uint64 `json:"checksum,omitempty"`
}

// ErrInvalidRebuild: a rebuild request whose layout, index or sources do
// not describe a segment (or that is too large to be one).
var ErrInvalidRebuild = errors.New("remote: invalid rebuild request")

// maxRebuildSize bounds a rebuilt segment's size: S3's largest object.
const maxRebuildSize = 5 << 40

// isPort reports whether p is a decimal TCP port.
func isPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 1<<16 && strconv.Itoa(n) == p
}

// maxRebuildRequest bounds the JSON body of a rebuild request: 256 sources
// (the most a layout has) of a few hundred bytes each fit with room.
const maxRebuildRequest = 128 << 10

// Validate checks that r describes a segment: a layout in range, Index a
// shard of it, one source per shard, and at least K sources to read — or,
// for a Copy, Index's own source.
func (r RebuildRequest) Validate() error {
	n := r.K + r.M
	switch {
	case r.K < 1 || r.M < 0 || n > 256:
		return fmt.Errorf("%w: k=%d m=%d", ErrInvalidRebuild, r.K, r.M)
	case r.BlockSize <= 0:
		return fmt.Errorf("%w: block size %d", ErrInvalidRebuild, r.BlockSize)
	case r.Size < 0 || r.Size > maxRebuildSize:
		return fmt.Errorf("%w: size %d", ErrInvalidRebuild, r.Size)
	case r.Index < 0 || r.Index >= n:
		return fmt.Errorf("%w: index %d of %d shards", ErrInvalidRebuild, r.Index, n)
	case len(r.Sources) != n:
		return fmt.Errorf("%w: %d sources for %d shards", ErrInvalidRebuild, len(r.Sources), n)
	}
	readable := 0
	for i, s := range r.Sources {
		if s.Node == "" || (i == r.Index) != r.Copy {
			continue
		}
		if s.Addr == "" || s.ID == "" {
			return fmt.Errorf("%w: source %d on %s without address or id", ErrInvalidRebuild, i, s.Node)
		}
		if host, port, err := net.SplitHostPort(s.Addr); err != nil || host == "" || !isPort(port) {
			return fmt.Errorf("%w: source %d address %q is not host:port", ErrInvalidRebuild, i, s.Addr)
		}
		readable++
	}
	if r.Copy && readable != 1 {
		return fmt.Errorf("%w: a copy of shard %d without its source", ErrInvalidRebuild, r.Index)
	}
	if !r.Copy && readable < r.K {
		return fmt.Errorf("%w: %d sources to read, k=%d", ErrInvalidRebuild, readable, r.K)
	}
	return nil
}

// Rebuilder re-creates a shard on the node that serves the handler: it reads
// the sources (verifying every record and each source's summary), decodes,
// and stores the result under id in the node's store, durably, before it
// returns the stored shard's Info. It fails (keeping nothing under id) when
// any source cannot be read in full and intact, so the caller can fall back
// to a rebuild that reads around and reports bad shards; it is not
// idempotent (a second call for an existing id fails as the store's Put
// does).
type Rebuilder interface {
	Rebuild(ctx context.Context, id string, req RebuildRequest) (storage.Info, error)
}

// rebuildLimits bounds the rebuild endpoint: rebuilds run at once (the rest
// wait for a slot, while their request lasts) and the time one may take.
type rebuildLimits struct {
	slots   chan struct{}
	timeout time.Duration
}

func (h *handler) rebuild(w http.ResponseWriter, r *http.Request) {
	id, err := shardID(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req RebuildRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRebuildRequest+1))
	if err == nil && len(body) > maxRebuildRequest {
		err = fmt.Errorf("%w: request over %d bytes", ErrInvalidRebuild, maxRebuildRequest)
	}
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		writeWire(w, wireError{Code: codeBadRequest, Message: err.Error()}, http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.limits.timeout)
	defer cancel()
	select {
	case h.limits.slots <- struct{}{}:
		defer func() { <-h.limits.slots }()
	case <-ctx.Done():
		writeError(w, fmt.Errorf("rebuild %s: waiting for a slot: %w", id, ctx.Err()))
		return
	}
	info, err := h.cfg.Rebuilder.Rebuild(ctx, id, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, info)
}

// Rebuild asks the node to re-create a shard under id from req's sources
// (see Rebuilder) and returns the stored shard's Info once it is durable.
// A node that serves no rebuilds answers 404 (an *Error); the request is
// signed with its body's hash, so it cannot be altered on its way.
func (c *Client) Rebuild(ctx context.Context, id string, req RebuildRequest) (storage.Info, error) {
	if err := checkID(id); err != nil {
		return storage.Info{}, fmt.Errorf("remote rebuild %s: %w", id, err)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return storage.Info{}, fmt.Errorf("remote rebuild %s: %w", id, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+rebuildPath(id), bytes.NewReader(b))
	if err != nil {
		return storage.Info{}, fmt.Errorf("remote rebuild %s: %w", id, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	c.signer.Sign(hr, peerauth.BodySHA256(b))
	resp, err := c.hc.Do(hr)
	if err != nil {
		return storage.Info{}, fmt.Errorf("remote rebuild %s on %s: %w", id, c.base, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return storage.Info{}, fmt.Errorf("remote rebuild %s on %s: %w", id, c.base, readError(resp))
	}
	var info storage.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return storage.Info{}, fmt.Errorf("remote rebuild %s on %s: decode answer: %w", id, c.base, err)
	}
	return info, nil
}

func rebuildPath(id string) string { return "/v1/rebuild/" + escapeID(id) }
