package s3auth

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Authenticate and the Body it returns wrap exactly one of
// these (with detail) so that httpapi can map them to S3 error codes in its
// single table; this package knows no HTTP status codes. The S3 code each one
// corresponds to is given in its comment.
var (
	// ErrMissingAuth: the request carries neither an Authorization header
	// nor presigned query parameters. S3: AccessDenied.
	ErrMissingAuth = errors.New("s3auth: request is not signed")

	// ErrMalformedAuth: the Authorization header, presigned query, date,
	// signed-header list, credential scope or x-amz-content-sha256 value
	// cannot be parsed or is not allowed (for example X-Amz-Expires above 7
	// days, service other than s3, both header and query auth). S3:
	// AuthorizationHeaderMalformed for the header form,
	// AuthorizationQueryParametersError for the presigned form,
	// InvalidArgument for a bad x-amz-content-sha256 value.
	ErrMalformedAuth = errors.New("s3auth: malformed authorization")

	// ErrUnknownAccessKey: Config.Lookup does not know the access key.
	// S3: InvalidAccessKeyId.
	ErrUnknownAccessKey = errors.New("s3auth: unknown access key")

	// ErrSignatureMismatch: the request signature, a chunk signature or
	// the trailer signature does not match the one we compute.
	// S3: SignatureDoesNotMatch.
	ErrSignatureMismatch = errors.New("s3auth: signature does not match")

	// ErrContentSHA256Mismatch: the body's SHA-256 differs from the hex
	// value in x-amz-content-sha256. Returned by the final Read of the
	// body, before io.EOF. S3: XAmzContentSHA256Mismatch.
	ErrContentSHA256Mismatch = errors.New("s3auth: x-amz-content-sha256 does not match body")

	// ErrExpired: a presigned URL is past X-Amz-Date + X-Amz-Expires.
	// S3: AccessDenied ("Request has expired").
	ErrExpired = errors.New("s3auth: request has expired")

	// ErrSkew: the request time is further than Config.MaxSkew from now
	// (or a presigned URL's X-Amz-Date lies that far in the future).
	// S3: RequestTimeTooSkewed.
	ErrSkew = errors.New("s3auth: request time too skewed")

	// ErrRegion: the credential scope names a region other than
	// Config.Region. S3: AuthorizationHeaderMalformed (whose message names
	// the expected region; clients retry with it).
	ErrRegion = errors.New("s3auth: wrong region in credential scope")

	// ErrBadDigest: the body's MD5 differs from Content-MD5. Returned by the
	// final Read of the body, before io.EOF. S3: BadDigest.
	ErrBadDigest = errors.New("s3auth: Content-MD5 does not match body")

	// ErrInvalidDigest: Content-MD5 is not base64 of 16 bytes.
	// S3: InvalidDigest.
	ErrInvalidDigest = errors.New("s3auth: invalid Content-MD5")

	// ErrChecksumMismatch: the body's x-amz-checksum-* (header or trailer)
	// does not match. Returned by the final Read of the body, before io.EOF.
	// The error is a *ChecksumError. S3: BadDigest ("The CRC32 you
	// specified did not match the calculated checksum.") — current S3
	// returns BadDigest rather than a checksum-specific code.
	ErrChecksumMismatch = errors.New("s3auth: checksum does not match body")

	// ErrInvalidChecksum: an x-amz-checksum-* value is not valid base64 of
	// the algorithm's digest size, more than one checksum is given, or
	// x-amz-sdk-checksum-algorithm / x-amz-trailer name an unknown or
	// inconsistent algorithm. S3: InvalidRequest.
	ErrInvalidChecksum = errors.New("s3auth: invalid checksum header")

	// ErrIncompleteBody: the body ended before, or ran past, the declared
	// length (Content-Length for plain bodies, x-amz-decoded-content-length
	// for aws-chunked ones), or an aws-chunked body ended before its final
	// chunk. S3: IncompleteBody.
	ErrIncompleteBody = errors.New("s3auth: body length differs from declared length")

	// ErrMalformedChunk: the aws-chunked framing is garbage (bad chunk
	// header, missing CRLF, bad trailer line, data after the end). S3 has
	// no dedicated code; it answers such bodies with IncompleteBody or
	// InvalidRequest [unverified which]. We suggest IncompleteBody (400),
	// which is what clients treat as "retry the upload".
	ErrMalformedChunk = errors.New("s3auth: malformed aws-chunked body")

	// ErrUnsignedHeaders: the request carries an x-amz-* header that its
	// signed-header list (SignedHeaders or X-Amz-SignedHeaders) does not
	// name, so the signature does not cover it. The error is an
	// *UnsignedHeadersError naming them. The one exception is
	// x-amz-content-sha256, whose value is the payload line of the
	// canonical request and so is covered whether listed or not. S3:
	// AccessDenied ("There were headers present in the request which were
	// not signed", with a HeadersNotSigned element).
	ErrUnsignedHeaders = errors.New("s3auth: x-amz-* headers present that are not signed")

	// ErrUnsupported: a valid but unimplemented scheme — SigV2, SigV4A
	// (AWS4-ECDSA-P256-SHA256, STREAMING-AWS4-ECDSA-…). S3 itself supports
	// these; we answer NotImplemented.
	ErrUnsupported = errors.New("s3auth: unsupported authentication scheme")
)

// ChecksumError reports a checksum mismatch; it wraps ErrChecksumMismatch.
type ChecksumError struct {
	Algorithm string // "CRC32", "CRC32C", "CRC64NVME", "SHA1" or "SHA256"
	Source    string // "header" or "trailer"
	Want      string // base64 value the client sent
	Got       string // base64 value computed over the body
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("x-amz-checksum-%s (%s): client sent %s, body has %s: %v",
		lowerAlg(e.Algorithm), e.Source, e.Want, e.Got, ErrChecksumMismatch)
}

// Unwrap makes errors.Is(err, ErrChecksumMismatch) true.
func (e *ChecksumError) Unwrap() error { return ErrChecksumMismatch }

// UnsignedHeadersError names the x-amz-* headers a request carries without
// signing them; it wraps ErrUnsignedHeaders.
type UnsignedHeadersError struct {
	Names []string // lower-case header names, sorted
}

func (e *UnsignedHeadersError) Error() string {
	return fmt.Sprintf("headers %s: %v", strings.Join(e.Names, ", "), ErrUnsignedHeaders)
}

// Unwrap makes errors.Is(err, ErrUnsignedHeaders) true.
func (e *UnsignedHeadersError) Unwrap() error { return ErrUnsignedHeaders }
