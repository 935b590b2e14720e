package httpapi

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The holder of a presigned PUT (or of a captured header-signed PUT) cannot
// add x-amz-* instructions the signer did not sign: turning the upload into
// a copy of another object, choosing the copied range or metadata, or
// setting user metadata. Each gets 403 AccessDenied and changes nothing.
func TestUnsignedHeadersRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, nil)
	c := e.aws()
	secret := []byte("the database dump nobody may read")
	for _, b := range []string{"secret", "pub"} {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		must(t, err)
	}
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("secret"), Key: aws.String("db.txt"), Body: bytes.NewReader(secret)})
	must(t, err)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("pub"), Key: aws.String("mp")})
	must(t, err)

	pc := s3.NewPresignClient(c)
	putURL, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pub"), Key: aws.String("upload.txt")}, s3.WithPresignExpires(time.Hour))
	must(t, err)
	partURL, err := pc.PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("pub"), Key: aws.String("mp"), UploadId: up.UploadId, PartNumber: aws.Int32(1)}, s3.WithPresignExpires(time.Hour))
	must(t, err)

	presigned := func(u string, body string, hdr map[string]string) func() *http.Request {
		return func() *http.Request {
			req, err := http.NewRequest(http.MethodPut, u, strings.NewReader(body))
			must(t, err)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			return req
		}
	}
	// headerSigned signs a PUT and adds hdr afterwards, as someone who
	// captured the signed request would.
	headerSigned := func(path, body string, hdr map[string]string) func() *http.Request {
		return func() *http.Request {
			req := e.request(http.MethodPut, path, []byte(body), nil, testSK)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			return req
		}
	}
	copySrc := map[string]string{"x-amz-copy-source": "/secret/db.txt"}
	cases := []struct {
		name    string
		req     func() *http.Request
		headers string // HeadersNotSigned
	}{
		{"presigned PUT + copy source", presigned(putURL.URL, "", copySrc), "x-amz-copy-source"},
		{"presigned PUT + copy source + metadata directive", presigned(putURL.URL, "", map[string]string{
			"x-amz-copy-source": "/secret/db.txt", "x-amz-metadata-directive": "REPLACE"}), "x-amz-copy-source, x-amz-metadata-directive"},
		{"presigned PUT + user metadata", presigned(putURL.URL, "hello", map[string]string{"x-amz-meta-owner": "mallory"}), "x-amz-meta-owner"},
		{"presigned part + copy source (UploadPartCopy)", presigned(partURL.URL, "", copySrc), "x-amz-copy-source"},
		{"presigned part + copy source range", presigned(partURL.URL, "", map[string]string{
			"x-amz-copy-source": "/secret/db.txt", "x-amz-copy-source-range": "bytes=0-3"}), "x-amz-copy-source, x-amz-copy-source-range"},
		{"header-signed PUT + copy source", headerSigned("/pub/upload.txt", "", copySrc), "x-amz-copy-source"},
		{"header-signed PUT + user metadata", headerSigned("/pub/upload.txt", "hello", map[string]string{"X-Amz-Meta-Owner": "mallory"}), "x-amz-meta-owner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := e.srv.Client().Do(tc.req())
			must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var doc struct{ Code, Message, HeadersNotSigned string }
			_ = xml.Unmarshal(body, &doc)
			if resp.StatusCode != http.StatusForbidden || doc.Code != "AccessDenied" ||
				doc.Message != "There were headers present in the request which were not signed" || doc.HeadersNotSigned != tc.headers {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if _, err := e.store.HeadObject(ctx, "pub", "upload.txt"); err == nil {
				t.Fatal("an object was created at the presigned key")
			}
			if _, _, _, parts := e.store.stored(); parts != 0 {
				t.Fatalf("%d parts were stored", parts)
			}
			got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secret"), Key: aws.String("db.txt")})
			must(t, err)
			if b := readAll(t, got.Body); !bytes.Equal(b, secret) || len(got.Metadata) != 0 {
				t.Fatalf("source changed: %q %v", b, got.Metadata)
			}
		})
	}

	// The same URLs without the extra headers do what they were signed for.
	resp, err := e.srv.Client().Do(presigned(putURL.URL, "hello", nil)())
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain presigned PUT: %d", resp.StatusCode)
	}
	resp, err = e.srv.Client().Do(presigned(partURL.URL, "part", nil)())
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain presigned UploadPart: %d", resp.StatusCode)
	}
}
