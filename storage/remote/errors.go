package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/storage"
)

// ErrUnauthorized: the node refused the request's authentication (wrong
// cluster secret, clock skew beyond the window, or a replay).
var ErrUnauthorized = errors.New("remote: node refused authentication")

// Error is a failure the node reported that maps to no storage sentinel
// (an internal error on the node, a malformed request, an unexpected status).
type Error struct {
	Status  int    // HTTP status
	Code    string // wire code ("internal", "bad_request", …; "" if none was sent)
	Message string // the node's message
}

func (e *Error) Error() string {
	return fmt.Sprintf("remote: node answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Wire codes. A code names the error; the status is for humans and proxies.
const (
	codeNotFound     = "not_found"
	codeInvalidID    = "invalid_id"
	codeFull         = "full"
	codeRange        = "range"
	codeCorrupt      = "corrupt"
	codeClosed       = "closed"
	codeFormat       = "format"
	codeCanceled     = "canceled"
	codeBadRequest   = "bad_request"
	codeInternal     = "internal"
	codeUnauthorized = "unauthorized"
)

// wireEntry is one row of the error table.
type wireEntry struct {
	err    error
	code   string
	status int
}

// table is the one mapping between storage's errors, wire codes and
// statuses. It is a function, not a variable, so that nothing can change it.
func table() [6]wireEntry {
	return [...]wireEntry{
		{storage.ErrNotFound, codeNotFound, http.StatusNotFound},
		{storage.ErrInvalidID, codeInvalidID, http.StatusBadRequest},
		{storage.ErrFull, codeFull, http.StatusInsufficientStorage},
		{storage.ErrRange, codeRange, http.StatusRequestedRangeNotSatisfiable},
		{storage.ErrClosed, codeClosed, http.StatusServiceUnavailable},
		{storage.ErrFormat, codeFormat, http.StatusInternalServerError},
	}
}

// Checksum-error causes carried on the wire, so errors.Is(err,
// erasure.ErrCorruptRecord) and io.ErrUnexpectedEOF survive the trip.
const (
	causeCorruptRecord = "corrupt_record"
	causeTruncated     = "truncated"
)

// wireError is the JSON error body (and the X-Shale-Error trailer).
type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// For code "corrupt":
	ID     string `json:"id,omitempty"`
	Shard  *int   `json:"shard,omitempty"`  // the ChecksumError's shard, when there was one
	Stripe int64  `json:"stripe,omitempty"` // and its stripe
	Cause  string `json:"cause,omitempty"`  // causeCorruptRecord, causeTruncated or a message
}

// toWire turns a store error into its wire form and status.
func toWire(err error) (wireError, int) {
	w := wireError{Message: err.Error()}
	var ce *storage.CorruptError
	if errors.As(err, &ce) {
		w.Code, w.ID = codeCorrupt, ce.ID
		var cs *erasure.ChecksumError
		if errors.As(ce.Err, &cs) {
			sh := cs.Shard
			w.Shard, w.Stripe = &sh, cs.Stripe
			switch {
			case errors.Is(cs.Err, erasure.ErrCorruptRecord):
				w.Cause = causeCorruptRecord
			case errors.Is(cs.Err, io.ErrUnexpectedEOF):
				w.Cause = causeTruncated
			case cs.Err != nil:
				w.Cause = cs.Err.Error()
			}
		} else if ce.Err != nil {
			w.Cause = ce.Err.Error()
		}
		return w, http.StatusUnprocessableEntity
	}
	for _, e := range table() {
		if errors.Is(err, e.err) {
			w.Code = e.code
			return w, e.status
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		w.Code = codeCanceled
		return w, http.StatusServiceUnavailable
	}
	w.Code = codeInternal
	return w, http.StatusInternalServerError
}

// fromWire turns a wire error back into the error the store returned (or
// the closest we can make).
func fromWire(w wireError, status int) error {
	if w.Code == codeCorrupt {
		var cause error
		switch w.Cause {
		case causeCorruptRecord:
			cause = erasure.ErrCorruptRecord
		case causeTruncated:
			cause = io.ErrUnexpectedEOF
		case "":
			cause = errors.New(w.Message)
		default:
			cause = errors.New(w.Cause)
		}
		if w.Shard != nil {
			cause = &erasure.ChecksumError{Shard: *w.Shard, Stripe: w.Stripe, Err: cause}
		}
		return &storage.CorruptError{ID: w.ID, Err: cause}
	}
	for _, e := range table() {
		if w.Code == e.code {
			return fmt.Errorf("%w (node: %s)", e.err, w.Message)
		}
	}
	switch {
	case w.Code == codeUnauthorized || w.Code == "" && status == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", ErrUnauthorized, w.Message)
	case w.Code == "" && status == http.StatusNotFound:
		// HEAD carries no body; the code header may be stripped by a proxy.
		return storage.ErrNotFound
	}
	return &Error{Status: status, Code: w.Code, Message: w.Message}
}

// writeError sends err as a status and JSON body.
func writeError(w http.ResponseWriter, err error) {
	we, status := toWire(err)
	writeWire(w, we, status)
}

func writeWire(w http.ResponseWriter, we wireError, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerErrorCode, we.Code)
	// The whole error also goes in a header, for HEAD (which has no body);
	// the message is shortened there to keep the header small.
	hw := we
	if len(hw.Message) > 512 {
		hw.Message = hw.Message[:512] + "…"
	}
	if b, err := json.Marshal(hw); err == nil {
		w.Header().Set(trailerError, string(b))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(we)
}

// readError decodes an error response (bounded read).
func readError(resp *http.Response) error {
	var we wireError
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(b, &we); err != nil || we.Code == "" {
		we = wireError{}
		if h := resp.Header.Get(trailerError); h != "" && json.Unmarshal([]byte(h), &we) == nil && we.Code != "" {
			return fromWire(we, resp.StatusCode)
		}
		we = wireError{Code: resp.Header.Get(headerErrorCode), Message: string(b)}
		if resp.StatusCode == http.StatusUnauthorized && we.Code == "" {
			we.Code = codeUnauthorized
		}
	}
	if we.Message == "" {
		we.Message = resp.Status
	}
	return fromWire(we, resp.StatusCode)
}
