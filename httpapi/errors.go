package httpapi

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/shale-store/shale/internal/s3auth"
	"github.com/shale-store/shale/object"
)

// Errors decided by this package when a request is malformed or refused
// before (or instead of) reaching the object layer. Each is answered with the
// S3 code named in its comment.
var (
	// ErrMalformedXML: a request body is not the XML document the operation
	// expects, or breaks its rules (no parts, more than 1000 keys). MalformedXML.
	ErrMalformedXML = errors.New("httpapi: malformed XML")
	// ErrMessageTooLarge: an XML request body exceeds its size limit.
	// MaxMessageLengthExceeded.
	ErrMessageTooLarge = errors.New("httpapi: request body too large")
	// ErrInvalidBucketName: the bucket name breaks S3's naming rules.
	// InvalidBucketName.
	ErrInvalidBucketName = errors.New("httpapi: invalid bucket name")
	// ErrKeyTooLong: the object key is longer than 1024 bytes. KeyTooLongError.
	ErrKeyTooLong = errors.New("httpapi: key too long")
	// ErrInvalidArgument: a header or query parameter has a value S3 does not
	// accept (max-keys, partNumber, metadata directive, copy source, key that
	// is not UTF-8 or, for a key being written, holds a control character,
	// continuation token …). InvalidArgument.
	ErrInvalidArgument = errors.New("httpapi: invalid argument")
	// ErrInvalidRequest: the request is well-formed but not allowed (copying
	// an object onto itself without changing anything). InvalidRequest.
	ErrInvalidRequest = errors.New("httpapi: invalid request")
	// ErrInvalidRange: a well-formed Range (or copy-source range) cannot be
	// satisfied by the object's size. InvalidRange (416).
	ErrInvalidRange = errors.New("httpapi: range not satisfiable")
	// ErrInvalidPartNumber: GET/HEAD ?partNumber names a part the object does
	// not have. InvalidPartNumber (416).
	ErrInvalidPartNumber = errors.New("httpapi: no such part number")
	// ErrPreconditionFailed: If-Match / If-Unmodified-Since (or a copy-source
	// conditional) failed. PreconditionFailed (412).
	ErrPreconditionFailed = errors.New("httpapi: precondition failed")
	// ErrNotModified: If-None-Match / If-Modified-Since on GET or HEAD found
	// the object unchanged. 304 with no body.
	ErrNotModified = errors.New("httpapi: not modified")
	// ErrNotImplemented: an operation or sub-resource shale does not serve.
	// NotImplemented (501).
	ErrNotImplemented = errors.New("httpapi: not implemented")
	// ErrMethodNotAllowed: the method is not valid for the resource.
	// MethodNotAllowed (405).
	ErrMethodNotAllowed = errors.New("httpapi: method not allowed")
	// ErrEntityTooLarge: a single PUT or part is larger than 5 GiB.
	// EntityTooLarge.
	ErrEntityTooLarge = errors.New("httpapi: entity too large")
	// ErrCopySourceTooLarge: CopyObject's source is larger than 5 GiB, the
	// most S3 copies in one request (larger objects are copied part by
	// part with UploadPartCopy). InvalidRequest.
	ErrCopySourceTooLarge = errors.New("httpapi: copy source too large")
	// ErrMetadataTooLarge: the x-amz-meta-* headers exceed 2 KB.
	// MetadataTooLarge.
	ErrMetadataTooLarge = errors.New("httpapi: user metadata too large")
	// ErrHeadersTooLarge: the request header section exceeds
	// MaxHeaderSection (8 KiB), or the headers an upload would store do.
	// RequestHeaderSectionTooLarge.
	ErrHeadersTooLarge = errors.New("httpapi: request header section too large")
	// ErrInvalidLocationConstraint: CreateBucket named a region other than
	// Config.Region. InvalidLocationConstraint.
	ErrInvalidLocationConstraint = errors.New("httpapi: invalid location constraint")
	// ErrSlowDown: more than Config.MaxInFlight requests are in flight.
	// SlowDown (503).
	ErrSlowDown = errors.New("httpapi: too many requests in flight")
	// ErrRequestTimeout: the client kept a request body or a response
	// write waiting past Config.BodyStall, MinBodyRate or WriteStall; its
	// connection is cut. RequestTimeout (400).
	ErrRequestTimeout = errors.New("httpapi: client too slow")
	// ErrNoCredentials: the handler has no Authenticator and no credentials,
	// so it refuses everything. AccessDenied.
	ErrNoCredentials = errors.New("httpapi: no credentials configured")
)

// Error is the S3 answer to a failed request: the code and message of the
// XML error document and the HTTP status.
type Error struct {
	Code    string // S3 error code, such as "NoSuchKey"
	Message string // human-readable message sent to the client
	Status  int    // HTTP status code
}

