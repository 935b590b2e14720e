package main

import (
	"github.com/spf13/pflag"

	"github.com/shale-store/shale/internal/serve"
)

// addServeFlags registers the flags of a role's listener limits (see
// package serve), with maxConns as the role's default connection limit.
func addServeFlags(fl *pflag.FlagSet, cfg *serve.Config, maxConns int) {
	fl.IntVar(&cfg.MaxConns, "max-conns", maxConns, "connections served at once, idle ones included; more wait to be accepted (negative: no bound)")
	fl.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", serve.DefaultReadHeaderTimeout, "a connection that has not sent a request's headers within this is closed (slowloris)")
	fl.DurationVar(&cfg.IdleTimeout, "idle-timeout", serve.DefaultIdleTimeout, "a kept-alive connection without a request this long is closed")
	fl.DurationVar(&cfg.FinishTimeout, "finish-timeout", serve.DefaultFinishTimeout, "after a request's handler is done, the unread part of its body must be discarded and its response flushed within this, or the connection is closed")
	fl.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", serve.DefaultMaxHeaderBytes, "the largest request header block, in bytes")
}

// pprofServe is the pprof listener's limits: a few profilers on loopback.
func pprofServe() serve.Config { return serve.Config{MaxConns: 8} }
