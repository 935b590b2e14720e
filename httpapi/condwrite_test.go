package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shale-store/shale/object"
)

// TestWritePrecondition: the conditional headers a write accepts, and
// S3's NotImplemented for the rest.
func TestWritePrecondition(t *testing.T) {
	for _, tc := range []struct {
		inm, im string
		want    object.Precondition
		err     error
	}{
		{"", "", object.Precondition{}, nil},
		{"*", "", object.Precondition{Absent: true}, nil},
		{" * ", "", object.Precondition{Absent: true}, nil},
		{"", `"abc"`, object.Precondition{ETag: "abc"}, nil},
		{"", `abc-2`, object.Precondition{ETag: "abc-2"}, nil},
		{`"abc"`, "", object.Precondition{}, ErrNotImplemented},
		{"*, *", "", object.Precondition{}, ErrNotImplemented},
		{"*", `"abc"`, object.Precondition{}, ErrNotImplemented},
		{"", "*", object.Precondition{}, ErrNotImplemented},
		{"", `"a", "b"`, object.Precondition{}, ErrNotImplemented},
		{"", `""`, object.Precondition{}, ErrNotImplemented},
	} {
		h := http.Header{}
		if tc.inm != "" {
			h.Set("If-None-Match", tc.inm)
		}
		if tc.im != "" {
			h.Set("If-Match", tc.im)
		}
		got, err := writePrecondition(h)
		if got != tc.want || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("If-None-Match %q If-Match %q: %+v, %v; want %+v, %v", tc.inm, tc.im, got, err, tc.want, tc.err)
		}
	}
}

// TestAWSConditionalWrites drives PutObject, CopyObject and
// CompleteMultipartUpload with If-None-Match / If-Match through
// aws-sdk-go-v2.
func TestAWSConditionalWrites(t *testing.T) {
	e := newEnv(t, false, nil)
	c, ctx := e.aws(), context.Background()
	b := aws.String("cond")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b})
	must(t, err)
	put := func(key, body string, mod func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
		in := &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader(body)}
		if mod != nil {
			mod(in)
		}
		return c.PutObject(ctx, in)
	}
	content := func(key string) string {
		t.Helper()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
		must(t, err)
		return string(readAll(t, out.Body))
	}

	// Create only if absent.
	first, err := put("k", "one", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	must(t, err)
	_, err = put("k", "two", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
	wantCode(t, err, "PreconditionFailed")
	if got := content("k"); got != "one" {
		t.Fatalf("k = %q after a refused create", got)
	}
	// Replace only that version.
	_, err = put("k", "two", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(`"0123456789abcdef0123456789abcdef"`) })
	wantCode(t, err, "PreconditionFailed")
	second, err := put("k", "two", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag })
	must(t, err)
	_, err = put("k", "three", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag })
	wantCode(t, err, "PreconditionFailed")
	_, err = put("k", "three", func(in *s3.PutObjectInput) { in.IfMatch = aws.String(strings.Trim(aws.ToString(second.ETag), `"`)) })
	must(t, err)
	if got := content("k"); got != "three" {
		t.Fatalf("k = %q", got)
	}
	// If-Match on an absent key is NoSuchKey, as S3 answers.
	_, err = put("absent", "x", func(in *s3.PutObjectInput) { in.IfMatch = first.ETag })
	wantCode(t, err, "NoSuchKey")
	// What S3 does not take on a write.
	_, err = put("k", "x", func(in *s3.PutObjectInput) { in.IfNoneMatch = first.ETag })
	wantCode(t, err, "NotImplemented")
	_, err = put("k", "x", func(in *s3.PutObjectInput) { in.IfNoneMatch, in.IfMatch = aws.String("*"), second.ETag })
	wantCode(t, err, "NotImplemented")

	// CopyObject's destination.
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("k"), CopySource: aws.String("cond/k"),
		MetadataDirective: types.MetadataDirectiveReplace, IfNoneMatch: aws.String("*")})
	wantCode(t, err, "PreconditionFailed")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("cond/k"), IfNoneMatch: aws.String("*")})
	must(t, err)

	// CompleteMultipartUpload: refused over an existing key, the upload
	// stays and completes once the key is gone.
	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("k")})
	must(t, err)
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("k"), UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("mp")})
	must(t, err)
	complete := &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("k"), UploadId: cr.UploadId, IfNoneMatch: aws.String("*"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}}
	_, err = c.CompleteMultipartUpload(ctx, complete)
	wantCode(t, err, "PreconditionFailed")
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("k"), UploadId: cr.UploadId})
	must(t, err)
	if len(lp.Parts) != 1 {
		t.Fatalf("parts after a refused completion: %+v", lp.Parts)
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("k")})
	must(t, err)
	_, err = c.CompleteMultipartUpload(ctx, complete)
	must(t, err)
	if got := content("k"); got != "mp" {
		t.Fatalf("k = %q after the completion", got)
	}
}
