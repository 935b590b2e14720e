package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"time"

	"github.com/shale-store/shale/internal/serve"
)

// pprofEnv names the environment variable that sets --pprof when the flag is
// not given. `shale dev` passes its environment to every child, so
// SHALE_PPROF=127.0.0.1:0 profiles a whole dev cluster (each process prints
// the address it chose to its log).
const pprofEnv = "SHALE_PPROF"

// pprofAddr returns the address to serve profiles on: flag, else $SHALE_PPROF,
// else "" (off).
func pprofAddr(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(pprofEnv)
}

// checkLoopback refuses an address whose host is not a loopback address:
// the profiles expose the process's memory layout and stacks, and nothing
// authenticates them.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof %q: only a loopback address (127.0.0.1, [::1], localhost) may serve profiles", addr)
	}
	return nil
}

// startPprof serves net/http/pprof on addr (loopback only), with the
// listener limits of cfg, until ctx is done, and turns on block and mutex profiling at a sampling rate cheap
// enough to leave on while benchmarking. It writes "pprof listening on
// ADDR" to log. The returned function stops the server and waits for it.
// addr "" does nothing.
func startPprof(ctx context.Context, addr string, cfg serve.Config, log io.Writer) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	srv, err := serve.Listen(addr, mux, cfg)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	runtime.SetBlockProfileRate(int((100 * time.Microsecond).Nanoseconds()))
	runtime.SetMutexProfileFraction(100)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve()
	}()
	fmt.Fprintf(log, "pprof listening on %s\n", srv.Addr())
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		_ = srv.Close()
	}()
	return func() {
		select {
		case <-stopped:
		default:
			close(stopped)
		}
		<-done
	}, nil
}
