// Package httpapi is shale's S3 protocol edge: it turns S3 HTTP requests into
// calls on an ObjectService and the results back into S3 responses.
//
// Nouns:
//
//   - Handler: the http.Handler returned by New. It routes with chi, path style
//     (/bucket/key) always and virtual-host style (bucket.BaseDomain/key) when
//     Config.BaseDomain is set.
//   - ObjectService: the object layer as httpapi needs it, declared here (its
//     consumer); object.Service implements it. It speaks the object layer's
//     vocabulary (object.Info, object.ListResult, object.Upload … and
//     object's sentinels): httpapi imports no meta, cluster, placement or
//     storage (deps_test.go keeps it so).
//   - The error table (errors.go): the one place where an error of ours — a
//     sentinel of object, s3auth or this package — becomes an S3 error
//     code and HTTP status. No other package knows HTTP status codes.
//
// Invariants:
//
//   - Every request is authenticated (internal/s3auth) before its body is read
//     and before the object layer is called; a request that fails any check
//     (signature, bucket name, key length, XML, range, part number …) never
//     reaches a mutating ObjectService method.
//   - Every x-amz-* header of a request is covered by its signature
//     (s3auth refuses it otherwise, 403 AccessDenied with HeadersNotSigned),
//     so a presigned URL or a captured signed request cannot be turned into
//     another operation (a copy, a metadata change) by adding headers.
//   - The request header section is at most MaxHeaderSection (8 KiB, S3's
//     limit; RequestHeaderSectionTooLarge), checked before authentication;
//     user metadata at most 2 KiB (MetadataTooLarge); so what an object or a
//     multipart upload stores of its request headers is bounded too.
//   - Every response carries x-amz-request-id and x-amz-id-2; error responses
//     carry S3's XML error document, except for HEAD requests (status only).
//   - Request bodies are streamed to the object layer: memory per request is
//     bounded by small XML documents (at most a few MiB), never by object size.
//   - At most Config.MaxInFlight requests are served at once; the rest are shed
//     at once with 503 SlowDown, which S3 clients answer with backoff.
//   - No client keeps a request (its slot, its memory) by going slow: every
//     read of a request body must get bytes within Config.BodyStall, a body
//     must average Config.MinBodyRate once it has kept the server waiting
//     Config.BodyRateGrace, and every write of a response must be taken
//     within Config.WriteStall; past any of them the connection is cut
//     (400 RequestTimeout when an answer can still be sent). The object
//     layer's memory budget answers 503 SlowDown when it stays spent.
//
// Protocol choices where S3 leaves room or where shale differs:
//
//   - Range: a Range header that is not syntactically "bytes=a-b", "bytes=a-"
//     or "bytes=-n" (including a multi-range list and b < a) is ignored and the
//     whole object is returned with 200, as S3 does. A well-formed range that
//     cannot be satisfied (a ≥ size, or a suffix of 0 bytes) is 416
//     InvalidRange with "Content-Range: bytes */size". If-Range is not
//     supported (ignored).
//   - Conditional headers follow S3 (RFC 7232 order): If-Match, then
//     If-Unmodified-Since unless If-Match was given (412 PreconditionFailed),
//     then If-None-Match, then If-Modified-Since unless If-None-Match was given
//     (304 Not Modified on GET/HEAD). Copy-source conditionals answer 412 for
//     all four.
//   - Conditional writes, as S3 (2024): PutObject, CopyObject (its
//     destination) and CompleteMultipartUpload take "If-None-Match: *"
//     (create only if the key has no current object) and
//     "If-Match: <etag>" (replace only the object with that ETag, quotes
//     optional). A failed condition is 412 PreconditionFailed; If-Match on
//     an absent key is 404 NoSuchKey, as S3 answers. Any other
//     If-None-Match value, If-Match "*" or a list, and both headers at once
//     are 501 NotImplemented, as in S3; If-(Un)Modified-Since are ignored
//     on writes. The condition is decided by meta in the same step as the
//     commit, so of racing creates exactly one succeeds and the others get
//     412 — never S3's 409 ConditionalRequestConflict, which shale does not
//     send. A refused CompleteMultipartUpload leaves the upload in
//     progress (its parts stay; complete or abort it later). A PUT whose
//     condition already fails is refused before its body is stored.
//   - GET/HEAD ?partNumber=n serves part n of a multipart object (206, with
//     Content-Range); part 1 of a simple object is the whole object.
//   - shale is single-tenant: every access key acts as the one owner, so
//     creating an existing bucket is always BucketAlreadyOwnedByYou (409);
//     BucketAlreadyExists (someone else's bucket) never arises.
//   - Load shedding counts every request, authenticated or not: it protects
//     the gateway, not any one client.
//   - DeleteObjects verifies Content-MD5 when present but, unlike S3, also
//     accepts a request without Content-MD5 or checksum.
//   - Buckets are never versioned: every object's one version is "null".
//     versionId "null" is accepted on object requests (and in a copy
//     source and a multi-delete entry); any other id is InvalidArgument,
//     never served or deleted as the current object. GetBucketVersioning
//     answers "never enabled", and ListObjectVersions
//     lists every object once, as version "null" and latest (S3's answer
//     for a bucket that never had versioning), so tools that empty a bucket
//     version by version work; a version-id-marker other than "null" is
//     InvalidArgument.
//   - Stored checksums (x-amz-checksum-*) are returned on GET/HEAD only with
//     "x-amz-checksum-mode: ENABLED" and only for whole-object responses.
//   - CompleteMultipartUpload answers once the object layer has committed; it
//     does not stream whitespace keep-alives.
//   - A single PUT or part above 5 GiB is EntityTooLarge; a CopyObject whose
//     source is above 5 GiB is InvalidRequest, as in S3 (copy it part by part
//     with UploadPartCopy, whose ranges may come from any source size).
//   - Object keys holding a control character (a byte below 0x20, or 0x7F)
//     are refused with InvalidArgument by every operation that creates a
//     key (PutObject, CopyObject's destination, multipart uploads). S3
//     stores them, but XML 1.0 cannot carry most of them, so a listing
//     without encoding-type=url would be malformed or silently altered; we
//     refuse rather than hand out listings that only some clients can read.
//     A key that already holds one stays readable and deletable.
//   - A GET whose read fails after the status line went out aborts the
//     connection (http.ErrAbortHandler) so the client sees a short body,
//     never a clean end.
//
// What it does not do: SigV4 and aws-chunked decoding (internal/s3auth),
// erasure coding, placement or metadata (object and below), ACLs, policies,
// tagging, versioning, CORS, lifecycle, SSE, POST-form uploads and other bucket
// sub-resources (all answer NotImplemented).
package httpapi
