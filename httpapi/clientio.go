package httpapi

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
)

// clientIO records that I/O with the client failed: a read of the request
// body or a write of the response returned an error (the client hung up,
// reset the connection or stopped sending). An error that follows from it
// is the client's doing, not the server's, and is logged at debug level.
type clientIO struct {
	failed atomic.Bool
}

// clientBody is a request body that reports its read errors to a clientIO.
type clientBody struct {
	rc io.ReadCloser
	io *clientIO
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.io.failed.Store(true)
	}
	return n, err
}

func (b *clientBody) Close() error { return b.rc.Close() }

// watchClient wraps r's body so that a failed read is recorded, and returns
// the context carrying the record.
func watchClient(r *http.Request) context.Context {
	c := &clientIO{}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &clientBody{rc: r.Body, io: c}
	}
	return context.WithValue(r.Context(), keyClientIO, c)
}

// clientFailed marks that a write to r's client failed.
func clientFailed(r *http.Request) {
	if c, ok := r.Context().Value(keyClientIO).(*clientIO); ok {
		c.failed.Store(true)
	}
}

// clientGone reports whether r's client went away or broke off: its context
// was cancelled (net/http does that when the connection closes), or a read
// of its body or a write to it failed.
func clientGone(r *http.Request) bool {
	if r.Context().Err() != nil {
		return true
	}
	c, ok := r.Context().Value(keyClientIO).(*clientIO)
	return ok && c.failed.Load()
}

// logFailure logs a request that failed with an error the table does not
// know: at error level when the server is at fault, at debug level when the
// client went away (its disconnect is not the server's error).
func (h *handler) logFailure(r *http.Request, msg string, args ...any) {
	args = append(args, "method", r.Method, "path", r.URL.Path, "request_id", requestID(r))
	if clientGone(r) {
		h.cfg.Logger.Debug(msg+": client went away", args...)
		return
	}
	h.cfg.Logger.Error(msg, args...)
}
