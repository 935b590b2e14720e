package remote

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/shale-store/shale/meta"
)

var (
	// ErrUnauthorized: the server refused the request's signature (wrong
	// cluster secret, clock skew beyond the window, replay).
	ErrUnauthorized = errors.New("meta/remote: unauthorized")
	// ErrProtocol: the server's answer could not be understood (not JSON, an
	// unknown method, an unexpected status).
	ErrProtocol = errors.New("meta/remote: protocol error")
	// ErrServer: the server failed the call for a reason that is none of
	// meta's sentinels (an I/O error of its database, for instance).
	ErrServer = errors.New("meta/remote: server error")
)

// code ties a wire code to a sentinel and the HTTP status it travels with.
type code struct {
	name   string
	err    error
	status int
}

// codes is the one table between meta's errors and the wire.
var codes = []code{
	{"NoSuchBucket", meta.ErrNoSuchBucket, http.StatusNotFound},
	{"BucketExists", meta.ErrBucketExists, http.StatusConflict},
	{"BucketNotEmpty", meta.ErrBucketNotEmpty, http.StatusConflict},
	{"NoSuchKey", meta.ErrNoSuchKey, http.StatusNotFound},
	{"NoSuchUpload", meta.ErrNoSuchUpload, http.StatusNotFound},
	{"NoSuchNode", meta.ErrNoSuchNode, http.StatusNotFound},
	{"NodeInUse", meta.ErrNodeInUse, http.StatusConflict},
	{"InvalidArgument", meta.ErrInvalidArgument, http.StatusBadRequest},
	{"Conflict", meta.ErrConflict, http.StatusConflict},
	{"PreconditionFailed", meta.ErrPreconditionFailed, http.StatusPreconditionFailed},
	{"Corrupt", meta.ErrCorrupt, http.StatusInternalServerError},
	// A follower (or a deposed leader): the answer carries LeaderHeader.
	// Before Unavailable: a leader that lost its leadership mid-commit
	// says both, and the hint is worth following.
	{codeNotLeader, meta.ErrNotLeader, http.StatusMisdirectedRequest},
	{codeUnavailable, meta.ErrUnavailable, http.StatusServiceUnavailable},
}

const (
	codeInternal      = "Internal"
	codeUnknownMethod = "UnknownMethod"
	codeNotLeader     = "NotLeader"
	codeUnavailable   = "Unavailable"
)

// LeaderHeader, on a NotLeader answer, is the base URL of the replica the
// answering one believes leads (empty or absent: it knows none, an
// election is under way). The client follows it only to an address it
// was configured with.
const LeaderHeader = "X-Shale-Leader"

// requestIDParam is the query parameter carrying a mutation's request id
// (meta.WithRequestID). It is in the query, not a header, so the
// request's signature covers it.
const requestIDParam = "rid"

// mutating names the methods that change state: the handler runs them to
// completion even if the caller leaves. The value says whether the client
// sends the call with a request id: every mutation but Heartbeat, which is
// idempotent (a report applied twice leaves what it left once) and
// frequent, so it costs no request record (and no synced write in the
// single process).
var mutating = map[string]bool{
	"CreateBucket": true, "DeleteBucket": true, "Commit": true, "CommitIf": true, "Delete": true,
	"UpdateShards": true, "CreateUpload": true, "PutPart": true, "CompleteUpload": true, "CompleteUploadIf": true,
	"AbortUpload": true, "Heartbeat": false, "Admin": true, "ReportBad": true,
	"AddGarbage": true, "RemoveGarbage": true, "ResolveDegraded": true,
	// Membership changes are idempotent, and a request id would name the
	// record's proposal, not the configuration change that follows it.
	"AddReplica": false, "RemoveReplica": false, "TransferLeader": false,
}

// errorBody is the JSON body of a failed call.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// LeaderID is the raft id of the leader, on a NotLeader answer.
	LeaderID string `json:"leader_id,omitempty"`
}

// encodeError picks the wire code and status for err.
func encodeError(err error) (errorBody, int) {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return errorBody{Code: c.name, Message: err.Error()}, c.status
		}
	}
	return errorBody{Code: codeInternal, Message: err.Error()}, http.StatusInternalServerError
}

// Error is a failed call as the client sees it: the server's message,
// wrapping the sentinel its code names (or ErrServer).
type Error struct {
	Method  string
	Code    string
	Message string
	err     error
}

func (e *Error) Error() string {
	return fmt.Sprintf("meta %s: %s", e.Method, e.Message)
}

// Unwrap returns the meta sentinel (or ErrServer) the code stands for.
func (e *Error) Unwrap() error { return e.err }

// decodeError turns a wire error back into an error wrapping its sentinel.
func decodeError(method string, b errorBody) error {
	for _, c := range codes {
		if c.name == b.Code {
			return &Error{Method: method, Code: b.Code, Message: b.Message, err: c.err}
		}
	}
	if b.Code == codeUnknownMethod {
		return &Error{Method: method, Code: b.Code, Message: b.Message, err: ErrProtocol}
	}
	return &Error{Method: method, Code: b.Code, Message: b.Message, err: ErrServer}
}
