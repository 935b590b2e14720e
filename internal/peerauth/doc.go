// Package peerauth authenticates requests between shale's own processes
// (gateway → node, node → meta, repair → node …) with a shared cluster secret.
//
// Nouns:
//
//   - The cluster secret: ≥ 32 random bytes every process of one cluster
//     shares, kept in a 0600 file as hex (CreateSecret writes one).
//   - A Signer adds four headers to an outgoing request:
//     X-Shale-Date (RFC 3339 UTC, seconds), X-Shale-Nonce (1–64 characters
//     of [A-Za-z0-9_-], random per request), X-Shale-Content-SHA256 (the
//     lower-case hex SHA-256 of the body, or "STREAMING") and
//     X-Shale-Signature (lower-case hex HMAC-SHA256, keyed by the secret, of
//     the string to sign below).
//   - A Verifier checks them on incoming requests (Middleware).
//
// The string to sign is these lines joined by "\n":
//
//	SHALE-HMAC-SHA256-V2
//	<host, lower-case, as in the Host header>
//	<method>
//	<escaped path, as on the request line>
//	<canonical query: keys sorted, each key's values sorted, URL-encoded>
//	<X-Shale-Date>
//	<X-Shale-Nonce>
//	<X-Shale-Content-SHA256>
//
// Invariants the Verifier keeps:
//
//   - A request whose headers are missing or malformed, whose date lies
//     outside ±Window of the verifier's clock, whose signature does not match,
//     or whose nonce was already seen within the window, gets 401 with a short
//     plain-text reason, and the wrapped handler is never called.
//   - A body signed with its hash is read in full (up to MaxBody) and checked
//     before the handler runs, so a handler never sees — and never commits —
//     a body that fails its hash. A hashed body over MaxBody gets 413.
//   - A body signed as STREAMING is passed through unhashed: its integrity in
//     transit is the job of the payload's own checksums (the erasure records
//     a storage node verifies as it stores them). The method, path, query,
//     date and nonce are still authenticated.
//
// What it does not do: it does not encrypt (use TLS between machines that do
// not share a trusted network), it does not identify which peer sent a
// request (every holder of the secret is equal), it does not sign headers
// other than its own (protocols built on it carry their parameters in the
// path and query), and it does not rotate secrets.
package peerauth
