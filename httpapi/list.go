package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shale-store/shale/object"
)

// maxListKeys is S3's ceiling (and default) for max-keys, max-uploads and
// max-parts.
const maxListKeys = 1000

// parseMax reads a max-keys style parameter: absent → 1000, above 1000 →
// 1000, negative or not a number → InvalidArgument.
func parseMax(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return maxListKeys, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, detail(ErrInvalidArgument, "%s must be a non-negative integer", name)
	}
	return min(n, maxListKeys), nil
}

// encoder returns the function that presents names in a listing:
// identity, or S3's URL encoding when encoding-type=url.
func encoder(q url.Values) (enc func(string) string, encType string, err error) {
	switch t := q.Get("encoding-type"); {
	case t == "":
		return func(s string) string { return s }, "", nil
	case strings.EqualFold(t, "url"):
		return s3URLEncode, "url", nil
	default:
		return nil, "", detail(ErrInvalidArgument, "invalid Encoding Method specified in Request")
	}
}

// s3URLEncode encodes a name as S3 does for encoding-type=url: form encoding
// with '/' left as is. Clients decode it with QueryUnescape / unquote_plus.
func s3URLEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
}

// encodeToken and decodeToken make the opaque ListObjectsV2 continuation
// token: the key after which the next page starts.
func encodeToken(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", detail(ErrInvalidArgument, "the continuation token provided is incorrect")
	}
	return string(b), nil
}

// list runs one page of a listing; max 0 answers an empty page once the
// bucket is known to exist.
func (h *handler) list(r *http.Request, bucket string, opts object.ListOptions) (object.ListResult, error) {
	if opts.Limit == 0 {
		_, err := h.svc.HeadBucket(r.Context(), bucket)
		return object.ListResult{}, err
	}
	return h.svc.ListObjects(r.Context(), bucket, opts)
}

// listParams reads what every listing reads alike: the page size from the
// max-keys style parameter maxName, then encoding-type.
func listParams(q url.Values, maxName string) (n int, enc func(string) string, encType string, err error) {
	if n, err = parseMax(q, maxName); err != nil {
		return 0, nil, "", err
	}
	enc, encType, err = encoder(q)
	return n, enc, encType, err
}

func entries(res object.ListResult, enc func(string) string) ([]objectEntry, []commonPrefix) {
	objs := make([]objectEntry, 0, len(res.Objects))
	for _, o := range res.Objects {
		objs = append(objs, objectEntry{Key: enc(o.Key), LastModified: iso8601(o.Created), ETag: quote(o.ETag), Size: o.Size, StorageClass: "STANDARD"})
	}
	var cps []commonPrefix
	for _, p := range res.CommonPrefixes {
		cps = append(cps, commonPrefix{Prefix: enc(p)})
	}
	return objs, cps
}

func (h *handler) listObjectsV2(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	maxKeys, enc, encType, err := listParams(q, "max-keys")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	opts := object.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), After: q.Get("start-after"), Limit: maxKeys}
	token := q.Get("continuation-token")
	if token != "" {
		if opts.After, err = decodeToken(token); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	res, err := h.list(r, bucket, opts)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := listBucketResultV2{
		Name: bucket, Prefix: enc(opts.Prefix), Delimiter: enc(opts.Delimiter), MaxKeys: maxKeys,
		IsTruncated: res.Truncated, EncodingType: encType, ContinuationToken: token,
		StartAfter: enc(q.Get("start-after")),
	}
	out.Contents, out.CommonPrefixes = entries(res, enc)
	out.KeyCount = len(out.Contents) + len(out.CommonPrefixes)
	if res.Truncated {
		out.NextContinuationToken = encodeToken(res.NextAfter)
	}
	writeXML(w, http.StatusOK, out)
}

func (h *handler) listObjectsV1(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	maxKeys, enc, encType, err := listParams(q, "max-keys")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	opts := object.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), After: q.Get("marker"), Limit: maxKeys}
	res, err := h.list(r, bucket, opts)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := listBucketResultV1{
		Name: bucket, Prefix: enc(opts.Prefix), Marker: enc(opts.After), MaxKeys: maxKeys,
		Delimiter: enc(opts.Delimiter), IsTruncated: res.Truncated, EncodingType: encType,
	}
	out.Contents, out.CommonPrefixes = entries(res, enc)
	// S3 sends NextMarker only with a delimiter; without one clients
	// continue from the last key.
	if res.Truncated && opts.Delimiter != "" {
		out.NextMarker = enc(res.NextAfter)
	}
	writeXML(w, http.StatusOK, out)
}

