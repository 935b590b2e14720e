// Package s3auth authenticates S3 requests signed with AWS Signature
// Version 4 and verifies the integrity of their bodies.
//
// Nouns:
//
//   - Authenticator: verifies requests against one region and a secret
//     lookup function; immutable, safe for concurrent use.
//   - Request: an authenticated request — the access key that signed it and
//     the Body to read in place of http.Request.Body.
//   - signature forms: the Authorization header ("AWS4-HMAC-SHA256
//     Credential=…, SignedHeaders=…, Signature=…") and presigned URLs
//     (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
//     X-Amz-SignedHeaders, X-Amz-Signature).
//   - payload forms (x-amz-content-sha256): a hex SHA-256 of the body,
//     UNSIGNED-PAYLOAD, and the aws-chunked forms
//     STREAMING-AWS4-HMAC-SHA256-PAYLOAD (each chunk signed, signatures
//     chained from the request signature), …-PAYLOAD-TRAILER (plus a signed
//     trailer) and STREAMING-UNSIGNED-PAYLOAD-TRAILER (plain chunks plus an
//     unsigned trailer).
//   - checksums: Content-MD5 and x-amz-checksum-{crc32,crc32c,crc64nvme,
//     sha1,sha256}, in a header or an aws-chunked trailer.
//
// Invariants:
//
//   - Every x-amz-* header of an authenticated request is covered by its
//     signature: a request carrying one that its signed headers do not list
//     fails with ErrUnsignedHeaders (S3 does the same), in the header form
//     and in presigned URLs alike, so the holder of a signed request or URL
//     cannot add a copy source, metadata directive, user metadata or any
//     other x-amz-* instruction to it. The only exception, as in S3, is
//     x-amz-content-sha256, whose value is the canonical request's payload
//     line and so is signed anyway. Other headers (Content-Type,
//     User-Agent, X-Amzn-Trace-Id …) are covered only when listed.
//   - Authenticate reads no body bytes; everything it rejects is rejected
//     before the body is touched.
//   - Request.Body returns the decoded bytes; every check that needs the
//     whole body (declared length, x-amz-content-sha256, chunk and trailer
//     signatures, Content-MD5, x-amz-checksum-*) fails as an error from a
//     Read before io.EOF is ever returned. A caller that commits only after
//     io.EOF therefore never stores a body that fails a check. Bytes of a
//     chunk are handed out before its signature is checked (memory stays
//     bounded by a small buffer whatever the chunk size).
//   - Every error wraps exactly one exported sentinel; the S3 error code
//     each maps to is documented on the sentinel. This package produces no
//     HTTP statuses or XML.
//
// Canonical request: the path is taken as sent (RequestURI), each segment
// percent-decoded and re-encoded once per RFC 3986 (S3 does not
// double-encode and does not normalise "." or "//"); if the client signed
// the path exactly as it sent it and that differs, that form is accepted
// too. The query is decoded and re-encoded per RFC 3986, sorted by name then
// value. Signed header values are trimmed with inner runs of spaces
// collapsed; host is r.Host.
//
// It does not: support SigV2, SigV4A (ECDSA) or browser POST policy
// uploads (ErrUnsupported or ErrMalformedAuth); check session tokens
// (X-Amz-Security-Token is signed but not validated); enforce S3's minimum
// chunk size of 8 KiB; authorise (which key may do what is the caller's
// business); cache signing keys.
package s3auth