func (e Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Message) }

// errorEntry is one row of the error table.
type errorEntry struct {
	err error
	Error
}

// errorTable is the single mapping from our errors to S3 answers, consulted
// in order with errors.Is; the first match wins. It is a function, not a
// variable, so that nothing can change it.
func errorTable() []errorEntry {
	e := func(err error, code string, status int, msg string) errorEntry {
		return errorEntry{err: err, Error: Error{Code: code, Status: status, Message: msg}}
	}
	return []errorEntry{
		// httpapi's own.
		e(ErrMalformedXML, "MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema."),
		e(ErrMessageTooLarge, "MaxMessageLengthExceeded", 400, "Your request was too big."),
		e(ErrInvalidBucketName, "InvalidBucketName", 400, "The specified bucket is not valid."),
		e(ErrKeyTooLong, "KeyTooLongError", 400, "Your key is too long."),
		e(ErrInvalidArgument, "InvalidArgument", 400, "Invalid Argument."),
		e(ErrInvalidRequest, "InvalidRequest", 400, "Invalid Request."),
		e(ErrInvalidRange, "InvalidRange", 416, "The requested range is not satisfiable."),
		e(ErrInvalidPartNumber, "InvalidPartNumber", 416, "The requested partnumber is not satisfiable."),
		e(ErrPreconditionFailed, "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold."),
		e(ErrNotModified, "NotModified", 304, "Not Modified."),
		e(ErrNotImplemented, "NotImplemented", 501, "A header or query you provided implies functionality that is not implemented."),
		e(ErrMethodNotAllowed, "MethodNotAllowed", 405, "The specified method is not allowed against this resource."),
		e(ErrEntityTooLarge, "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size."),
		e(ErrCopySourceTooLarge, "InvalidRequest", 400, "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"),
		e(ErrMetadataTooLarge, "MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."),
		e(ErrHeadersTooLarge, "RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size."),
		e(ErrInvalidLocationConstraint, "InvalidLocationConstraint", 400, "The specified location constraint is not valid."),
		e(ErrSlowDown, "SlowDown", 503, "Please reduce your request rate."),
		e(ErrRequestTimeout, "RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period."),
		e(ErrNoCredentials, "AccessDenied", 403, "Access Denied."),

		// Authentication (internal/s3auth). Body errors come first: the
		// object layer wraps them.
		e(s3auth.ErrMissingAuth, "AccessDenied", 403, "Access Denied."),
		e(s3auth.ErrMalformedAuth, "AuthorizationHeaderMalformed", 400, "The authorization header is malformed."),
		e(s3auth.ErrUnknownAccessKey, "InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."),
		e(s3auth.ErrSignatureMismatch, "SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."),
		e(s3auth.ErrContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed."),
		e(s3auth.ErrExpired, "AccessDenied", 403, "Request has expired."),
		e(s3auth.ErrSkew, "RequestTimeTooSkewed", 403, "The difference between the request time and the server's time is too large."),
		e(s3auth.ErrRegion, "AuthorizationHeaderMalformed", 400, "The authorization header is malformed; the region is wrong."),
		e(s3auth.ErrBadDigest, "BadDigest", 400, "The Content-MD5 you specified did not match what we received."),
		e(s3auth.ErrInvalidDigest, "InvalidDigest", 400, "The Content-MD5 you specified is not valid."),
		e(s3auth.ErrChecksumMismatch, "BadDigest", 400, "The checksum you specified did not match the calculated checksum."),
		e(s3auth.ErrInvalidChecksum, "InvalidRequest", 400, "The checksum headers of the request are not valid."),
		e(s3auth.ErrIncompleteBody, "IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
		e(s3auth.ErrMalformedChunk, "IncompleteBody", 400, "The aws-chunked body of the request is malformed."),
		e(s3auth.ErrUnsignedHeaders, "AccessDenied", 403, "There were headers present in the request which were not signed"),
		e(s3auth.ErrUnsupported, "NotImplemented", 501, "The authentication scheme is not implemented."),

		// Object layer (object): what meta decided, as the object layer
		// names it.
		e(object.ErrNoSuchBucket, "NoSuchBucket", 404, "The specified bucket does not exist."),
		e(object.ErrBucketExists, "BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it."),
		e(object.ErrBucketNotEmpty, "BucketNotEmpty", 409, "The bucket you tried to delete is not empty."),
		e(object.ErrNoSuchKey, "NoSuchKey", 404, "The specified key does not exist."),
		e(object.ErrNoSuchUpload, "NoSuchUpload", 404, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."),
		e(object.ErrInvalidArgument, "InvalidArgument", 400, "Invalid Argument."),
		e(object.ErrPreconditionFailed, "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold."),
		e(object.ErrConflict, "OperationAborted", 409, "A conflicting conditional operation is currently in progress against this resource. Try again."),

		// Object layer (object): its own.
		e(object.ErrQuorum, "SlowDown", 503, "Please reduce your request rate."),
		// No meta leader (an election, a lost majority) or meta unreachable:
		// SlowDown, which SDKs retry with backoff.
		e(object.ErrUnavailable, "SlowDown", 503, "Please reduce your request rate."),
		e(object.ErrNoPlacement, "SlowDown", 503, "Please reduce your request rate."),
		e(object.ErrBusy, "SlowDown", 503, "Please reduce your request rate."),
		e(object.ErrBadDigest, "BadDigest", 400, "The Content-MD5 you specified did not match what we received."),
		e(object.ErrIncompleteBody, "IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header."),
		e(object.ErrInvalidPart, "InvalidPart", 400, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."),
		e(object.ErrInvalidPartOrder, "InvalidPartOrder", 400, "The list of parts was not in ascending order. The parts list must be specified in order by part number."),
		e(object.ErrEntityTooSmall, "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."),
		e(object.ErrInvalidRange, "InvalidRange", 416, "The requested range is not satisfiable."),
		e(object.ErrUnreadable, "InternalError", 500, "We encountered an internal error. Please try again."),
	}
}

// internalError is the answer to every error the table does not know.
var internalError = Error{Code: "InternalError", Status: 500, Message: "We encountered an internal error. Please try again."}

// detailError gives a client-facing message to one of the sentinels above.
type detailError struct {
	err error
	msg string
}

func (e *detailError) Error() string { return e.err.Error() + ": " + e.msg }
func (e *detailError) Unwrap() error { return e.err }

// detail wraps sentinel with a message that is shown to the client in place of
// the table's message. Only for messages built by this package.
func detail(sentinel error, format string, args ...any) error {
	return &detailError{err: sentinel, msg: fmt.Sprintf(format, args...)}
}

// toS3 maps err to its S3 answer; known reports whether the table knew it.
func toS3(err error) (e Error, known bool) {
	for _, row := range errorTable() {
		if errors.Is(err, row.err) {
			e = row.Error
			var d *detailError
			if errors.As(err, &d) {
				e.Message = d.msg
			}
			return e, true
		}
	}
	return internalError, false
}

// errorDoc is S3's XML error document.
type errorDoc struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	Region    string   `xml:"Region,omitempty"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId,omitempty"`

	// HeadersNotSigned lists the unsigned x-amz-* headers of an
	// AccessDenied for s3auth.ErrUnsignedHeaders, comma-separated as S3 does.
	HeadersNotSigned string `xml:"HeadersNotSigned,omitempty"`

	// MaxSizeAllowed is the limit that a *TooLarge error exceeded, when
	// S3 reports one.
	MaxSizeAllowed int64 `xml:"MaxSizeAllowed,omitempty"`
}

// writeError answers r with err's S3 error. HEAD requests and 304 get the
// status only. Headers already set stay (Content-Range of a 416). Unknown
// errors are logged (the one place they are handled): at error level, or
// at debug level when the client went away.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, known := toS3(err)
	if !known {
		h.logFailure(r, "s3 request failed", "err", err)
	}
	hdr := w.Header()
	if e.Status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", "1")
	}
	if r.Method == http.MethodHead || e.Status == http.StatusNotModified {
		w.WriteHeader(e.Status)
		return
	}
	doc := errorDoc{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: requestID(r), HostID: hostID(r)}
	if errors.Is(err, s3auth.ErrRegion) {
		doc.Region = h.cfg.Region
		doc.Message = fmt.Sprintf("The authorization header is malformed; the region is wrong; expecting '%s'.", h.cfg.Region)
	}
	if errors.Is(err, s3auth.ErrMalformedAuth) && r.URL.Query().Has("X-Amz-Algorithm") {
		doc.Code = "AuthorizationQueryParametersError"
		doc.Message = "Error parsing the X-Amz-Credential parameter or another presigned query parameter."
	}
	if errors.Is(err, ErrHeadersTooLarge) {
		doc.MaxSizeAllowed = MaxHeaderSection
	}
	var ue *s3auth.UnsignedHeadersError
	if errors.As(err, &ue) {
		doc.HeadersNotSigned = strings.Join(ue.Names, ", ")
	}
	writeXML(w, e.Status, doc)
}

// writeXML writes v as an XML document with status.
func writeXML(w http.ResponseWriter, status int, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		// Our own response types always marshal; this is a programming error.
		http.Error(w, "xml: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", fmt.Sprint(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}
