package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/shale-store/shale/internal/s3auth"
	"github.com/shale-store/shale/object"
)

// MaxPutSize is S3's limit on a single PUT and on one part: 5 GiB.
const MaxPutSize = 5 << 30

// maxUserMeta is S3's limit on the x-amz-meta-* headers (names and values).
const maxUserMeta = 2 << 10

// storedHeaders are the standard headers kept with an object and returned
// on GET/HEAD (Content-Type is kept separately).
func storedHeaders() [5]string {
	return [...]string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}
}

// responseOverrides maps GET/HEAD query parameters to the header they set.
func responseOverrides() [6][2]string {
	return [...][2]string{
		{"response-content-type", "Content-Type"},
		{"response-content-language", "Content-Language"},
		{"response-expires", "Expires"},
		{"response-cache-control", "Cache-Control"},
		{"response-content-disposition", "Content-Disposition"},
		{"response-content-encoding", "Content-Encoding"},
	}
}

// objectMeta extracts what an upload stores besides its bytes: content
// type, the standard headers (aws-chunked stripped from Content-Encoding)
// and the user metadata (names lower-cased, without x-amz-meta-). The user
// metadata is capped at maxUserMeta (MetadataTooLarge) and all of it
// together at MaxHeaderSection (RequestHeaderSectionTooLarge): the request
// headers an object or a multipart upload keeps in meta are bounded
// whatever the request's header section was allowed to be.
func objectMeta(hdr http.Header) (contentType string, headers, userMeta map[string]string, err error) {
	contentType = hdr.Get("Content-Type")
	stored := len(contentType)
	headers = map[string]string{}
	for _, k := range storedHeaders() {
		v := hdr.Get(k)
		if k == "Content-Encoding" {
			v = stripAWSChunked(v)
		}
		if v != "" {
			headers[k] = v
			stored += len(k) + len(v)
		}
	}
	userMeta = map[string]string{}
	total := 0
	for k, vs := range hdr {
		name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-meta-")
		if !ok || name == "" {
			continue
		}
		v := strings.Join(vs, ",")
		userMeta[name] = v
		total += len(name) + len(v)
	}
	if total > maxUserMeta {
		return "", nil, nil, detail(ErrMetadataTooLarge, "user metadata is %d bytes, more than %d", total, maxUserMeta)
	}
	if stored += total; stored > MaxHeaderSection {
		return "", nil, nil, detail(ErrHeadersTooLarge, "the headers to store are %d bytes, more than %d", stored, MaxHeaderSection)
	}
	return contentType, headers, userMeta, nil
}

// stripAWSChunked removes the aws-chunked coding from a Content-Encoding
// value: it describes the request framing, not the object.
func stripAWSChunked(v string) string {
	if !strings.Contains(strings.ToLower(v), "aws-chunked") {
		return v
	}
	var keep []string
	for _, c := range strings.Split(v, ",") {
		if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "aws-chunked") {
			keep = append(keep, c)
		}
	}
	return strings.Join(keep, ",")
}

// setObjectHeaders presents version m as S3 response headers.
func setObjectHeaders(hdr http.Header, m object.Info) {
	hdr.Set("ETag", quote(m.ETag))
	hdr.Set("Last-Modified", m.Created.UTC().Format(http.TimeFormat))
	hdr.Set("Accept-Ranges", "bytes")
	ct := m.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	hdr.Set("Content-Type", ct)
	for _, k := range storedHeaders() {
		if v := m.Headers[k]; v != "" {
			hdr.Set(k, v)
		}
	}
	for k, v := range m.UserMeta {
		hdr["X-Amz-Meta-"+k] = []string{v}
	}
	if n := len(m.PartSizes); n > 1 {
		hdr.Set("x-amz-mp-parts-count", strconv.Itoa(n))
	}
}

// setChecksumHeaders presents stored checksums as x-amz-checksum-* headers.
func setChecksumHeaders(hdr http.Header, sums map[string]string) {
	for alg, v := range sums {
		if v == "" {
			continue
		}
		hdr.Set("x-amz-checksum-"+strings.ToLower(alg), v)
		typ := "FULL_OBJECT"
		if strings.Contains(v, "-") {
			typ = "COMPOSITE"
		}
		hdr.Set("x-amz-checksum-type", typ)
	}
}

// eofHook calls onEOF once, when r first returns io.EOF.
type eofHook struct {
	r     io.Reader
	onEOF func()
	done  bool
}

func (e *eofHook) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.done {
		e.done = true
		e.onEOF()
	}
	return n, err
}

// capReader fails with ErrEntityTooLarge once more than limit bytes have
// come through: the bound on a body whose size was not declared.
type capReader struct {
	r     io.Reader
	limit int64
	n     int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, detail(ErrEntityTooLarge, "the body is larger than %d bytes", c.limit)
	}
	// Read one byte past the limit at most, to tell "exactly limit" from
	// "more".
	if rest := c.limit + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return 0, detail(ErrEntityTooLarge, "the body is larger than %d bytes", c.limit)
	}
	return n, err
}

