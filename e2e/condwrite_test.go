package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestConditionalWrites drives S3's conditional writes on a dev cluster
// with aws-sdk-go-v2 and the AWS CLI: racing If-None-Match: * PUTs of one
// key (exactly one 200, one 412, the object holds the winner's bytes),
// If-Match replacing and refusing, and CompleteMultipartUpload refused over
// an existing key with the upload left to complete or abort.
func TestConditionalWrites(t *testing.T) {
	t.Parallel()
	c := startDev(t, opts{nodes: 3, zones: 3, k: 2, m: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const bucket = "cond"
	b := aws.String(bucket)
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, key string) ([]byte, string) {
		t.Helper()
		out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer out.Body.Close()
		data, err := io.ReadAll(out.Body)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return data, aws.ToString(out.ETag)
	}
	refused := func(t *testing.T, what string, err error, status int, code string) {
		t.Helper()
		if httpStatus(err) != status || errCode(err) != code {
			t.Fatalf("%s: %v, want %d %s", what, err, status, code)
		}
	}

	t.Run("racing creates", func(t *testing.T) {
		for round := range 4 {
			key := fmt.Sprintf("race-%d", round)
			const writers = 2
			bodies := make([]payload, writers)
			outs := make([]*s3.PutObjectOutput, writers)
			errs := make([]error, writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range writers {
				bodies[i] = payload{seed: uint64(9000 + round*writers + i), size: 256 << 10}
				wg.Go(func() {
					<-start
					outs[i], errs[i] = c.S3.PutObject(ctx, &s3.PutObjectInput{
						Bucket: b, Key: aws.String(key), IfNoneMatch: aws.String("*"),
						Body: bodies[i].Reader(), ContentLength: aws.Int64(bodies[i].size),
					})
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				if err == nil {
					if winner >= 0 {
						t.Fatalf("round %d: both PUTs created %s", round, key)
					}
					winner = i
					continue
				}
				refused(t, fmt.Sprintf("round %d: PUT %d", round, i), err, 412, "PreconditionFailed")
			}
			if winner < 0 {
				t.Fatalf("round %d: no PUT created %s: %v", round, key, errs)
			}
			data, etag := get(t, key)
			if !bytes.Equal(data, bodies[winner].Bytes(0, bodies[winner].size)) || etag != aws.ToString(outs[winner].ETag) {
				t.Fatalf("round %d: %s does not hold the winner's bytes (ETag %s, the winner's %s)", round, key, etag, aws.ToString(outs[winner].ETag))
			}
		}
	})

	t.Run("if-match", func(t *testing.T) {
		put := func(key, body string, mod func(*s3.PutObjectInput)) (*s3.PutObjectOutput, error) {
			in := &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: strings.NewReader(body)}
			mod(in)
			return c.S3.PutObject(ctx, in)
		}
		v1, err := put("doc", "v1", func(in *s3.PutObjectInput) { in.IfNoneMatch = aws.String("*") })
		if err != nil {
			t.Fatal(err)
		}
		v2, err := put("doc", "v2", func(in *s3.PutObjectInput) { in.IfMatch = v1.ETag })
		if err != nil {
			t.Fatalf("replace with the current ETag: %v", err)
		}
		_, err = put("doc", "v3", func(in *s3.PutObjectInput) { in.IfMatch = v1.ETag })
		refused(t, "replace with a stale ETag", err, 412, "PreconditionFailed")
		if data, etag := get(t, "doc"); string(data) != "v2" || etag != aws.ToString(v2.ETag) {
			t.Fatalf("doc = %q %s after a refused replace", data, etag)
		}
		_, err = put("no-doc", "x", func(in *s3.PutObjectInput) { in.IfMatch = v1.ETag })
		refused(t, "If-Match on an absent key", err, 404, "NoSuchKey")
		_, err = put("doc", "x", func(in *s3.PutObjectInput) { in.IfNoneMatch = v2.ETag })
		refused(t, "If-None-Match with an ETag", err, 501, "NotImplemented")
	})

	t.Run("multipart", func(t *testing.T) {
		key := aws.String("mp")
		cur, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: key, Body: strings.NewReader("existing")})
		if err != nil {
			t.Fatal(err)
		}
		upload := func() (*string, []types.CompletedPart) {
			t.Helper()
			cr, err := c.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: key})
			if err != nil {
				t.Fatal(err)
			}
			up, err := c.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: key, UploadId: cr.UploadId,
				PartNumber: aws.Int32(1), Body: strings.NewReader("multipart body")})
			if err != nil {
				t.Fatal(err)
			}
			return cr.UploadId, []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}
		}
		complete := func(id *string, parts []types.CompletedPart, mod func(*s3.CompleteMultipartUploadInput)) error {
			in := &s3.CompleteMultipartUploadInput{Bucket: b, Key: key, UploadId: id,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
			mod(in)
			_, err := c.S3.CompleteMultipartUpload(ctx, in)
			return err
		}
		// Refused over the existing key: the upload stays, and completes
		// under a condition that holds.
		id, parts := upload()
		err = complete(id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfNoneMatch = aws.String("*") })
		refused(t, "create-only completion over an existing key", err, 412, "PreconditionFailed")
		lp, err := c.S3.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: key, UploadId: id})
		if err != nil || len(lp.Parts) != 1 {
			t.Fatalf("parts after a refused completion: %v, %+v", err, lp)
		}
		if data, _ := get(t, "mp"); string(data) != "existing" {
			t.Fatalf("mp = %q after a refused completion", data)
		}
		if err := complete(id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfMatch = cur.ETag }); err != nil {
			t.Fatalf("completion with the current ETag after a refusal: %v", err)
		}
		if data, _ := get(t, "mp"); string(data) != "multipart body" {
			t.Fatalf("mp = %q after the completion", data)
		}
		// Refused, then aborted.
		id, parts = upload()
		err = complete(id, parts, func(in *s3.CompleteMultipartUploadInput) { in.IfNoneMatch = aws.String("*") })
		refused(t, "second create-only completion", err, 412, "PreconditionFailed")
		if _, err := c.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: key, UploadId: id}); err != nil {
			t.Fatalf("abort after a refused completion: %v", err)
		}
		lu, err := c.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
		if err != nil || len(lu.Uploads) != 0 {
			t.Fatalf("uploads left: %v, %+v", err, lu.Uploads)
		}
	})

	t.Run("aws-cli", func(t *testing.T) {
		cli, dir := newAWSCLI(t, c)
		if err := os.WriteFile(filepath.Join(dir, "body"), []byte("from the cli"), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"s3api", "put-object", "--bucket", bucket, "--key", "cli", "--body", "body", "--if-none-match", "*"}
		if out, stderr, err := cli(args...); err != nil {
			t.Fatalf("aws %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		out, stderr, err := cli(args...)
		if err == nil || !strings.Contains(stderr, "PreconditionFailed") {
			t.Fatalf("second aws s3api put-object --if-none-match '*': %v\nstdout: %s\nstderr: %s", err, out, stderr)
		}
		if data, _ := get(t, "cli"); string(data) != "from the cli" {
			t.Fatalf("cli = %q", data)
		}
	})
}
