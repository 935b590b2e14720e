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
// Replication: the handler may serve a replica of a raft group
// (meta/replicated). A follower answers every call with 421 and the code
// NotLeader, naming the leader's URL in the X-Shale-Leader header
// (HandlerConfig.LeaderURL); a replica that cannot decide now (no leader,
// or the outcome of a commit unknown) answers 503 and the code
// Unavailable. The client (Config.Addrs: every replica) sends each call to
// the replica it believes leads, follows a hint to an address it was given,
// tries the next address when a replica does not answer, and retries with
// jittered backoff within Config.RetryFor and the call's context, after
// which it returns an error wrapping meta.ErrUnavailable (httpapi answers
// it with 503 SlowDown). Reads are served by the leader only
// (linearizable there); a follower never answers one from its own state.
//
// Invariants:
//
//   - A mutation the server has received runs to its commit even if the
//     client goes away: the handler runs it under context.WithoutCancel, so
//     a lost reply never loses a commit.
//   - Every mutation but Heartbeat (idempotent) carries a request id in
//     the signed query (rid: the context's meta.RequestID, else a fresh
//     one), the same on every retry of one call, and the handler applies
//     it under meta.WithRequestID: a
//     mutation whose reply was lost and that is retried, on the same
//     replica or a new leader, is applied once and answered with its first
//     result (within meta.Config.RequestRetention). A caller that gives up
//     (ctx, RetryFor) must still treat the outcome as unknown (Get tells),
//     or retry with the same id in its context.
//   - Reads honour the request's context.
//
// What it does not do: no caching of the cluster map (callers
// own that), no TLS of its own (the caller's http.Client and listener carry
// it: internal/clustertls), no streaming: each request and result is one
// bounded JSON document. Every request is signed for Identity ("meta").
package remote
