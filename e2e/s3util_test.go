package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// errCode is the S3 error code of an SDK error ("" when it has none).
func errCode(err error) string {
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of an SDK error (0 when it has none).
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// md5ETag is the quoted ETag S3 gives a single-PUT object.
func md5ETag(s sized) string {
	_, md := digests(s)
	return `"` + md + `"`
}

// putObject uploads s with the SDK (rewindable body, so the SDK can hash it
// before sending) and checks the returned ETag is its MD5.
func putObject(ctx context.Context, t testing.TB, c *Cluster, bucket, key string, s sized) {
	t.Helper()
	out, err := c.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key),
		Body: io.NewSectionReader(s, 0, s.Size()), ContentLength: aws.Int64(s.Size()),
	})
	if err != nil {
		t.Fatalf("put %s/%s (%d bytes): %v", bucket, key, s.Size(), err)
	}
	if got, want := aws.ToString(out.ETag), md5ETag(s); got != want {
		t.Errorf("put %s/%s: ETag %s, want %s", bucket, key, got, want)
	}
}

// checkObject GETs the whole object and compares it with want, byte for byte.
func checkObject(ctx context.Context, t testing.TB, c *Cluster, bucket, key string, want sized) {
	t.Helper()
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Errorf("get %s/%s: %v", bucket, key, err)
		return
	}
	defer out.Body.Close()
	if aws.ToInt64(out.ContentLength) != want.Size() {
		t.Errorf("get %s/%s: Content-Length %d, want %d", bucket, key, aws.ToInt64(out.ContentLength), want.Size())
	}
	if err := compareBody(out.Body, want); err != nil {
		t.Errorf("get %s/%s: %v", bucket, key, err)
	}
}

// checkRange GETs Range: header and compares the answer with bytes
// [first, last] of want.
func checkRange(ctx context.Context, t testing.TB, c *Cluster, bucket, key, header string, want sized, first, last int64) {
	t.Helper()
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String(header)})
	if err != nil {
		t.Errorf("get %s/%s %s: %v", bucket, key, header, err)
		return
	}
	defer out.Body.Close()
	if got, exp := aws.ToString(out.ContentRange), fmt.Sprintf("bytes %d-%d/%d", first, last, want.Size()); got != exp {
		t.Errorf("get %s/%s %s: Content-Range %q, want %q", bucket, key, header, got, exp)
	}
	if got := aws.ToInt64(out.ContentLength); got != last-first+1 {
		t.Errorf("get %s/%s %s: Content-Length %d, want %d", bucket, key, header, got, last-first+1)
	}
	if err := compareBody(out.Body, section(want, first, last-first+1)); err != nil {
		t.Errorf("get %s/%s %s: %v", bucket, key, header, err)
	}
}

// checkGone expects GET of key to fail with NoSuchKey.
func checkGone(ctx context.Context, t testing.TB, c *Cluster, bucket, key string) {
	t.Helper()
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		out.Body.Close()
		t.Errorf("get %s/%s after delete succeeded", bucket, key)
		return
	}
	if errCode(err) != "NoSuchKey" || httpStatus(err) != 404 {
		t.Errorf("get %s/%s after delete: %v (code %q, status %d), want NoSuchKey 404", bucket, key, err, errCode(err), httpStatus(err))
	}
}

// listAll lists every key under prefix with ListObjectsV2, page by page.
func listAll(ctx context.Context, t testing.TB, c *Cluster, bucket, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(c.S3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for pages := 0; p.HasMorePages(); pages++ {
		if pages > 1000 {
			t.Fatalf("list %s/%s: more than 1000 pages", bucket, prefix)
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			got[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return got
}

// checkListing compares a listing with the expected keys and sizes.
func checkListing(t testing.TB, what string, got map[string]int64, want map[string]sized) {
	t.Helper()
	var diffs []string
	for k, s := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k)
		} else if g != s.Size() {
			diffs = append(diffs, fmt.Sprintf("%s is %d bytes, want %d", k, g, s.Size()))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+k)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		t.Errorf("%s: %s", what, strings.Join(diffs, "; "))
	}
}

// emptyBucket deletes every object and in-progress upload in a bucket.
func emptyBucket(ctx context.Context, t testing.TB, c *Cluster, bucket string) {
	t.Helper()
	keys := listAll(ctx, t, c, bucket, "")
	var ids []types.ObjectIdentifier
	for k := range keys {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		out, err := c.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids[:n], Quiet: aws.Bool(true)}})
		if err != nil {
			t.Fatalf("empty %s: %v", bucket, err)
		}
		if len(out.Errors) > 0 {
			t.Fatalf("empty %s: %d errors, first %s: %s", bucket, len(out.Errors), aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Code))
		}
		ids = ids[n:]
	}
	ups, err := c.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list uploads of %s: %v", bucket, err)
	}
	for _, u := range ups.Uploads {
		if _, err := c.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			t.Fatalf("abort %s: %v", aws.ToString(u.UploadId), err)
		}
	}
}
