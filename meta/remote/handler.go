package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/go-chi/chi/v5"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
)

// Backend is what the handler serves: meta.Service plus the repair-side
// calls of *meta.Store.
type Backend interface {
	meta.Service
	Degraded(ctx context.Context, limit int) ([]meta.DegradedEntry, error)
	ResolveDegraded(ctx context.Context, bucket, key string, gen uint64) error
	Status(ctx context.Context) (meta.Status, error)
	ScanManifests(ctx context.Context, afterBucket, afterKey string, limit int) ([]meta.Manifest, error)
	BadReports(ctx context.Context, limit int) ([]meta.BadShard, error)
	HasShard(ctx context.Context, node cluster.NodeID, shardID string) (bool, error)
}

var _ Backend = (*meta.Store)(nil)

// HandlerConfig tunes NewHandler. The zero value is usable.
type HandlerConfig struct {
	// Auth configures request verification. Its MaxBody (the largest
	// request, which is buffered and hashed) defaults here to 64 MiB rather
	// than peerauth's 16 MiB: a manifest of a 10,000-part upload is large.
	// Its Identities default to Identity.
	Auth peerauth.Config
	// LeaderURL turns the leader a follower names (its raft id and raft
	// address, from *meta.NotLeaderError) into the base URL clients reach
	// its handler at, sent as LeaderHeader. nil, or "" from it: no hint,
	// and clients try their other addresses.
	LeaderURL func(id, raftAddr string) string
	// Foreground, when set, counts the requests of the methods the S3 path
	// calls (foregroundMethods): the repair throttle's measure of the
	// cluster's foreground work. Requests refused by verification are not
	// counted.
	Foreground *atomic.Uint64
}

// foregroundMethods are the methods a gateway calls to serve S3 requests
// (one or two per S3 operation). Heartbeats, status, the repair and garbage
// methods and replica management are background work.
var foregroundMethods = map[string]bool{
	"CreateBucket": true, "HeadBucket": true, "DeleteBucket": true, "ListBuckets": true,
	"Commit": true, "CommitIf": true, "Get": true, "Delete": true, "List": true,
	"CreateUpload": true, "GetUpload": true, "PutPart": true, "ListParts": true,
	"ListUploads": true, "CompleteUpload": true, "CompleteUploadIf": true, "AbortUpload": true,
}

// Identity is the peerauth target of the metadata service: what its
// handler answers for and its clients sign for. Storage nodes answer only
// for their own "node/<id>", so a request to meta replays nowhere else.
const Identity = "meta"

// Wire request shapes, one per method that takes more than one value.
type (
	nameReq struct {
		Name   string `json:"name"`
		Region string `json:"region,omitempty"`
	}
	objectReq struct {
		Bucket string `json:"bucket"`
		Key    string `json:"key"`
	}
	deleteResp struct {
		OK bool `json:"ok"`
	}
	listReq struct {
		Bucket    string `json:"bucket"`
		Prefix    string `json:"prefix,omitempty"`
		Delimiter string `json:"delimiter,omitempty"`
		After     string `json:"after,omitempty"`
		Limit     int    `json:"limit,omitempty"`
	}
	updateReq struct {
		Bucket     string             `json:"bucket"`
		Key        string             `json:"key"`
		Generation uint64             `json:"generation"`
		Updates    []meta.ShardUpdate `json:"updates"`
	}
	uploadReq struct {
		Bucket   string `json:"bucket"`
		Key      string `json:"key"`
		UploadID string `json:"upload_id"`
	}
	partReq struct {
		Bucket string    `json:"bucket"`
		Key    string    `json:"key"`
		Part   meta.Part `json:"part"`
	}
	uploadsReq struct {
		Bucket string                 `json:"bucket"`
		Opts   meta.UploadListOptions `json:"opts"`
	}
	completeReq struct {
		UploadID string        `json:"upload_id"`
		Manifest meta.Manifest `json:"manifest"`
	}
	// commitIfReq and completeIfReq are the conditional forms: methods of
	// their own, so a server that predates them refuses them (UnknownMethod)
	// rather than commit without the condition.
	commitIfReq struct {
		Manifest meta.Manifest        `json:"manifest"`
		If       meta.CommitCondition `json:"if"`
	}
	completeIfReq struct {
		UploadID string               `json:"upload_id"`
		Manifest meta.Manifest        `json:"manifest"`
		If       meta.CommitCondition `json:"if"`
	}
	adminReq struct {
		Node   cluster.NodeID   `json:"node"`
		Action meta.AdminAction `json:"action"`
	}
	weightReq struct {
		Node   cluster.NodeID `json:"node"`
		Weight int64          `json:"weight"`
	}
	shardReq struct {
		Node    cluster.NodeID `json:"node"`
		ShardID string         `json:"shard_id"`
	}
	hasResp struct {
		Has bool `json:"has"`
	}
	nodeShardsReq struct {
		Node  cluster.NodeID `json:"node"`
		After string         `json:"after,omitempty"`
		Limit int            `json:"limit,omitempty"`
	}
	limitReq struct {
		Limit int `json:"limit,omitempty"`
	}
	resolveReq struct {
		Bucket     string `json:"bucket"`
		Key        string `json:"key"`
		Generation uint64 `json:"generation"`
	}
	scanReq struct {
		AfterBucket string `json:"after_bucket,omitempty"`
		AfterKey    string `json:"after_key,omitempty"`
		Limit       int    `json:"limit,omitempty"`
	}
	empty struct{}
)

