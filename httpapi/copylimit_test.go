package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/object"
)

// CopyObject refuses a source above 5 GiB as S3 does (InvalidRequest, "The
// specified copy source is larger than …: 5368709120") and copies nothing;
// a source of exactly 5 GiB is copied, and UploadPartCopy may still copy a
// ≤ 5 GiB range of the big source.
func TestCopySourceLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, nil)
	c := e.aws()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big")})
	must(t, err)
	// The fake store's manifests may claim any size: only the copy
	// decision is under test, and it is made on the manifest.
	e.store.mu.Lock()
	for key, size := range map[string]int64{"huge": MaxPutSize + 1, "limit": MaxPutSize} {
		e.store.objects["big"][key] = fakeObject{m: object.Info{Bucket: "big", Key: key, Size: size, ETag: "0123456789abcdef0123456789abcdef"}, data: []byte("tiny")}
	}
	e.store.mu.Unlock()

	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("big"), Key: aws.String("dst"), CopySource: aws.String("big/huge")})
	wantCode(t, err, "InvalidRequest")
	if !strings.Contains(err.Error(), "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120") {
		t.Fatalf("message: %v", err)
	}
	if _, err := e.store.HeadObject(ctx, "big", "dst"); err == nil {
		t.Fatal("the copy was made")
	}

	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("big"), Key: aws.String("dst"), CopySource: aws.String("big/limit")})
	must(t, err)

	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("mp")})
	must(t, err)
	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("big"), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String("big/huge"), CopySourceRange: aws.String("bytes=0-3")})
	must(t, err)
}
