package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

// TestS3Clients drives a dev cluster over HTTP, and one over HTTPS, with the
// S3 clients people use: aws-sdk-go-v2 with its default settings (CRC32
// header checksums over HTTP, aws-chunked bodies with trailing checksums over
// HTTPS), minio-go (its own streaming-signed chunked bodies), and the AWS CLI.
func TestS3Clients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"https", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tls && testing.Short() {
				t.Skip("-short: no TLS cluster")
			}
			c := startDev(t, opts{nodes: 3, zones: 3, k: 2, m: 1, tls: tc.tls})
			t.Run("aws-sdk-go-v2", func(t *testing.T) { sdkSuite(t, c) })
			t.Run("minio-go", func(t *testing.T) { minioSuite(t, c) })
			t.Run("aws-cli", func(t *testing.T) { cliSuite(t, c) })
		})
	}
}

func sdkSuite(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const bucket = "sdk-bucket"
	b := aws.String(bucket)

	t.Run("buckets", func(t *testing.T) {
		if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); err != nil {
			t.Fatalf("create bucket: %v", err)
		}
		_, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b})
		if code := errCode(err); code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			t.Errorf("create existing bucket: %v, want BucketAlreadyOwnedByYou", err)
		}
		if _, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}); err != nil {
			t.Errorf("head bucket: %v", err)
		}
		if _, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("no-such-bucket")}); httpStatus(err) != 404 {
			t.Errorf("head of a missing bucket: %v, want 404", err)
		}
		lb, err := c.S3.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("list buckets: %v", err)
		}
		if !slices.ContainsFunc(lb.Buckets, func(x types.Bucket) bool { return aws.ToString(x.Name) == bucket }) {
			t.Errorf("list buckets does not show %s", bucket)
		}
	})
	if t.Failed() {
		return
	}

	body := []byte(strings.Repeat("hello, shale — an erasure-coded object store\n", 500))
	const key = "docs/readme.txt"
	t.Run("put-head-get", func(t *testing.T) {
		put, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(key), Body: bytes.NewReader(body),
			ContentType:        aws.String("text/plain; charset=utf-8"),
			CacheControl:       aws.String("max-age=60"),
			ContentDisposition: aws.String(`attachment; filename="readme.txt"`),
			Metadata:           map[string]string{"color": "blue", "owner": "e2e"},
		})
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		etag := aws.ToString(put.ETag)
		if want := md5ETag(bytesContent(body)); etag != want {
			t.Errorf("put ETag %s, want %s", etag, want)
		}
		// Which upload path did the SDK take?
		puts := c.Wire.entries(http.MethodPut, "/"+key)
		if len(puts) == 0 {
			t.Errorf("the wire log saw no PUT of %s", key)
		}
		for _, e := range puts {
			t.Logf("SDK PutObject on the wire: x-amz-content-sha256=%s content-encoding=%q trailer=%q crc32-header=%v",
				e.ContentSHA256, e.ContentEncoding, e.Trailer, e.HeaderChecksumCRC)
			if c.Opts.tls && (e.Trailer == "" || !strings.Contains(e.ContentEncoding, "aws-chunked")) {
				t.Errorf("over HTTPS the SDK sent no aws-chunked body with a trailer (%+v): the trailer path went untested", e)
			}
			if !c.Opts.tls && !e.HeaderChecksumCRC {
				t.Errorf("over HTTP the SDK sent no x-amz-checksum-crc32 header (%+v): the checksum path went untested", e)
			}
		}

		head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("head: %v", err)
		}
		for _, f := range []struct{ name, got, want string }{
			{"ETag", aws.ToString(head.ETag), etag},
			{"Content-Type", aws.ToString(head.ContentType), "text/plain; charset=utf-8"},
			{"Cache-Control", aws.ToString(head.CacheControl), "max-age=60"},
			{"Content-Disposition", aws.ToString(head.ContentDisposition), `attachment; filename="readme.txt"`},
			{"x-amz-meta-color", metaValue(head.Metadata, "color"), "blue"},
			{"x-amz-meta-owner", metaValue(head.Metadata, "owner"), "e2e"},
			{"Content-Length", fmt.Sprint(aws.ToInt64(head.ContentLength)), fmt.Sprint(len(body))},
		} {
			if f.got != f.want {
				t.Errorf("head %s = %q, want %q", f.name, f.got, f.want)
			}
		}

		// Range.
		out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), Range: aws.String("bytes=7-11")})
		if err != nil {
			t.Fatalf("ranged get: %v", err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || string(got) != "shale" || aws.ToString(out.ContentRange) != fmt.Sprintf("bytes 7-11/%d", len(body)) {
			t.Errorf("ranged get: %q %v, Content-Range %q", got, err, aws.ToString(out.ContentRange))
		}

		// Conditional: the current ETag in If-None-Match is 304 Not Modified,
		// a wrong one in If-Match is 412.
		_, err = c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), IfNoneMatch: aws.String(etag)})
		if httpStatus(err) != http.StatusNotModified {
			t.Errorf("get If-None-Match current ETag: %v, want 304", err)
		}
		_, err = c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), IfMatch: aws.String(`"0123"`)})
		if httpStatus(err) != http.StatusPreconditionFailed {
			t.Errorf("get If-Match wrong ETag: %v, want 412", err)
		}
		out, err = c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), IfMatch: aws.String(etag)})
		if err != nil {
			t.Errorf("get If-Match current ETag: %v", err)
		} else {
			out.Body.Close()
		}

		// Checksum mode: the CRC32 the SDK sent comes back, and the SDK
		// validates the body against it.
		out, err = c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatalf("get with checksum mode: %v", err)
		}
		got, err = io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("get with checksum mode: %d bytes, %v", len(got), err)
		}
		if want := crc32B64(body); aws.ToString(out.ChecksumCRC32) != want {
			t.Errorf("get with checksum mode: x-amz-checksum-crc32 %q, want %q", aws.ToString(out.ChecksumCRC32), want)
		}
	})

	// Large PUTs at once: the gateway hashes their ETags in SIMD lanes
	// (internal/md5lanes) from 4 large bodies at once; each still gets the
	// MD5 of its own bytes.
	t.Run("concurrent-large-puts", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				body := make([]byte, 3<<20+i*1001)
				rand.NewChaCha8([32]byte{byte(i)}).Read(body)
				k := aws.String(fmt.Sprintf("large/%d", i))
				out, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: bytes.NewReader(body)})
				if err != nil {
					t.Errorf("put %s: %v", *k, err)
					return
				}
				if got, want := aws.ToString(out.ETag), md5ETag(bytesContent(body)); got != want {
					t.Errorf("put %s: ETag %s, want %s", *k, got, want)
				}
				if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: k}); err != nil {
					t.Errorf("delete %s: %v", *k, err)
				}
			})
		}
		wg.Wait()
	})

	// A wrong Content-MD5 is refused by the object layer's ETag check (the
	// gateway hashes each body once): BadDigest and nothing stored, for a
	// small object (copies), a coded one and a part.
	t.Run("wrong-content-md5", func(t *testing.T) {
		wrong := base64.StdEncoding.EncodeToString(make([]byte, 16))
		for _, size := range []int{1000, 2 << 20} {
			k := aws.String(fmt.Sprintf("badmd5/%d", size))
			_, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: k, Body: bytes.NewReader(make([]byte, size)), ContentMD5: aws.String(wrong)})
			if errCode(err) != "BadDigest" {
				t.Errorf("put %d bytes with a wrong Content-MD5: %v, want BadDigest", size, err)
			}
			checkGone(ctx, t, c, bucket, *k)
		}
		mk := aws.String("badmd5/multi")
		cr, err := c.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: mk})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: mk, UploadId: cr.UploadId, PartNumber: aws.Int32(1),
			Body: bytes.NewReader(make([]byte, 1<<20)), ContentMD5: aws.String(wrong)})
		if errCode(err) != "BadDigest" {
			t.Errorf("part with a wrong Content-MD5: %v, want BadDigest", err)
		}
		if _, err := c.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: mk, UploadId: cr.UploadId}); err != nil {
			t.Error(err)
		}
	})

	t.Run("copy", func(t *testing.T) {
		src := aws.String(bucket + "/" + key)
		if _, err := c.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("docs/copy.txt"), CopySource: src,
			MetadataDirective: types.MetadataDirectiveCopy}); err != nil {
			t.Fatalf("copy (COPY): %v", err)
		}
		head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("docs/copy.txt")})
		if err != nil {
			t.Fatalf("head copy: %v", err)
		}
		if metaValue(head.Metadata, "color") != "blue" || aws.ToString(head.ContentType) != "text/plain; charset=utf-8" {
			t.Errorf("COPY kept metadata %v, content type %q", head.Metadata, aws.ToString(head.ContentType))
		}
		odd := "docs/odd name +&=ü.txt" // needs escaping in the copy source
		if _, err := c.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String(odd), CopySource: src,
			MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("application/x-e2e"),
			Metadata: map[string]string{"color": "red"}}); err != nil {
			t.Fatalf("copy (REPLACE): %v", err)
		}
		head, err = c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(odd)})
		if err != nil {
			t.Fatalf("head replaced copy: %v", err)
		}
		if metaValue(head.Metadata, "color") != "red" || metaValue(head.Metadata, "owner") != "" || aws.ToString(head.ContentType) != "application/x-e2e" {
			t.Errorf("REPLACE: metadata %v, content type %q; want only color=red, application/x-e2e", head.Metadata, aws.ToString(head.ContentType))
		}
		// Copy from the odd key back: the source must be URL-escaped.
		if _, err := c.S3.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("docs/copy2.txt"),
			CopySource: aws.String(url.PathEscape(bucket) + "/" + escapeKey(odd))}); err != nil {
			t.Fatalf("copy from an escaped source: %v", err)
		}
		for _, k := range []string{"docs/copy.txt", odd, "docs/copy2.txt"} {
			checkObject(ctx, t, c, bucket, k, bytesContent(body))
		}
	})

	t.Run("list-pagination-delete-objects", func(t *testing.T) {
		var all []string
		for i := range 11 {
			k := fmt.Sprintf("page/k%02d", i)
			all = append(all, k)
			putObject(ctx, t, c, bucket, k, payload{seed: uint64(200 + i), size: int64(i * 100)})
		}
		var got []string
		var token *string
		pages := 0
		for {
			out, err := c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("page/"), MaxKeys: aws.Int32(4), ContinuationToken: token})
			if err != nil {
				t.Fatalf("list page %d: %v", pages, err)
			}
			pages++
			got = append(got, keys(out)...)
			if aws.ToInt32(out.KeyCount) != int32(len(out.Contents)) {
				t.Errorf("page %d: KeyCount %d for %d keys", pages, aws.ToInt32(out.KeyCount), len(out.Contents))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			if out.NextContinuationToken == nil || pages > 10 {
				t.Fatalf("page %d: truncated without a continuation token", pages)
			}
			token = out.NextContinuationToken
		}
		if !slices.Equal(got, all) || pages != 3 {
			t.Errorf("paginated listing in %d pages: %q, want 3 pages of %q", pages, got, all)
		}
		out, err := c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("page/"), StartAfter: aws.String("page/k07")})
		if err != nil || !slices.Equal(keys(out), all[8:]) {
			t.Errorf("list start-after page/k07: %q, %v", keys(out), err)
		}

		ids := func(ks ...string) []types.ObjectIdentifier {
			var o []types.ObjectIdentifier
			for _, k := range ks {
				o = append(o, types.ObjectIdentifier{Key: aws.String(k)})
			}
			return o
		}
		verbose, err := c.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b,
			Delete: &types.Delete{Objects: ids(append(slices.Clone(all[:5]), "page/never-was")...)}})
		if err != nil {
			t.Fatalf("delete objects (verbose): %v", err)
		}
		var deleted []string
		for _, d := range verbose.Deleted {
			deleted = append(deleted, aws.ToString(d.Key))
		}
		slices.Sort(deleted)
		if want := append(slices.Clone(all[:5]), "page/never-was"); !slices.Equal(deleted, want) || len(verbose.Errors) > 0 {
			t.Errorf("verbose delete reported deleted %q and %d errors, want %q", deleted, len(verbose.Errors), want)
		}
		quiet, err := c.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b,
			Delete: &types.Delete{Objects: ids(all[5:]...), Quiet: aws.Bool(true)}})
		if err != nil {
			t.Fatalf("delete objects (quiet): %v", err)
		}
		if len(quiet.Deleted) != 0 || len(quiet.Errors) != 0 {
			t.Errorf("quiet delete reported %d deleted, %d errors; want none", len(quiet.Deleted), len(quiet.Errors))
		}
		if left := listAll(ctx, t, c, bucket, "page/"); len(left) != 0 {
			t.Errorf("after deleting every page/ key: %v left", left)
		}
	})

	t.Run("multipart", func(t *testing.T) {
		src := payload{seed: 300, size: 6 << 20}
		putObject(ctx, t, c, bucket, "mp/src", src)
		const mk = "mp/assembled"
		cr, err := c.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String(mk),
			ContentType: aws.String("application/x-assembled"), Metadata: map[string]string{"parts": "three"}})
		if err != nil {
			t.Fatalf("create upload: %v", err)
		}
		ups, err := c.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b, Prefix: aws.String("mp/")})
		if err != nil || !slices.ContainsFunc(ups.Uploads, func(u types.MultipartUpload) bool { return aws.ToString(u.UploadId) == aws.ToString(cr.UploadId) }) {
			t.Errorf("list uploads does not show the new upload: %v", err)
		}
		p1 := payload{seed: 301, size: 5 << 20}
		p3 := payload{seed: 303, size: 1<<20 + 17}
		up := func(n int32, p sized) *s3.UploadPartOutput {
			out, err := c.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String(mk), UploadId: cr.UploadId,
				PartNumber: aws.Int32(n), Body: io.NewSectionReader(p, 0, p.Size()), ContentLength: aws.Int64(p.Size())})
			if err != nil {
				t.Fatalf("upload part %d: %v", n, err)
			}
			return out
		}
		o1 := up(1, p1)
		o2, err := c.S3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String(mk), UploadId: cr.UploadId,
			PartNumber: aws.Int32(2), CopySource: aws.String(bucket + "/mp/src"), CopySourceRange: aws.String("bytes=1048576-6291455")})
		if err != nil {
			t.Fatalf("upload part copy: %v", err)
		}
		p2 := section(src, 1<<20, 5<<20)
		if got, want := aws.ToString(o2.CopyPartResult.ETag), md5ETag(p2); got != want {
			t.Errorf("part copy ETag %s, want %s", got, want)
		}
		o3 := up(3, p3)
		lp, err := c.S3.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String(mk), UploadId: cr.UploadId})
		if err != nil {
			t.Fatalf("list parts: %v", err)
		}
		var sizes []int64
		for _, p := range lp.Parts {
			sizes = append(sizes, aws.ToInt64(p.Size))
		}
		if want := []int64{p1.size, p2.Size(), p3.size}; !slices.Equal(sizes, want) {
			t.Errorf("list parts sizes %v, want %v", sizes, want)
		}
		comp, err := c.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(mk), UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
				{PartNumber: aws.Int32(1), ETag: o1.ETag},
				{PartNumber: aws.Int32(2), ETag: o2.CopyPartResult.ETag},
				{PartNumber: aws.Int32(3), ETag: o3.ETag},
			}}})
		if err != nil {
			t.Fatalf("complete: %v", err)
		}
		if !strings.HasSuffix(aws.ToString(comp.ETag), `-3"`) {
			t.Errorf("multipart ETag %s, want …-3", aws.ToString(comp.ETag))
		}
		whole := concat{p1, p2, p3}
		checkObject(ctx, t, c, bucket, mk, whole)
		checkRange(ctx, t, c, bucket, mk, fmt.Sprintf("bytes=%d-%d", p1.size-5, p1.size+5), whole, p1.size-5, p1.size+5)
		head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String(mk)})
		if err != nil || aws.ToString(head.ContentType) != "application/x-assembled" || metaValue(head.Metadata, "parts") != "three" {
			t.Errorf("head of the completed upload: %v, content type %q, metadata %v", err, aws.ToString(head.ContentType), head.Metadata)
		}

		// Abort: the upload and its parts are gone.
		ab, err := c.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp/aborted")})
		if err != nil {
			t.Fatalf("create upload: %v", err)
		}
		if _, err := c.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("mp/aborted"), UploadId: ab.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part")), ContentLength: aws.Int64(4)}); err != nil {
			t.Fatalf("upload part: %v", err)
		}
		if _, err := c.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("mp/aborted"), UploadId: ab.UploadId}); err != nil {
			t.Fatalf("abort: %v", err)
		}
		ups, err = c.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
		if err != nil || len(ups.Uploads) != 0 {
			t.Errorf("uploads after complete and abort: %d, %v; want none", len(ups.Uploads), err)
		}
		_, err = c.S3.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("mp/aborted"), UploadId: ab.UploadId})
		if errCode(err) != "NoSuchUpload" {
			t.Errorf("list parts of an aborted upload: %v, want NoSuchUpload", err)
		}
		checkGone(ctx, t, c, bucket, "mp/aborted")
	})

	t.Run("presigned", func(t *testing.T) {
		ps := s3.NewPresignClient(c.S3)
		req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatalf("presign get: %v", err)
		}
		status, got := httpDo(ctx, t, c.HTTP, req.Method, req.URL, req.SignedHeader, nil)
		if status != http.StatusOK || !bytes.Equal(got, body) {
			t.Errorf("presigned GET: status %d, %d bytes (want 200, %d bytes)", status, len(got), len(body))
		}
		// The signature covers the key: the same query on another key is refused.
		u, _ := url.Parse(req.URL)
		u.Path = strings.Replace(u.Path, "readme.txt", "copy.txt", 1)
		if status, _ := httpDo(ctx, t, c.HTTP, req.Method, u.String(), req.SignedHeader, nil); status != http.StatusForbidden {
			t.Errorf("presigned GET with the key changed: status %d, want 403", status)
		}
		// Presigned PUT.
		pp, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("docs/presigned-put")}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatalf("presign put: %v", err)
		}
		if status, msg := httpDo(ctx, t, c.HTTP, pp.Method, pp.URL, pp.SignedHeader, []byte("put by URL")); status != http.StatusOK {
			t.Errorf("presigned PUT: status %d: %s", status, msg)
		} else {
			checkObject(ctx, t, c, bucket, "docs/presigned-put", bytesContent([]byte("put by URL")))
		}
		// The holder of a presigned PUT cannot turn it into a copy of
		// another object with an unsigned x-amz-copy-source.
		hijack, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("docs/hijack")}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatalf("presign put: %v", err)
		}
		h := hijack.SignedHeader.Clone()
		h.Set("x-amz-copy-source", "/"+bucket+"/"+escapeKey(key))
		if status, msg := httpDo(ctx, t, c.HTTP, hijack.Method, hijack.URL, h, []byte{}); status != http.StatusForbidden ||
			!strings.Contains(string(msg), "There were headers present in the request which were not signed") {
			t.Errorf("presigned PUT with an unsigned copy source: status %d: %s, want 403", status, msg)
		}
		checkGone(ctx, t, c, bucket, "docs/hijack")
	})

	t.Run("delete-bucket", func(t *testing.T) {
		_, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b})
		if errCode(err) != "BucketNotEmpty" || httpStatus(err) != http.StatusConflict {
			t.Errorf("delete of a non-empty bucket: %v, want BucketNotEmpty 409", err)
		}
		emptyBucket(ctx, t, c, bucket)
		if _, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); err != nil {
			t.Fatalf("delete bucket: %v", err)
		}
		if _, err := c.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}); httpStatus(err) != http.StatusNotFound {
			t.Errorf("head of a deleted bucket: %v, want 404", err)
		}
	})
}