// listVersions serves ListObjectVersions. Buckets are never versioned, so
// every object is its key's one version, "null" and latest, as S3 answers
// for a bucket that never had versioning on — what tools that empty a
// bucket version by version (boto3's object_versions.delete(), terraform's
// force_destroy) need. key-marker continues after a key; a
// version-id-marker is only "null" (with a key-marker), the one version
// there is.
func (h *handler) listVersions(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	maxKeys, enc, encType, err := listParams(q, "max-keys")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	keyMarker, vidMarker := q.Get("key-marker"), q.Get("version-id-marker")
	switch {
	case vidMarker != "" && keyMarker == "":
		h.writeError(w, r, detail(ErrInvalidArgument, "A version-id marker cannot be specified without a key marker."))
		return
	case vidMarker != "" && vidMarker != nullVersion:
		h.writeError(w, r, detail(ErrInvalidArgument, "Invalid version id marker specified: versions in this bucket are %q.", nullVersion))
		return
	}
	opts := object.ListOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"), After: keyMarker, Limit: maxKeys}
	res, err := h.list(r, bucket, opts)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := listVersionsResult{
		Name: bucket, Prefix: enc(opts.Prefix), KeyMarker: enc(keyMarker), VersionIDMarker: vidMarker, MaxKeys: maxKeys,
		Delimiter: enc(opts.Delimiter), IsTruncated: res.Truncated, EncodingType: encType,
	}
	own := ownerOf(r)
	for _, o := range res.Objects {
		out.Versions = append(out.Versions, versionEntry{Key: enc(o.Key), VersionID: nullVersion, IsLatest: true,
			LastModified: iso8601(o.Created), ETag: quote(o.ETag), Size: o.Size, Owner: own, StorageClass: "STANDARD"})
	}
	for _, p := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: enc(p)})
	}
	if res.Truncated {
		out.NextKeyMarker = enc(res.NextAfter)
		if len(res.Objects) > 0 && res.Objects[len(res.Objects)-1].Key == res.NextAfter {
			out.NextVersionIDMarker = nullVersion
		}
	}
	writeXML(w, http.StatusOK, out)
}

// nullVersion is the version id of an object in a bucket that was never
// versioned.
const nullVersion = "null"

// listUploads serves ListMultipartUploads: one page of at most max-uploads
// (default and ceiling 1000) uploads and common prefixes, which the object
// layer reads from the markers on (S3's order: by key, then by
// initiation time).
func (h *handler) listUploads(w http.ResponseWriter, r *http.Request, bucket string, q url.Values) {
	maxUploads, enc, encType, err := listParams(q, "max-uploads")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	opts := object.UploadListOptions{
		Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), Limit: maxUploads,
	}
	if opts.KeyMarker == "" {
		opts.UploadIDMarker = ""
	}
	var res object.UploadListResult
	if maxUploads == 0 {
		_, err = h.svc.HeadBucket(r.Context(), bucket)
	} else {
		res, err = h.svc.ListUploads(r.Context(), bucket, opts)
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := listMultipartUploadsResult{
		Bucket: bucket, KeyMarker: enc(opts.KeyMarker), UploadIDMarker: opts.UploadIDMarker, Prefix: enc(opts.Prefix),
		Delimiter: enc(opts.Delimiter), MaxUploads: maxUploads, EncodingType: encType, IsTruncated: res.Truncated,
	}
	own := ownerOf(r)
	for _, u := range res.Uploads {
		out.Uploads = append(out.Uploads, uploadEntry{
			Key: enc(u.Key), UploadID: u.ID, Initiator: own, Owner: own,
			StorageClass: "STANDARD", Initiated: iso8601(u.Created),
		})
	}
	for _, p := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: enc(p)})
	}
	if res.Truncated {
		out.NextKeyMarker, out.NextUploadIDMarker = enc(res.NextKeyMarker), res.NextUploadIDMarker
	}
	writeXML(w, http.StatusOK, out)
}