// uploadBody returns the body to hand to the object layer and the checksum
// map that is complete once that body returned io.EOF (see ObjectService).
// A body of undeclared size (q.Size < 0: chunked transfer without a decoded
// length) fails with ErrEntityTooLarge past limit bytes; a declared size
// was already checked against it.
func uploadBody(q *s3auth.Request, limit int64) (io.Reader, map[string]string) {
	// The object layer compares q.MD5 (PutInput.ExpectMD5) with the ETag
	// MD5 it computes over the same bytes: one MD5 per body, not two.
	q.CallerChecksMD5()
	sums := map[string]string{}
	var body io.Reader = &eofHook{r: q.Body, onEOF: func() {
		for k, v := range q.Checksums() {
			sums[k] = v
		}
	}}
	if q.Size < 0 {
		body = &capReader{r: body, limit: limit}
	}
	return body, sums
}

func (h *handler) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	q := authReq(r)
	if q.Size > h.maxPut {
		h.writeError(w, r, detail(ErrEntityTooLarge, "a single PUT may hold at most %d bytes; use multipart upload", h.maxPut))
		return
	}
	ct, headers, um, err := objectMeta(r.Header)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	cond, err := writePrecondition(r.Header)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	body, sums := uploadBody(q, h.maxPut)
	m, err := h.svc.PutObject(r.Context(), object.PutInput{
		Bucket: bucket, Key: key, Body: body, Size: q.Size, ExpectMD5: q.MD5,
		ContentType: ct, Headers: headers, UserMeta: um, Checksums: sums, If: cond,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", quote(m.ETag))
	setChecksumHeaders(w.Header(), m.Checksums)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// lazyWriter sends the status line with the first body byte, so that a read
// failing before any byte can still be answered with an S3 error. A failed
// write is the client's failure and is recorded as such.
type lazyWriter struct {
	w       http.ResponseWriter
	r       *http.Request
	status  int
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(l.status)
	}
	n, err := l.w.Write(p)
	if err != nil {
		clientFailed(l.r)
	}
	return n, err
}

// getObject serves GetObject and HeadObject.
func (h *handler) getObject(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	ctx := r.Context()
	m, err := h.svc.HeadObject(ctx, bucket, key)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	hdr := w.Header()
	if err := requestConditions(r.Header).check(m.ETag, m.Created, false); err != nil {
		if errors.Is(err, ErrNotModified) {
			hdr.Set("ETag", quote(m.ETag))
			hdr.Set("Last-Modified", m.Created.UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	off, length := int64(0), m.Size
	if pn := q.Get("partNumber"); pn != "" {
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > maxParts {
			h.writeError(w, r, detail(ErrInvalidArgument, "part number must be an integer between 1 and %d", maxParts))
			return
		}
		if n > max(len(m.PartSizes), 1) {
			h.writeError(w, r, ErrInvalidPartNumber)
			return
		}
		if len(m.PartSizes) > 0 {
			for _, size := range m.PartSizes[:n-1] {
				off += size
			}
			length = m.PartSizes[n-1]
		}
		status = http.StatusPartialContent
	} else {
		br, ok, err := parseRange(r.Header.Get("Range"), m.Size)
		if err != nil {
			hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(m.Size, 10))
			h.writeError(w, r, err)
			return
		}
		if ok {
			off, length, status = br.start, br.length, http.StatusPartialContent
		}
	}
	setObjectHeaders(hdr, m)
	if status == http.StatusPartialContent && length > 0 {
		hdr.Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+length-1, 10)+"/"+strconv.FormatInt(m.Size, 10))
	}
	if status == http.StatusOK && strings.EqualFold(r.Header.Get("x-amz-checksum-mode"), "ENABLED") {
		setChecksumHeaders(hdr, m.Checksums)
	}
	for _, o := range responseOverrides() {
		if v := q.Get(o[0]); v != "" {
			hdr.Set(o[1], v)
		}
	}
	hdr.Set("Content-Length", strconv.FormatInt(length, 10))
	if r.Method == http.MethodHead || length == 0 {
		w.WriteHeader(status)
		return
	}
	lw := &lazyWriter{w: w, r: r, status: status}
	if err := h.svc.ReadObject(ctx, lw, m, off, length); err != nil {
		if !lw.started {
			for k := range hdr {
				if k != "X-Amz-Request-Id" && k != "X-Amz-Id-2" && k != "Server" {
					delete(hdr, k)
				}
			}
			h.writeError(w, r, err)
			return
		}
		// Part of the body is out: the only honest answer left is to
		// break the connection so the client sees a short response.
		h.logFailure(r, "s3 get failed mid-body", "bucket", bucket, "key", key, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (h *handler) deleteObject(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if err := h.svc.DeleteObject(r.Context(), bucket, key); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteConcurrency bounds the deletes of one DeleteObjects request.
const deleteConcurrency = 16

func (h *handler) deleteObjects(w http.ResponseWriter, r *http.Request, bucket string) {
	ctx := r.Context()
	q := authReq(r)
	body, err := readXMLBody(q.Body, maxDeleteXML)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	quiet, keys, versions, err := parseDeleteObjects(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if _, err := h.svc.HeadBucket(ctx, bucket); err != nil {
		h.writeError(w, r, err)
		return
	}
	errs := make([]error, len(keys))
	var g errgroup.Group
	g.SetLimit(deleteConcurrency)
	for i, key := range keys {
		if err := checkKey(key); err != nil {
			errs[i] = err
			continue
		}
		if err := checkVersionID(versions[i], versions[i] != ""); err != nil {
			errs[i] = err // never the current object in its place
			continue
		}
		g.Go(func() error {
			errs[i] = h.svc.DeleteObject(ctx, bucket, key)
			return nil
		})
	}
	_ = g.Wait() // every goroutine returns nil; outcomes are in errs
	var res deleteResult
	for i, key := range keys {
		if errs[i] == nil {
			if !quiet {
				res.Deleted = append(res.Deleted, deletedEntry{Key: key})
			}
			continue
		}
		e, known := toS3(errs[i])
		if !known {
			h.logFailure(r, "s3 delete failed", "bucket", bucket, "key", key, "err", errs[i])
		}
		res.Errors = append(res.Errors, deleteError{Key: key, Code: e.Code, Message: e.Message})
	}
	writeXML(w, http.StatusOK, res)
}

// parseCopySource splits x-amz-copy-source ("[/]bucket/key[?versionId=…]",
// URL-encoded) into a checked bucket and key; the version id may only be
// "null" (checkVersionID).
func parseCopySource(v string) (bucket, key string, err error) {
	src, query, hasQuery := strings.Cut(v, "?")
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return "", "", detail(ErrInvalidArgument, "x-amz-copy-source is not URL-encoded correctly")
		}
		if err := checkVersionID(q.Get("versionId"), q.Has("versionId")); err != nil {
			return "", "", err
		}
	}
	src, err = url.PathUnescape(src)
	if err != nil {
		return "", "", detail(ErrInvalidArgument, "x-amz-copy-source is not URL-encoded correctly")
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if bucket == "" || key == "" {
		return "", "", detail(ErrInvalidArgument, "copy source must mention the source bucket and key: sourcebucket/sourcekey")
	}
	if err := checkBucketName(bucket); err != nil {
		return "", "", err
	}
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

// copySource resolves and checks the source of a copy: its version, after
// the x-amz-copy-source-if-* conditionals.
func (h *handler) copySource(ctx context.Context, r *http.Request, v string) (object.Info, error) {
	sb, sk, err := parseCopySource(v)
	if err != nil {
		return object.Info{}, err
	}
	src, err := h.svc.HeadObject(ctx, sb, sk)
	if err != nil {
		return object.Info{}, err
	}
	if err := copySourceConditions(r.Header).check(src.ETag, src.Created, true); err != nil {
		return object.Info{}, err
	}
	return src, nil
}

// wholeChecksums keeps the full-object checksums of sums (a composite
// "value-N" checksum of a multipart object does not describe a copy).
func wholeChecksums(sums map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range sums {
		if v != "" && !strings.Contains(v, "-") {
			out[k] = v
		}
	}
	return out
}

func (h *handler) copyObject(w http.ResponseWriter, r *http.Request, bucket, key, source string) {
	ctx := r.Context()
	directive := strings.ToUpper(r.Header.Get("x-amz-metadata-directive"))
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		h.writeError(w, r, detail(ErrInvalidArgument, "unknown metadata directive %q", clip(directive)))
		return
	}
	cond, err := writePrecondition(r.Header)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	src, err := h.copySource(ctx, r, source)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if src.Size > h.maxPut {
		h.writeError(w, r, detail(ErrCopySourceTooLarge, "The specified copy source is larger than the maximum allowable size for a copy source: %d", h.maxPut))
		return
	}
	in := object.PutInput{Bucket: bucket, Key: key, Size: src.Size, Checksums: wholeChecksums(src.Checksums), If: cond}
	if directive == "REPLACE" {
		if in.ContentType, in.Headers, in.UserMeta, err = objectMeta(r.Header); err != nil {
			h.writeError(w, r, err)
			return
		}
	} else {
		if src.Bucket == bucket && src.Key == key {
			h.writeError(w, r, detail(ErrInvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."))
			return
		}
		in.ContentType, in.Headers, in.UserMeta = src.ContentType, src.Headers, src.UserMeta
	}
	m, err := h.svc.CopyObject(ctx, src, in)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	setChecksumHeaders(w.Header(), m.Checksums)
	writeXML(w, http.StatusOK, copyObjectResult{ETag: quote(m.ETag), LastModified: iso8601(m.Created)})
}

// checkVersionID checks a versionId an object request gave (given): buckets
// are never versioned, so every object's one version is "null" — any other
// id names a version that does not exist, and is refused rather than
// served (or deleted) as the current object. S3 answers the same for a
// bucket that never had versioning.
func checkVersionID(v string, given bool) error {
	switch {
	case !given || v == nullVersion:
		return nil
	case v == "":
		return detail(ErrInvalidArgument, "Version id cannot be the empty string")
	}
	return detail(ErrInvalidArgument, "Invalid version id specified")
}