func minioSuite(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const bucket = "minio-bucket"
	mc := c.Minio
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	small := payload{seed: 400, size: 300<<10 + 3}
	info, err := mc.PutObject(ctx, bucket, "m/small", small.Reader(), small.size, minio.PutObjectOptions{
		ContentType: "application/x-small", UserMetadata: map[string]string{"flavour": "minio"}})
	if err != nil {
		t.Fatalf("put object: %v", err)
	}
	if `"`+info.ETag+`"` != md5ETag(small) {
		t.Errorf("put ETag %q, want %s", info.ETag, md5ETag(small))
	}
	st, err := mc.StatObject(ctx, bucket, "m/small", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if st.Size != small.size || st.ContentType != "application/x-small" || metaValue(st.UserMetadata, "flavour") != "minio" {
		t.Errorf("stat: size %d, type %q, metadata %v", st.Size, st.ContentType, st.UserMetadata)
	}
	obj, err := mc.GetObject(ctx, bucket, "m/small", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if err := compareBody(obj, small); err != nil {
		t.Errorf("get: %v", err)
	}
	obj.Close()
	puts := c.MinioWire.entries(http.MethodPut, "/m/small")
	if len(puts) == 0 {
		t.Error("the wire log saw no minio-go PUT of m/small")
	}
	for _, e := range puts {
		t.Logf("minio-go PutObject on the wire: x-amz-content-sha256=%s content-encoding=%q trailer=%q", e.ContentSHA256, e.ContentEncoding, e.Trailer)
		if !c.Opts.tls && !strings.HasPrefix(e.ContentSHA256, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") {
			t.Errorf("over HTTP minio-go did not use its streaming signature (%+v): that path went untested", e)
		}
	}
	var ro minio.GetObjectOptions
	if err := ro.SetRange(1000, 70000); err != nil {
		t.Fatal(err)
	}
	obj, err = mc.GetObject(ctx, bucket, "m/small", ro)
	if err != nil {
		t.Fatalf("ranged get: %v", err)
	}
	if err := compareBody(obj, section(small, 1000, 69001)); err != nil {
		t.Errorf("ranged get: %v", err)
	}
	obj.Close()

	// A 20 MiB file: minio-go uploads it in parts.
	big := payload{seed: 401, size: 20 << 20}
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	writeFile(t, src, big)
	if _, err := mc.FPutObject(ctx, bucket, "m/big.bin", src, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("fput: %v", err)
	}
	st, err = mc.StatObject(ctx, bucket, "m/big.bin", minio.StatObjectOptions{})
	if err != nil || st.Size != big.size || !strings.Contains(st.ETag, "-") {
		t.Errorf("stat of the 20 MiB object: %v, size %d, ETag %q (want a multipart ETag)", err, st.Size, st.ETag)
	}
	back := filepath.Join(dir, "back.bin")
	if err := mc.FGetObject(ctx, bucket, "m/big.bin", back, minio.GetObjectOptions{}); err != nil {
		t.Fatalf("fget: %v", err)
	}
	if err := compareFile(back, big); err != nil {
		t.Error(err)
	}

	var listed []string
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "m/", Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list: %v", o.Err)
		}
		listed = append(listed, o.Key)
	}
	if !slices.Equal(listed, []string{"m/big.bin", "m/small"}) {
		t.Errorf("list m/: %q", listed)
	}
	listed = nil
	for o := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{}) {
		if o.Err != nil {
			t.Fatalf("list: %v", o.Err)
		}
		listed = append(listed, o.Key)
	}
	if !slices.Equal(listed, []string{"m/"}) {
		t.Errorf("non-recursive list: %q, want [m/]", listed)
	}

	for _, k := range []string{"m/small", "m/big.bin"} {
		if err := mc.RemoveObject(ctx, bucket, k, minio.RemoveObjectOptions{}); err != nil {
			t.Errorf("remove %s: %v", k, err)
		}
		if _, err := mc.StatObject(ctx, bucket, k, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Errorf("stat %s after remove: %v, want NoSuchKey", k, err)
		}
	}
	if err := mc.RemoveBucket(ctx, bucket); err != nil {
		t.Errorf("remove bucket: %v", err)
	}
}

