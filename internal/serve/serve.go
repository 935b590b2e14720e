package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultMaxConns          = 1024
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultFinishTimeout     = 10 * time.Second
)

// Config holds a server's connection limits. Zero fields take the defaults.
type Config struct {
	// MaxConns bounds the connections served at once (idle kept-alive ones
	// included); more wait in the accept queue. Default DefaultMaxConns;
	// negative: no bound.
	MaxConns int
	// ReadHeaderTimeout bounds the time from accepting a connection (or
	// the end of its previous request) to the end of a request's headers.
	// Default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that has no request for
	// this long. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (request line included).
	// Default DefaultMaxHeaderBytes (net/http's own default is 1 MiB).
	MaxHeaderBytes int
	// FinishTimeout bounds what the server still does for a request once
	// its handler has returned: discarding the part of the request body
	// the handler did not read (net/http reads up to 256 KiB of it before
	// it answers) and writing out the buffered response. Without it a
	// client that declares a body and never sends it, or pipelines
	// requests and never reads the answers, holds its connection — one of
	// MaxConns — forever. Default DefaultFinishTimeout.
	FinishTimeout time.Duration
	// TLS, when set, serves every accepted connection over TLS with this
	// configuration (the cluster's internal TLS); nil serves plain HTTP.
	// The connection limit counts connections before their handshake.
	TLS *tls.Config
}

// WithDefaults returns cfg with every zero field given its default.
func (cfg Config) WithDefaults() Config {
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.FinishTimeout <= 0 {
		cfg.FinishTimeout = DefaultFinishTimeout
	}
	return cfg
}

// Server is an http.Server on its own limited listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen listens on the TCP address addr (port 0: any free port) and
// returns a server of h with cfg's limits; it serves once Serve or ServeTLS
// is called.
func Listen(addr string, h http.Handler, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if cfg.MaxConns > 0 {
		ln = newLimitListener(ln, cfg.MaxConns)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	return &Server{ln: ln, srv: &http.Server{
		Handler:           finishWithin(cfg.FinishTimeout, h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
	}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until Shutdown or Close (then it returns nil) or the
// listener fails.
func (s *Server) Serve() error { return closedIsNil(s.srv.Serve(s.ln)) }

// ServeTLS is Serve over TLS with the PEM certificate and key files.
func (s *Server) ServeTLS(certFile, keyFile string) error {
	return closedIsNil(s.srv.ServeTLS(s.ln, certFile, keyFile))
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return err
	}
	return nil
}

// Close closes the listener and every connection at once; also a server
// that never served.
func (s *Server) Close() error {
	err := s.srv.Close()
	if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
		err = lerr
	}
	return err
}

func closedIsNil(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// finishWithin gives net/http d to finish a request once h has returned:
// to discard the unread body and flush the response. net/http resets a
// connection's deadlines for its next request, so they never cut one.
func finishWithin(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		defer func() {
			t := time.Now().Add(d)
			_ = rc.SetReadDeadline(t)
			_ = rc.SetWriteDeadline(t)
		}()
		h.ServeHTTP(w, r)
	})
}