// NewHandler serves b under /v1/, every request verified with secret (at
// least peerauth.MinSecretLen bytes; shorter panics, as in peerauth).
// Requests dated before the call are refused (see peerauth.Verifier): make
// the handler when the service starts.
func NewHandler(b Backend, secret []byte, cfg HandlerConfig) http.Handler {
	if cfg.Auth.MaxBody <= 0 {
		cfg.Auth.MaxBody = 64 << 20
	}
	if len(cfg.Auth.Identities) == 0 {
		cfg.Auth.Identities = []string{Identity}
	}
	r := chi.NewRouter()
	// Mutations (the methods in mutating) run to completion even if the
	// caller disconnects, under the request id they carry; reads honour
	// the request's context.
	reg := func(name string, h func(ctx context.Context, body []byte) (any, error)) {
		_, mutation := mutating[name]
		hf := serve(mutation, cfg.LeaderURL, h)
		if fg := cfg.Foreground; fg != nil && foregroundMethods[name] {
			inner := hf
			hf = func(w http.ResponseWriter, r *http.Request) {
				fg.Add(1)
				inner(w, r)
			}
		}
		r.Post("/v1/"+name, hf)
	}
	mut, read := reg, reg

	mut("CreateBucket", call(func(ctx context.Context, q nameReq) (any, error) {
		return empty{}, b.CreateBucket(ctx, q.Name, q.Region)
	}))
	read("HeadBucket", call(func(ctx context.Context, q nameReq) (any, error) { return b.HeadBucket(ctx, q.Name) }))
	mut("DeleteBucket", call(func(ctx context.Context, q nameReq) (any, error) {
		return empty{}, b.DeleteBucket(ctx, q.Name)
	}))
	read("ListBuckets", call(func(ctx context.Context, _ empty) (any, error) { return b.ListBuckets(ctx) }))

	mut("Commit", call(func(ctx context.Context, m meta.Manifest) (any, error) { return b.Commit(ctx, m) }))
	mut("CommitIf", call(func(ctx context.Context, q commitIfReq) (any, error) { return b.CommitIf(ctx, q.Manifest, q.If) }))
	read("Get", call(func(ctx context.Context, q objectReq) (any, error) { return b.Get(ctx, q.Bucket, q.Key) }))
	mut("Delete", call(func(ctx context.Context, q objectReq) (any, error) {
		ok, err := b.Delete(ctx, q.Bucket, q.Key)
		return deleteResp{OK: ok}, err
	}))
	read("List", call(func(ctx context.Context, q listReq) (any, error) {
		return b.List(ctx, q.Bucket, meta.ListOptions{Prefix: q.Prefix, Delimiter: q.Delimiter, After: q.After, Limit: q.Limit})
	}))
	mut("UpdateShards", call(func(ctx context.Context, q updateReq) (any, error) {
		return b.UpdateShards(ctx, q.Bucket, q.Key, q.Generation, q.Updates)
	}))

	mut("CreateUpload", call(func(ctx context.Context, u meta.Upload) (any, error) { return b.CreateUpload(ctx, u) }))
	read("GetUpload", call(func(ctx context.Context, q uploadReq) (any, error) {
		return b.GetUpload(ctx, q.Bucket, q.Key, q.UploadID)
	}))
	mut("PutPart", call(func(ctx context.Context, q partReq) (any, error) {
		return empty{}, b.PutPart(ctx, q.Bucket, q.Key, q.Part)
	}))
	read("ListParts", call(func(ctx context.Context, q uploadReq) (any, error) {
		return b.ListParts(ctx, q.Bucket, q.Key, q.UploadID)
	}))
	read("ListUploads", call(func(ctx context.Context, q uploadsReq) (any, error) {
		return b.ListUploads(ctx, q.Bucket, q.Opts)
	}))
	mut("CompleteUpload", call(func(ctx context.Context, q completeReq) (any, error) {
		return b.CompleteUpload(ctx, q.UploadID, q.Manifest)
	}))
	mut("CompleteUploadIf", call(func(ctx context.Context, q completeIfReq) (any, error) {
		return b.CompleteUploadIf(ctx, q.UploadID, q.Manifest, q.If)
	}))
	mut("AbortUpload", call(func(ctx context.Context, q uploadReq) (any, error) {
		return empty{}, b.AbortUpload(ctx, q.Bucket, q.Key, q.UploadID)
	}))

	mut("Heartbeat", call(func(ctx context.Context, r meta.NodeReport) (any, error) { return empty{}, b.Heartbeat(ctx, r) }))
	read("Map", call(func(ctx context.Context, _ empty) (any, error) { return b.Map(ctx) }))
	mut("Admin", call(func(ctx context.Context, q adminReq) (any, error) { return empty{}, b.Admin(ctx, q.Node, q.Action) }))
	mut("SetWeight", call(func(ctx context.Context, q weightReq) (any, error) {
		return empty{}, b.SetWeight(ctx, q.Node, q.Weight)
	}))

	mut("ReportBad", call(func(ctx context.Context, q meta.BadShard) (any, error) { return empty{}, b.ReportBad(ctx, q) }))
	read("NodeShards", call(func(ctx context.Context, q nodeShardsReq) (any, error) {
		return b.NodeShards(ctx, q.Node, q.After, q.Limit)
	}))
	read("HasShard", call(func(ctx context.Context, q shardReq) (any, error) {
		ok, err := b.HasShard(ctx, q.Node, q.ShardID)
		return hasResp{Has: ok}, err
	}))
	mut("AddGarbage", call(func(ctx context.Context, g []meta.Garbage) (any, error) { return empty{}, b.AddGarbage(ctx, g) }))
	read("ListGarbage", call(func(ctx context.Context, q limitReq) (any, error) { return b.ListGarbage(ctx, q.Limit) }))
	read("ListGarbagePage", call(func(ctx context.Context, q meta.GarbageQuery) (any, error) { return b.ListGarbagePage(ctx, q) }))
	read("GarbageNodes", call(func(ctx context.Context, _ empty) (any, error) { return b.GarbageNodes(ctx) }))
	mut("RemoveGarbage", call(func(ctx context.Context, g []meta.Garbage) (any, error) {
		return empty{}, b.RemoveGarbage(ctx, g)
	}))

	read("Degraded", call(func(ctx context.Context, q limitReq) (any, error) { return b.Degraded(ctx, q.Limit) }))
	mut("ResolveDegraded", call(func(ctx context.Context, q resolveReq) (any, error) {
		return empty{}, b.ResolveDegraded(ctx, q.Bucket, q.Key, q.Generation)
	}))
	read("Status", call(func(ctx context.Context, _ empty) (any, error) { return b.Status(ctx) }))
	read("ScanManifests", call(func(ctx context.Context, q scanReq) (any, error) {
		return b.ScanManifests(ctx, q.AfterBucket, q.AfterKey, q.Limit)
	}))
	read("BadReports", call(func(ctx context.Context, q limitReq) (any, error) { return b.BadReports(ctx, q.Limit) }))

	if rb, ok := b.(Replicas); ok {
		replicaRoutes(rb, reg)
	}

	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Code: codeUnknownMethod, Message: "no such method"})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Code: codeUnknownMethod, Message: "use POST"})
	})
	return peerauth.NewVerifier(secret, cfg.Auth).Middleware(r)
}

