package httpapi

import (
	"net/http"
	"sort"
)

// owner of every bucket and object: shale is single-tenant, so the caller.
func ownerOf(r *http.Request) owner {
	ak := ""
	if q := authReq(r); q != nil {
		ak = q.AccessKey
	}
	return owner{ID: ak, DisplayName: ak}
}

func (h *handler) listBuckets(w http.ResponseWriter, r *http.Request) {
	bs, err := h.svc.ListBuckets(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	res := listAllMyBucketsResult{Owner: ownerOf(r), Buckets: make([]bucketEntry, 0, len(bs))}
	for _, b := range bs {
		res.Buckets = append(res.Buckets, bucketEntry{Name: b.Name, CreationDate: iso8601(b.Created), BucketRegion: h.regionOf(b.Region)})
	}
	writeXML(w, http.StatusOK, res)
}

// regionOf is the region a bucket reports: its own, else the endpoint's.
func (h *handler) regionOf(region string) string {
	if region == "" {
		return h.cfg.Region
	}
	return region
}

func (h *handler) createBucket(w http.ResponseWriter, r *http.Request, bucket string) {
	body, err := readXMLBody(authReq(r).Body, maxCreateBucketXML)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	loc, err := parseLocationConstraint(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if loc != "" && loc != h.cfg.Region {
		h.writeError(w, r, detail(ErrInvalidLocationConstraint, "this endpoint serves region %q, not %q", h.cfg.Region, clip(loc)))
		return
	}
	if err := h.svc.CreateBucket(r.Context(), bucket, h.cfg.Region); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/"+bucket)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

func (h *handler) headBucket(w http.ResponseWriter, r *http.Request, bucket string) {
	b, err := h.svc.HeadBucket(r.Context(), bucket)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("x-amz-bucket-region", h.regionOf(b.Region))
	w.WriteHeader(http.StatusOK)
}

func (h *handler) deleteBucket(w http.ResponseWriter, r *http.Request, bucket string) {
	if err := h.svc.DeleteBucket(r.Context(), bucket); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// getBucketLocation answers like S3: empty for us-east-1, else the region.
func (h *handler) getBucketLocation(w http.ResponseWriter, r *http.Request, bucket string) {
	b, err := h.svc.HeadBucket(r.Context(), bucket)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	region := h.regionOf(b.Region)
	if region == "us-east-1" {
		region = ""
	}
	writeXML(w, http.StatusOK, locationConstraint{Region: region})
}

// getBucketVersioning answers "never enabled": shale keeps one version.
func (h *handler) getBucketVersioning(w http.ResponseWriter, r *http.Request, bucket string) {
	if _, err := h.svc.HeadBucket(r.Context(), bucket); err != nil {
		h.writeError(w, r, err)
		return
	}
	writeXML(w, http.StatusOK, versioningConfiguration{})
}
