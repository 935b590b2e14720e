// Package remote is a storage node's HTTP face: NewHandler serves a
// storage.Store over HTTP, and Client speaks to such a handler and is itself a
// storage.Store, so the object layer and repair use local and remote shard
// stores alike.
//
// Protocol (every request authenticated by internal/peerauth with the cluster
// secret and addressed to the node's id, NodeIdentity, so it is good for that
// node only; bodies of PUT are signed as peerauth.Streaming, the rebuild
// request's JSON with its SHA-256, every other request has no body):
//
//	PUT    /v1/shards/{id}            body = shard stream → 200 JSON storage.Info
//	GET    /v1/shards/{id}?off=&n=    → 200 shard bytes [off, off+n) (n < 0 or absent: to the end), raw or verified (below)
//	HEAD   /v1/shards/{id}            → 200 with X-Shale-Size, X-Shale-Checksum, X-Shale-Created
//	DELETE /v1/shards/{id}            → 204 (also when absent)
//	GET    /v1/shards?prefix=&after=&limit=  → 200 JSON []storage.Info
//	GET    /v1/usage                  → 200 JSON storage.Usage
//	POST   /v1/rebuild/{id}           body = JSON RebuildRequest → 200 JSON storage.Info of the shard
//	                                  the node re-created from its peers and stored under id
//	                                  (served only with a HandlerConfig.Rebuilder; bounded in body
//	                                  size, time and rebuilds at once)
//
// The {id} path segment is the shard id path-escaped, with a leading dot
// written as %2E so that "." and ".." survive to the store, which decides
// whether an id is valid.
//
// Who verifies (the read contract): a GET answer carries verified-at-rest
// bytes — each record was checked when the node stored it (Put verifies)
// and is checked again by the scrubber at its pace — but on the healthy
// path the node does not check them again as it sends them. Every reader of
// a GET stream verifies each record it uses: the object layer's decode
// (erasure's RecordReader, for GETs, repair's rebuilds and a node's
// rebuild from its peers) and the summary checks on top of it. A rotten
// block is thus caught by the reader, which reads around it with parity and
// reports the shard as bad (then repair rewrites it), or by the scrubber
// when nobody reads it. One check on the path, not two: in the profile of
// GET 16 MiB (docs/bench/profile-issue13.md) the node's second xxh3 of
// every record took 6.4% of its CPU and the copies through its buffers
// 8.4%, to catch what the reader's check catches anyway.
//
// Invariants:
//
//   - Nothing is buffered whole: PUT streams the request body into
//     Store.Put; GET streams the range into the response. The client sends
//     a body that implements io.WriterTo through its WriteTo, straight into
//     the connection, and copies any other body through a pooled buffer.
//   - A GET body comes in one of two forms, and the client accepts both.
//     Raw (a store that can hand out its bytes as stored, storage.Disk,
//     unless HandlerConfig.VerifyReads): the range unverified with a
//     Content-Length and no trailers; a shard file goes from the page cache
//     to the socket with sendfile (net/http does so for an *os.File body on
//     a plain TCP connection, not through TLS), an inline shard from the
//     node's index. Verified (any other store, or VerifyReads): the store's
//     Get, every record checked, through one pooled copy buffer per request
//     (HandlerConfig.BufferSize), chunked, with trailers.
//   - A GET body ends cleanly only if the whole range was sent. Raw form:
//     a range that ends short (the file failed or was cut part-way) aborts
//     the response, so the client sees the connection end before
//     Content-Length bytes; the client also counts the bytes and fails with
//     io.ErrUnexpectedEOF when they differ. Verified form: the trailers
//     carry X-Shale-Bytes (bytes sent) on success or X-Shale-Error (a JSON
//     error) when the store's reader failed after the status line was out
//     — for example a record that fails its checksum; the client checks
//     them at EOF and returns the error (a *storage.CorruptError for
//     corruption), io.ErrUnexpectedEOF when the trailer is missing or the
//     count differs. Either way a truncated or corrupt stream never looks
//     like a short clean one.
//   - A shard file whose size differs from the node's index is refused as
//     corrupt (an error answer, before any byte) on the raw path too.
//   - Errors cross the wire as a status code and a small JSON body
//     {"code", "message", …}; the same JSON (message shortened) is also in
//     the X-Shale-Error header and the code in X-Shale-Error-Code, because a
//     HEAD answer has no body. The client maps codes back to storage's sentinels and to
//     *storage.CorruptError (with an *erasure.ChecksumError inside when the
//     server had one), so errors.Is and errors.As work across the wire. The
//     single table of codes and statuses is in errors.go.
//
// What it does not do: retry, time out on its own (the caller's ctx is the
// only deadline), pool or limit connections beyond the http.Client it is
// given, or encrypt by itself (peerauth signs, it does not hide; give the
// client an https:// URL and an http.Client with internal/clustertls's
// ClientConfig, and serve the handler on a TLS listener, for that).
package remote