// call adapts a typed method to the raw-body form serve runs.
func call[In any](fn func(ctx context.Context, in In) (any, error)) func(ctx context.Context, body []byte) (any, error) {
	return func(ctx context.Context, body []byte) (any, error) {
		var in In
		if len(body) > 0 {
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, fmt.Errorf("%w: request body: %v", meta.ErrInvalidArgument, err)
			}
		}
		return fn(ctx, in)
	}
}

// serve reads the (already verified, bounded) body, runs h and writes its
// result or error.
func serve(mutation bool, leaderURL func(id, raftAddr string) string, h func(ctx context.Context, body []byte) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{Code: "InvalidArgument", Message: "reading request: " + err.Error()})
			return
		}
		ctx := r.Context()
		if mutation {
			// The request arrived whole: finish it even if the client leaves,
			// so that a lost reply never loses a commit.
			ctx = context.WithoutCancel(ctx)
			if rid := r.URL.Query().Get(requestIDParam); rid != "" {
				if !validRequestID(rid) {
					writeJSON(w, http.StatusBadRequest, errorBody{Code: "InvalidArgument", Message: "malformed request id"})
					return
				}
				ctx = meta.WithRequestID(ctx, rid)
			}
		}
		out, err := h(ctx, body)
		if err != nil {
			eb, status := encodeError(err)
			var nl *meta.NotLeaderError
			if errors.As(err, &nl) {
				eb.LeaderID = nl.LeaderID
				if leaderURL != nil && nl.LeaderID != "" {
					if u := leaderURL(nl.LeaderID, nl.LeaderAddr); u != "" {
						w.Header().Set(LeaderHeader, u)
					}
				}
			}
			writeJSON(w, status, eb)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// validRequestID accepts 1–128 characters of [A-Za-z0-9_-] (meta.NewRequestID
// makes 32 hex digits).
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: codeInternal, Message: "encoding result: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