func cliSuite(t *testing.T, c *Cluster) {
	cli, dir := newAWSCLI(t, c)
	run := func(args ...string) string {
		t.Helper()
		out, stderr, err := cli(args...)
		if err != nil {
			t.Fatalf("aws %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	const bucket = "cli-bucket"
	run("s3", "mb", "s3://"+bucket)

	big := payload{seed: 500, size: 50 << 20}
	writeFile(t, filepath.Join(dir, "big.bin"), big)
	run("s3", "cp", "big.bin", "s3://"+bucket+"/big.bin")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("big.bin")})
	if err != nil || aws.ToInt64(head.ContentLength) != big.size || !strings.Contains(aws.ToString(head.ETag), "-") {
		t.Errorf("after aws s3 cp of 50 MiB: %v, %d bytes, ETag %s (want a multipart ETag)", err, aws.ToInt64(head.ContentLength), aws.ToString(head.ETag))
	}
	run("s3", "cp", "s3://"+bucket+"/big.bin", "big-back.bin")
	if err := compareFile(filepath.Join(dir, "big-back.bin"), big); err != nil {
		t.Error(err)
	}
	os.Remove(filepath.Join(dir, "big.bin"))
	os.Remove(filepath.Join(dir, "big-back.bin"))

	tree := filepath.Join(dir, "tree")
	want := map[string]sized{}
	for i := range 30 {
		name := fmt.Sprintf("f%02d.txt", i)
		if i%3 == 0 {
			name = "sub/" + name
		}
		p := payload{seed: uint64(600 + i), size: int64(i*37 + 1)}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(tree, name), p)
		want["synced/"+name] = p
	}
	run("s3", "sync", "tree", "s3://"+bucket+"/synced/")
	checkListing(t, "after aws s3 sync", listAll(ctx, t, c, bucket, "synced/"), want)
	ls := run("s3", "ls", "s3://"+bucket+"/synced/", "--recursive")
	if n := strings.Count(ls, "synced/"); n != 30 {
		t.Errorf("aws s3 ls --recursive shows %d keys, want 30:\n%s", n, ls)
	}
	ls = run("s3", "ls", "s3://"+bucket+"/")
	if !strings.Contains(ls, "PRE synced/") || !strings.Contains(ls, "big.bin") {
		t.Errorf("aws s3 ls of the bucket:\n%s", ls)
	}
	if ls := run("s3", "ls"); !strings.Contains(ls, bucket) {
		t.Errorf("aws s3 ls does not show %s:\n%s", bucket, ls)
	}
	run("s3", "sync", "s3://"+bucket+"/synced/", "tree-back")
	for k, p := range want {
		if err := compareFile(filepath.Join(dir, "tree-back", strings.TrimPrefix(k, "synced/")), p); err != nil {
			t.Error(err)
		}
	}
	run("s3", "rm", "s3://"+bucket+"/", "--recursive")
	if left := listAll(ctx, t, c, bucket, ""); len(left) != 0 {
		t.Errorf("after aws s3 rm --recursive: %v left", left)
	}
	run("s3", "rb", "s3://"+bucket)
}

