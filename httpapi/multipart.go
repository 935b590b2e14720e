package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shale-store/shale/object"
)

// checksumAlgorithms are the x-amz-checksum-* algorithms S3 knows, in the
// spelling the object layer uses as map keys.
func checksumAlgorithms() [5]string {
	return [...]string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}
}

// parsePartNumber reads ?partNumber (1..10000) and ?uploadId.
func parsePartNumber(q url.Values) (number int, uploadID string, err error) {
	n, err := strconv.Atoi(q.Get("partNumber"))
	if err != nil || n < 1 || n > maxParts {
		return 0, "", detail(ErrInvalidArgument, "part number must be an integer between 1 and %d, inclusive", maxParts)
	}
	uploadID = q.Get("uploadId")
	if uploadID == "" {
		return 0, "", detail(ErrInvalidArgument, "uploadId is required with partNumber")
	}
	return n, uploadID, nil
}

func (h *handler) createUpload(w http.ResponseWriter, r *http.Request, bucket, key string) {
	ct, headers, um, err := objectMeta(r.Header)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	u := object.Upload{Bucket: bucket, Key: key, ContentType: ct, Headers: headers, UserMeta: um}
	alg := strings.ToUpper(r.Header.Get("x-amz-checksum-algorithm"))
	if alg != "" {
		known := false
		for _, a := range checksumAlgorithms() {
			known = known || a == alg
		}
		if !known {
			h.writeError(w, r, detail(ErrInvalidArgument, "unknown checksum algorithm %q", clip(alg)))
			return
		}
		u.Checksums = map[string]string{alg: ""}
	}
	u, err = h.svc.CreateUpload(r.Context(), u)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if alg != "" {
		w.Header().Set("x-amz-checksum-algorithm", alg)
	}
	writeXML(w, http.StatusOK, initiateMultipartUploadResult{Bucket: bucket, Key: key, UploadID: u.ID})
}

func (h *handler) uploadPart(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	n, uploadID, err := parsePartNumber(q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	aq := authReq(r)
	if aq.Size > h.maxPut {
		h.writeError(w, r, detail(ErrEntityTooLarge, "a part may hold at most %d bytes", h.maxPut))
		return
	}
	body, sums := uploadBody(aq, h.maxPut)
	p, err := h.svc.UploadPart(r.Context(), uploadID, n, object.PutInput{
		Bucket: bucket, Key: key, Body: body, Size: aq.Size, ExpectMD5: aq.MD5, Checksums: sums,
	})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", quote(p.ETag))
	setChecksumHeaders(w.Header(), p.Checksums)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

func (h *handler) uploadPartCopy(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values, source string) {
	ctx := r.Context()
	n, uploadID, err := parsePartNumber(q)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	src, err := h.copySource(ctx, r, source)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	br := byteRange{start: 0, length: src.Size}
	if v := r.Header.Get("x-amz-copy-source-range"); v != "" {
		if br, err = parseCopyRange(v, src.Size); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	if br.length > h.maxPut {
		h.writeError(w, r, detail(ErrEntityTooLarge, "a part may hold at most %d bytes", h.maxPut))
		return
	}
	p, err := h.svc.UploadPartCopy(ctx, uploadID, n, bucket, key, src, br.start, br.length)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeXML(w, http.StatusOK, copyPartResult{ETag: quote(p.ETag), LastModified: iso8601(p.Created)})
}

func (h *handler) completeUpload(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	uploadID := q.Get("uploadId")
	cond, err := writePrecondition(r.Header)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	body, err := readXMLBody(authReq(r).Body, maxCompleteXML)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	parts, err := parseCompleteMultipart(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	m, err := h.svc.CompleteUploadIf(r.Context(), bucket, key, uploadID, parts, cond)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	loc := scheme + "://" + r.Host + "/" + bucket + "/" + (&url.URL{Path: key}).EscapedPath()
	setChecksumHeaders(w.Header(), m.Checksums)
	writeXML(w, http.StatusOK, completeMultipartUploadResult{Location: loc, Bucket: bucket, Key: key, ETag: quote(m.ETag)})
}

func (h *handler) abortUpload(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	if err := h.svc.AbortUpload(r.Context(), bucket, key, q.Get("uploadId")); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listParts(w http.ResponseWriter, r *http.Request, bucket, key string, q url.Values) {
	maxParts, err := parseMax(q, "max-parts")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			h.writeError(w, r, detail(ErrInvalidArgument, "part-number-marker must be a non-negative integer"))
			return
		}
	}
	uploadID := q.Get("uploadId")
	parts, err := h.svc.ListParts(r.Context(), bucket, key, uploadID)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	own := ownerOf(r)
	out := listPartsResult{
		Bucket: bucket, Key: key, UploadID: uploadID, Initiator: own, Owner: own,
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts,
	}
	for _, p := range parts {
		if p.Number <= marker {
			continue
		}
		if len(out.Parts) == maxParts {
			out.IsTruncated = true
			break
		}
		e := partEntry{PartNumber: p.Number, LastModified: iso8601(p.Created), ETag: quote(p.ETag), Size: p.Size}
		e.ChecksumCRC32, e.ChecksumCRC32C = p.Checksums["CRC32"], p.Checksums["CRC32C"]
		e.ChecksumCRC64NVME, e.ChecksumSHA1, e.ChecksumSHA256 = p.Checksums["CRC64NVME"], p.Checksums["SHA1"], p.Checksums["SHA256"]
		out.Parts = append(out.Parts, e)
		out.NextPartNumberMarker = e.PartNumber
	}
	writeXML(w, http.StatusOK, out)
}
