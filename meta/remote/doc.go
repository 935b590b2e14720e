// Package remote is the metadata service's HTTP face (NewHandler) and the
// client that speaks to it (Client, a meta.Service).
//
// The protocol is JSON RPC over HTTP: every call is POST /v1/<method> with
// a JSON request body and, on success, 200 and a JSON result. A failed call
// gets a non-200 status and the body {"code": …, "message": …}; the code
// names one of meta's sentinel errors (codes.go), and the client turns it
// back into an error that wraps that sentinel, so errors.Is works across the
// wire exactly as against a local *meta.Store. Every request is signed with
// the cluster secret (internal/peerauth); unsigned or badly signed requests
// never reach the service.
//
// Invariants:
//
//   - A mutation the server has received runs to its commit even if the
//     client goes away: the handler runs it under context.WithoutCancel, so
//     a lost reply never loses a commit. The client does not retry; a caller
//     that saw a transport error must treat the mutation's outcome as
//     unknown (Get tells).
//   - Reads honour the request's context.
//
// What it does not do: no retries, no caching of the cluster map (callers
// own that), no TLS of its own (the caller's http.Client and listener carry
// it: internal/clustertls), no streaming: each request and result is one
// bounded JSON document. Every request is signed for Identity ("meta").
package remote
