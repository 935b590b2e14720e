// Package peerauth authenticates requests between shale's own processes
// (gateway → node, node → meta, repair → node …) with a shared cluster secret.
//
// Nouns:
//
//   - The cluster secret: ≥ 32 random bytes every process of one cluster
//     shares, kept in a 0600 file as hex (CreateSecret writes one).
//   - A target (identity): the name of a receiving service, such as
//     "node/<node id>" for a storage node or "meta" for the metadata
//     service. A Signer is made for one target; a Verifier is configured
//     with the identities it answers for (Config.Identities).
//   - A Signer adds five headers to an outgoing request:
//     X-Shale-Date (RFC 3339 UTC with milliseconds), X-Shale-Nonce (1–64
//     characters of [A-Za-z0-9_-], random per request), X-Shale-Target (its
//     target), X-Shale-Content-SHA256 (the lower-case hex SHA-256 of the
//     body, or "STREAMING") and X-Shale-Signature (lower-case hex
//     HMAC-SHA256, keyed by the secret, of the string to sign below).
//   - A Verifier checks them on incoming requests (Middleware).
//
// The string to sign is these lines joined by "\n":
//
//	SHALE-HMAC-SHA256-V3
//	<method>
//	<X-Shale-Target>
//	<escaped path, as on the request line>
//	<canonical query: keys sorted, each key's values sorted, URL-encoded>
//	<X-Shale-Date>
//	<X-Shale-Nonce>
//	<X-Shale-Content-SHA256>
//
// Invariants the Verifier keeps:
//
//   - A request whose headers are missing or malformed, whose target is not
//     one of the verifier's identities, whose date lies outside ±Window of
//     the verifier's clock or before the verifier was created, whose
//     signature does not match, or whose nonce was already seen within the
//     window, gets 401 with a short plain-text reason, and the wrapped
//     handler is never called. So a request captured on its way to one
//     peer cannot be replayed to another (wrong target), nor to the same
//     peer after it restarted and lost its in-memory replay cache (dated
//     before the start).
//   - The replay cache is bounded (Config.MaxNonces); when it is full of
//     live nonces requests get 503 — never accepted without a replay check.
//     Its cost per request does not grow with its size: nonces are kept in
//     generations of expiry time and forgotten a generation at a time.
//   - A body signed with its hash is read in full (up to MaxBody) and checked
//     before the handler runs, so a handler never sees — and never commits —
//     a body that fails its hash. A hashed body over MaxBody gets 413.
//   - A body signed as STREAMING is passed through unhashed: its integrity in
//     transit is the job of the payload's own checksums (the erasure records
//     a storage node verifies as it stores them, and the shard summary the
//     object layer compares with what it sent and, on reads, with the
//     manifest). The method, path, query, target, date and nonce are still
//     authenticated.
//
// What it does not do: it does not encrypt (internal/clustertls sets up
// TLS for that), it does not identify which peer sent a request (every
// holder of the secret is equal, and may address any target), it does not sign headers
// other than its own (protocols built on it carry their parameters in the
// path and query), and it does not rotate secrets.
package peerauth
