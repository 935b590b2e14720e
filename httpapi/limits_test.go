package httpapi

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// A request whose header section is over 8 KiB is refused with S3's
// RequestHeaderSectionTooLarge before anything runs — signed or not,
// PutObject or CreateMultipartUpload (whose headers meta would keep until
// Complete) — and one just under the limit is served.
func TestHeaderSectionLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, nil)
	_, err := e.aws().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("hdr")})
	must(t, err)
	big := strings.Repeat("c", MaxHeaderSection)
	pc := s3.NewPresignClient(e.aws())
	pu, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("hdr"), Key: aws.String("presigned")}, s3.WithPresignExpires(time.Hour))
	must(t, err)
	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"PutObject, signed big Cache-Control", func() *http.Request {
			return e.request("PUT", "/hdr/k", []byte("data"), map[string]string{"Cache-Control": big}, testSK)
		}},
		{"CreateMultipartUpload, signed big Content-Disposition", func() *http.Request {
			return e.request("POST", "/hdr/mp?uploads", nil, map[string]string{"Content-Disposition": big}, testSK)
		}},
		{"CreateMultipartUpload, many signed headers", func() *http.Request {
			hdr := map[string]string{}
			for i := range 40 {
				hdr["X-Custom-"+strings.Repeat("h", i+1)] = strings.Repeat("v", 200)
			}
			return e.request("POST", "/hdr/mp?uploads", nil, hdr, testSK)
		}},
		{"presigned PUT, unsigned big header", func() *http.Request {
			req, err := http.NewRequest("PUT", pu.URL, strings.NewReader("data"))
			must(t, err)
			req.Header.Set("X-Junk", big)
			return req
		}},
		{"no signature at all", func() *http.Request {
			req, err := http.NewRequest("PUT", e.srv.URL+"/hdr/k", strings.NewReader("data"))
			must(t, err)
			req.Header.Set("X-Junk", big)
			return req
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.srv.Client().Do(tc.req())
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var doc struct {
				Code           string
				MaxSizeAllowed int
			}
			_ = xml.Unmarshal(b, &doc)
			if resp.StatusCode != 400 || doc.Code != "RequestHeaderSectionTooLarge" || doc.MaxSizeAllowed != MaxHeaderSection {
				t.Fatalf("status %d body %s", resp.StatusCode, b)
			}
			if _, objects, uploads, _ := e.store.stored(); objects != 0 || uploads != 0 {
				t.Fatalf("stored %d objects, %d uploads", objects, uploads)
			}
		})
	}

	// Just under the limit: served, and the header is kept.
	okHdr := strings.Repeat("c", MaxHeaderSection-1024)
	resp := e.do("POST", "/hdr/mp?uploads", nil, map[string]string{"Content-Disposition": okHdr}, testSK)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("CreateMultipartUpload with a %d-byte header: %d", len(okHdr), resp.StatusCode)
	}
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	if len(e.store.uploads) != 1 {
		t.Fatalf("%d uploads", len(e.store.uploads))
	}
	for _, u := range e.store.uploads {
		if u.u.Headers["Content-Disposition"] != okHdr {
			t.Fatalf("stored Content-Disposition of %d bytes", len(u.u.Headers["Content-Disposition"]))
		}
	}
}

// User metadata is capped at 2 KiB (S3: MetadataTooLarge) on every
// operation that stores it, and what objectMeta hands to meta is bounded as
// a whole.
func TestStoredMetadataCaps(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, nil)
	c := e.aws()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mdb")})
	must(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mdb"), Key: aws.String("src"), Body: strings.NewReader("x")})
	must(t, err)
	tooBig := map[string]string{"a": strings.Repeat("m", maxUserMeta)} // name + value = maxUserMeta+1
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mdb"), Key: aws.String("mp"), Metadata: tooBig})
	wantCode(t, err, "MetadataTooLarge")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("mdb"), Key: aws.String("dst"), CopySource: aws.String("mdb/src"),
		MetadataDirective: "REPLACE", Metadata: tooBig})
	wantCode(t, err, "MetadataTooLarge")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mdb"), Key: aws.String("k"), Body: strings.NewReader("x"), Metadata: tooBig})
	wantCode(t, err, "MetadataTooLarge")
	if _, objects, uploads, _ := e.store.stored(); objects != 1 || uploads != 0 {
		t.Fatalf("stored %d objects, %d uploads", objects, uploads)
	}
	exact := map[string]string{"a": strings.Repeat("m", maxUserMeta-1)}
	_, err = c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mdb"), Key: aws.String("mp"), Metadata: exact})
	must(t, err)

	// objectMeta bounds the whole of what it returns, not only the user
	// metadata: standard headers are stored too.
	hdr := http.Header{}
	hdr.Set("Cache-Control", strings.Repeat("c", MaxHeaderSection/2))
	hdr.Set("Content-Disposition", strings.Repeat("d", MaxHeaderSection/2))
	if _, _, _, err := objectMeta(hdr); !errors.Is(err, ErrHeadersTooLarge) {
		t.Fatalf("objectMeta with %d bytes of stored headers: %v", MaxHeaderSection, err)
	}
	hdr.Set("Content-Disposition", "inline")
	if _, _, _, err := objectMeta(hdr); err != nil {
		t.Fatalf("objectMeta: %v", err)
	}
}