// newAWSCLI returns a runner of the AWS CLI against c (its stdout, its
// stderr and its failure), isolated from the environment's AWS settings,
// and the directory it runs in. It skips the test when the CLI is not
// installed (fails it under CI).
func newAWSCLI(t *testing.T, c *Cluster) (func(args ...string) (string, string, error), string) {
	t.Helper()
	awsPath, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the AWS CLI (aws) is not on PATH; CI must install it")
		}
		t.Skip("the AWS CLI (aws) is not on PATH")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aws-config")
	if err := os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"AWS_ACCESS_KEY_ID=" + c.Creds.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + c.Creds.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=" + cfg,
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
	if c.File.CACert != "" {
		env = append(env, "AWS_CA_BUNDLE="+c.File.CACert)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return func(args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		full := append([]string{"--endpoint-url", c.Endpoint}, args...)
		if args[0] == "s3" && slices.Contains([]string{"cp", "mv", "sync"}, args[1]) {
			full = append(full, "--no-progress")
		}
		cmd := exec.CommandContext(ctx, awsPath, full...)
		cmd.Env = env
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out), stderr.String(), err
	}, dir
}

// bytesContent is an in-memory content (small bodies only).
type bytesContent []byte

func (b bytesContent) Size() int64 { return int64(len(b)) }

func (b bytesContent) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(b).ReadAt(p, off)
}

// metaValue looks up user metadata case-insensitively (clients differ in
// how they spell the keys back).
func metaValue(m map[string]string, key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) || strings.EqualFold(k, "x-amz-meta-"+key) {
			return v
		}
	}
	return ""
}

func crc32B64(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// escapeKey URL-escapes each segment of a key, keeping the slashes.
func escapeKey(k string) string {
	segs := strings.Split(k, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// httpDo sends one plain HTTP request and returns its status and body.
func httpDo(ctx context.Context, t testing.TB, hc *http.Client, method, u string, h http.Header, body []byte) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		if strings.EqualFold(k, "host") {
			continue
		}
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, b
}
