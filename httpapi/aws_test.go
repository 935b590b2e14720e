package httpapi

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestAWSBuckets drives the bucket operations with aws-sdk-go-v2.
func TestAWSBuckets(t *testing.T) {
	e := newEnv(t, false, nil)
	c, ctx := e.aws(), context.Background()

	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
	must(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("beta"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "us-east-1"}})
	must(t, err)
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketAlreadyOwnedByYou")
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("gamma"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: "eu-west-1"}})
	wantCode(t, err, "InvalidLocationConstraint")
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("Bad_Name")})
	wantCode(t, err, "InvalidBucketName")

	lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	must(t, err)
	if len(lb.Buckets) != 2 || *lb.Buckets[0].Name != "alpha" || *lb.Buckets[1].Name != "beta" || lb.Buckets[0].CreationDate == nil {
		t.Fatalf("ListBuckets = %+v", lb.Buckets)
	}
	if lb.Owner == nil || aws.ToString(lb.Owner.ID) != testAK {
		t.Errorf("owner %+v", lb.Owner)
	}

	hb, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alpha")})
	must(t, err)
	if aws.ToString(hb.BucketRegion) != testRegion {
		t.Errorf("HeadBucket region %q", aws.ToString(hb.BucketRegion))
	}
	_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope")})
	wantCode(t, err, "NotFound") // HEAD errors have no body

	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	must(t, err)
	if loc.LocationConstraint != "" {
		t.Errorf("location %q, want empty for us-east-1", loc.LocationConstraint)
	}
	ver, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("alpha")})
	must(t, err)
	if ver.Status != "" {
		t.Errorf("versioning status %q", ver.Status)
	}
	_, err = c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("nope")})
	wantCode(t, err, "NoSuchBucket")
	_, err = c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NotImplemented")
	_, err = c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NotImplemented")

	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k"), Body: strings.NewReader("x")})
	must(t, err)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "BucketNotEmpty")
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")})
	must(t, err)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	must(t, err)
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, err, "NoSuchBucket")
}

// TestAWSObjects covers PUT/GET/HEAD/DELETE/copy over plain HTTP (checksum in
// a header) and TLS (aws-chunked body with a trailing checksum).
func TestAWSObjects(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) { testAWSObjects(t, tls) })
	}
}

func testAWSObjects(t *testing.T, tls bool) {
	e := newEnv(t, tls, nil)
	c, ctx := e.aws(), context.Background()
	b := aws.String("objs")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b})
	must(t, err)

	data := pattern(100_000, 1)
	sum := md5.Sum(data)
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: b, Key: aws.String("dir/obj ü+?.bin"), Body: bytes.NewReader(data),
		ContentType: aws.String("application/x-test"), ContentEncoding: aws.String("identity"),
		ContentDisposition: aws.String(`attachment; filename="o.bin"`), CacheControl: aws.String("max-age=60"),
		ContentLanguage: aws.String("de"), Expires: aws.Time(expires),
		Metadata: map[string]string{"Color": "blue", "answer": "42"},
	})
	must(t, err)
	if want := `"` + hex.EncodeToString(sum[:]) + `"`; aws.ToString(put.ETag) != want {
		t.Fatalf("PUT ETag %s, want %s", aws.ToString(put.ETag), want)
	}
	if aws.ToString(put.ChecksumCRC32) == "" {
		t.Error("PUT response lacks the CRC32 checksum the SDK sent")
	}
	m, err := e.store.HeadObject(ctx, "objs", "dir/obj ü+?.bin")
	must(t, err)
	if tls && !e.sawPayload("STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
		t.Errorf("over TLS the SDK did not send an aws-chunked body with a trailer; saw %v", e.payloads)
	}
	if m.Checksums["CRC32"] == "" {
		t.Errorf("stored checksums %v: CRC32 missing", m.Checksums)
	}
	if m.Headers["Content-Encoding"] != "identity" {
		t.Errorf("stored Content-Encoding %q (aws-chunked must be stripped)", m.Headers["Content-Encoding"])
	}

	// GET: bytes, metadata and headers round-trip; the SDK validates the CRC32.
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin"), ChecksumMode: types.ChecksumModeEnabled})
	must(t, err)
	got := readAll(t, get.Body)
	if !bytes.Equal(got, data) {
		t.Fatal("GET body differs")
	}
	if aws.ToString(get.ChecksumCRC32) != m.Checksums["CRC32"] {
		t.Errorf("GET CRC32 %q, stored %q", aws.ToString(get.ChecksumCRC32), m.Checksums["CRC32"])
	}
	checks := map[string][2]string{
		"ETag":               {aws.ToString(get.ETag), aws.ToString(put.ETag)},
		"ContentType":        {aws.ToString(get.ContentType), "application/x-test"},
		"ContentEncoding":    {aws.ToString(get.ContentEncoding), "identity"},
		"ContentDisposition": {aws.ToString(get.ContentDisposition), `attachment; filename="o.bin"`},
		"CacheControl":       {aws.ToString(get.CacheControl), "max-age=60"},
		"ContentLanguage":    {aws.ToString(get.ContentLanguage), "de"},
		"Expires":            {aws.ToString(get.ExpiresString), expires.Format(http.TimeFormat)},
		"meta color":         {get.Metadata["color"], "blue"},
		"meta answer":        {get.Metadata["answer"], "42"},
		"LastModified":       {get.LastModified.UTC().Format(time.RFC3339), m.Created.Truncate(time.Second).Format(time.RFC3339)},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("GET %s = %q, want %q", name, c[0], c[1])
		}
	}
	if aws.ToInt64(get.ContentLength) != int64(len(data)) {
		t.Errorf("Content-Length %d", aws.ToInt64(get.ContentLength))
	}

	// HEAD and response-* overrides.
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin")})
	must(t, err)
	if aws.ToInt64(head.ContentLength) != int64(len(data)) || head.Metadata["color"] != "blue" || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
		t.Errorf("HEAD = len %d meta %v etag %s", aws.ToInt64(head.ContentLength), head.Metadata, aws.ToString(head.ETag))
	}
	ov, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin"),
		ResponseContentType: aws.String("text/plain"), ResponseContentDisposition: aws.String("inline"),
		ResponseCacheControl: aws.String("no-cache"), ResponseContentLanguage: aws.String("fr"),
		ResponseContentEncoding: aws.String("gzip"), ResponseExpires: aws.Time(expires.Add(time.Hour))})
	must(t, err)
	readAll(t, ov.Body)
	if aws.ToString(ov.ContentType) != "text/plain" || aws.ToString(ov.ContentDisposition) != "inline" ||
		aws.ToString(ov.CacheControl) != "no-cache" || aws.ToString(ov.ContentLanguage) != "fr" ||
		aws.ToString(ov.ContentEncoding) != "gzip" || aws.ToString(ov.ExpiresString) != expires.Add(time.Hour).Format(http.TimeFormat) {
		t.Errorf("overrides not applied: %q %q %q %q %q %q", aws.ToString(ov.ContentType), aws.ToString(ov.ContentDisposition),
			aws.ToString(ov.CacheControl), aws.ToString(ov.ContentLanguage), aws.ToString(ov.ContentEncoding), aws.ToString(ov.ExpiresString))
	}

	// Ranges.
	for _, tc := range []struct {
		rng        string
		start, end int // inclusive
	}{
		{"bytes=0-9", 0, 9},
		{"bytes=99990-", 99990, 99999},
		{"bytes=-5", 99995, 99999},
		{"bytes=99000-200000", 99000, 99999},
		{"bytes=-200000", 0, 99999},
	} {
		g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin"), Range: aws.String(tc.rng)})
		must(t, err)
		body := readAll(t, g.Body)
		wantCR := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, len(data))
		if !bytes.Equal(body, data[tc.start:tc.end+1]) || aws.ToString(g.ContentRange) != wantCR {
			t.Errorf("Range %s: %d bytes, Content-Range %q, want %q", tc.rng, len(body), aws.ToString(g.ContentRange), wantCR)
		}
		if g.ChecksumCRC32 != nil {
			t.Errorf("Range %s: whole-object checksum sent with a partial body", tc.rng)
		}
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin"), Range: aws.String("bytes=100000-")})
	wantCode(t, err, "InvalidRange")

	// Conditionals.
	etag := aws.ToString(put.ETag)
	past, future := m.Created.Add(-time.Hour), m.Created.Add(time.Hour)
	for _, tc := range []struct {
		name string
		in   s3.GetObjectInput
		want string // "" = 200, else error code
	}{
		{"if-match ok", s3.GetObjectInput{IfMatch: aws.String(etag)}, ""},
		{"if-match star", s3.GetObjectInput{IfMatch: aws.String("*")}, ""},
		{"if-match fail", s3.GetObjectInput{IfMatch: aws.String(`"abc"`)}, "PreconditionFailed"},
		{"if-none-match hit", s3.GetObjectInput{IfNoneMatch: aws.String(etag)}, "NotModified"},
		{"if-none-match miss", s3.GetObjectInput{IfNoneMatch: aws.String(`"abc"`)}, ""},
		{"if-modified-since past", s3.GetObjectInput{IfModifiedSince: aws.Time(past)}, ""},
		{"if-modified-since future", s3.GetObjectInput{IfModifiedSince: aws.Time(future)}, "NotModified"},
		{"if-unmodified-since future", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(future)}, ""},
		{"if-unmodified-since past", s3.GetObjectInput{IfUnmodifiedSince: aws.Time(past)}, "PreconditionFailed"},
		// S3 precedence: If-Match true beats If-Unmodified-Since false…
		{"match beats unmodified", s3.GetObjectInput{IfMatch: aws.String(etag), IfUnmodifiedSince: aws.Time(past)}, ""},
		// …and If-None-Match false (ETag differs) beats If-Modified-Since.
		{"none-match beats modified", s3.GetObjectInput{IfNoneMatch: aws.String(`"abc"`), IfModifiedSince: aws.Time(future)}, ""},
		{"412 before 304", s3.GetObjectInput{IfMatch: aws.String(`"abc"`), IfNoneMatch: aws.String(etag)}, "PreconditionFailed"},
	} {
		in := tc.in
		in.Bucket, in.Key = b, aws.String("dir/obj ü+?.bin")
		g, err := c.GetObject(ctx, &in)
		if err == nil {
			readAll(t, g.Body)
		}
		if got := code(err); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin"), IfNoneMatch: aws.String(etag)})
	wantCode(t, err, "NotModified")

	// Missing objects.
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("missing")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("missing")})
	wantCode(t, err, "NotFound")
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("x")})
	wantCode(t, err, "NoSuchBucket")

	// Empty object.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("empty"), Body: bytes.NewReader(nil)})
	must(t, err)
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("empty")})
	must(t, err)
	if n := len(readAll(t, g.Body)); n != 0 || aws.ToString(g.ETag) != `"d41d8cd98f00b204e9800998ecf8427e"` {
		t.Errorf("empty object: %d bytes, ETag %s", n, aws.ToString(g.ETag))
	}

	// Copy: COPY keeps metadata, REPLACE takes the request's, across buckets.
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("other")})
	must(t, err)
	cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("copy1"),
		CopySource: aws.String("objs/dir/obj%20%C3%BC%2B%3F.bin")})
	must(t, err)
	if cp.CopyObjectResult == nil || aws.ToString(cp.CopyObjectResult.ETag) != etag || cp.CopyObjectResult.LastModified == nil {
		t.Fatalf("CopyObjectResult %+v", cp.CopyObjectResult)
	}
	h1, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("other"), Key: aws.String("copy1")})
	must(t, err)
	if h1.Metadata["color"] != "blue" || aws.ToString(h1.ContentType) != "application/x-test" || aws.ToInt64(h1.ContentLength) != int64(len(data)) {
		t.Errorf("COPY lost metadata: %v %q", h1.Metadata, aws.ToString(h1.ContentType))
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy2"),
		CopySource: aws.String("/objs/empty?versionId=null"), MetadataDirective: types.MetadataDirectiveReplace,
		ContentType: aws.String("text/x-new"), Metadata: map[string]string{"fresh": "yes"}})
	must(t, err)
	h2, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("copy2")})
	must(t, err)
	if h2.Metadata["fresh"] != "yes" || aws.ToString(h2.ContentType) != "text/x-new" {
		t.Errorf("REPLACE: %v %q", h2.Metadata, aws.ToString(h2.ContentType))
	}
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("empty"), CopySource: aws.String("objs/empty")})
	wantCode(t, err, "InvalidRequest")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c3"), CopySource: aws.String("objs/missing")})
	wantCode(t, err, "NoSuchKey")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c3"), CopySource: aws.String("objs/empty"),
		CopySourceIfMatch: aws.String(`"nope"`)})
	wantCode(t, err, "PreconditionFailed")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c3"), CopySource: aws.String("objs/empty"),
		CopySourceIfNoneMatch: aws.String(`"d41d8cd98f00b204e9800998ecf8427e"`)})
	wantCode(t, err, "PreconditionFailed")
	_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c3"), CopySource: aws.String("objs/empty"),
		CopySourceIfUnmodifiedSince: aws.Time(future), CopySourceIfModifiedSince: aws.Time(past)})
	must(t, err)

	// Delete: 204 even when absent.
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("c3")})
	must(t, err)
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("c3")})
	must(t, err)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("c3")})
	wantCode(t, err, "NotFound")

	// DeleteObjects, verbose and quiet (the SDK sends a CRC32 checksum).
	for i := range 4 {
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(fmt.Sprintf("del/%d", i)), Body: strings.NewReader("d")})
		must(t, err)
	}
	dv, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("del/0")}, {Key: aws.String("del/1")}, {Key: aws.String("del/absent")}, {Key: aws.String(strings.Repeat("k", 1025))},
	}}})
	must(t, err)
	var deleted []string
	for _, d := range dv.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	if strings.Join(deleted, " ") != "del/0 del/1 del/absent" || len(dv.Errors) != 1 || aws.ToString(dv.Errors[0].Code) != "KeyTooLongError" {
		t.Errorf("verbose DeleteObjects: deleted %v errors %+v", deleted, dv.Errors)
	}
	dq, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Quiet: aws.Bool(true),
		Objects: []types.ObjectIdentifier{{Key: aws.String("del/2")}, {Key: aws.String("del/3")}}}})
	must(t, err)
	if len(dq.Deleted) != 0 || len(dq.Errors) != 0 {
		t.Errorf("quiet DeleteObjects: %+v %+v", dq.Deleted, dq.Errors)
	}
	if _, err := e.store.HeadObject(ctx, "objs", "del/3"); err == nil {
		t.Error("del/3 survived DeleteObjects")
	}
	_, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("nobucket"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("x")}}}})
	wantCode(t, err, "NoSuchBucket")

	// Presigned GET and PUT work; the URL carries the signature.
	pc := s3.NewPresignClient(c)
	pg, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("dir/obj ü+?.bin")}, s3.WithPresignExpires(time.Minute))
	must(t, err)
	resp, err := e.srv.Client().Get(pg.URL)
	must(t, err)
	if body := readAll(t, resp.Body); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("presigned GET: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestAWSList covers ListObjectsV2 and V1 paging, prefixes, delimiters and
// URL encoding.
func TestAWSList(t *testing.T) {
	e := newEnv(t, false, nil)
	c, ctx := e.aws(), context.Background()
	b := aws.String("list")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b})
	must(t, err)
	keys := []string{"a/1", "a/2", "b/1", "b/2/x", "c", "d e", "d+f", "z/é"}
	for _, k := range keys {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(k), Body: strings.NewReader(k)})
		must(t, err)
	}

	// V2: everything, paged two at a time through the SDK paginator.
	var all []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b, MaxKeys: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		must(t, err)
		pages++
		if aws.ToInt32(page.KeyCount) != int32(len(page.Contents)) || aws.ToInt32(page.MaxKeys) != 2 {
			t.Errorf("page %d: KeyCount %d, %d contents, MaxKeys %d", pages, aws.ToInt32(page.KeyCount), len(page.Contents), aws.ToInt32(page.MaxKeys))
		}
		for _, o := range page.Contents {
			all = append(all, aws.ToString(o.Key))
			if aws.ToInt64(o.Size) != int64(len(aws.ToString(o.Key))) || o.LastModified == nil || !strings.HasPrefix(aws.ToString(o.ETag), `"`) {
				t.Errorf("entry %+v", o)
			}
		}
	}
	if strings.Join(all, "|") != strings.Join(keys, "|") || pages != 4 {
		t.Errorf("V2 paged listing %q in %d pages", all, pages)
	}

	// V2 delimiter: common prefixes count toward max-keys.
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Delimiter: aws.String("/"), MaxKeys: aws.Int32(3)})
	must(t, err)
	if got := listed(l.Contents, l.CommonPrefixes); got != "a/ b/ c" || !aws.ToBool(l.IsTruncated) || aws.ToInt32(l.KeyCount) != 3 {
		t.Errorf("V2 delimiter page 1: %q truncated %v", got, aws.ToBool(l.IsTruncated))
	}
	l2, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Delimiter: aws.String("/"), ContinuationToken: l.NextContinuationToken})
	must(t, err)
	if got := listed(l2.Contents, l2.CommonPrefixes); got != "d e d+f z/" || aws.ToBool(l2.IsTruncated) || aws.ToString(l2.ContinuationToken) != aws.ToString(l.NextContinuationToken) {
		t.Errorf("V2 delimiter page 2: %q", got)
	}
	l, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("b/"), Delimiter: aws.String("/")})
	must(t, err)
	if got := listed(l.Contents, l.CommonPrefixes); got != "b/1 b/2/" || aws.ToString(l.Prefix) != "b/" {
		t.Errorf("V2 prefix b/: %q", got)
	}
	l, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, StartAfter: aws.String("c")})
	must(t, err)
	if got := listed(l.Contents, nil); got != "d e d+f z/é" || aws.ToString(l.StartAfter) != "c" {
		t.Errorf("V2 start-after c: %q", got)
	}
	l, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, MaxKeys: aws.Int32(0)})
	must(t, err)
	if len(l.Contents) != 0 || aws.ToBool(l.IsTruncated) {
		t.Errorf("max-keys 0: %d entries", len(l.Contents))
	}
	l, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, MaxKeys: aws.Int32(5000)})
	must(t, err)
	if aws.ToInt32(l.MaxKeys) != 1000 || len(l.Contents) != len(keys) {
		t.Errorf("max-keys 5000: MaxKeys %d", aws.ToInt32(l.MaxKeys))
	}
	// encoding-type=url: names come back encoded.
	l, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("d"), EncodingType: types.EncodingTypeUrl})
	must(t, err)
	if got := listed(l.Contents, nil); got != "d%2Bf d+e" || l.EncodingType != types.EncodingTypeUrl {
		t.Errorf("encoded listing %q (%q)", got, l.EncodingType)
	}
	l, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("z/"), Delimiter: aws.String("/"), EncodingType: types.EncodingTypeUrl})
	must(t, err)
	if got := listed(l.Contents, nil); got != "z/%C3%A9" || aws.ToString(l.Prefix) != "z/" {
		t.Errorf("encoded listing %q prefix %q", got, aws.ToString(l.Prefix))
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	wantCode(t, err, "NoSuchBucket")

	// V1: marker; NextMarker only with a delimiter.
	v1, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, MaxKeys: aws.Int32(3), Marker: aws.String("a/2")})
	must(t, err)
	if got := listed(v1.Contents, nil); got != "b/1 b/2/x c" || !aws.ToBool(v1.IsTruncated) || v1.NextMarker != nil || aws.ToString(v1.Marker) != "a/2" {
		t.Errorf("V1 marker: %q truncated %v next %v", got, aws.ToBool(v1.IsTruncated), v1.NextMarker)
	}
	v1, err = c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, MaxKeys: aws.Int32(2), Delimiter: aws.String("/")})
	must(t, err)
	if got := listed(v1.Contents, v1.CommonPrefixes); got != "a/ b/" || aws.ToString(v1.NextMarker) != "b/" {
		t.Errorf("V1 delimiter: %q NextMarker %q", got, aws.ToString(v1.NextMarker))
	}
	v1, err = c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, Delimiter: aws.String("/"), Marker: v1.NextMarker})
	must(t, err)
	if got := listed(v1.Contents, v1.CommonPrefixes); got != "c d e d+f z/" || aws.ToBool(v1.IsTruncated) || v1.NextMarker != nil {
		t.Errorf("V1 page 2: %q", got)
	}
}

// listed renders keys and common prefixes as one sorted, space-separated line.
func listed(objs []types.Object, cps []types.CommonPrefix) string {
	var out []string
	for _, o := range objs {
		out = append(out, aws.ToString(o.Key))
	}
	for _, p := range cps {
		out = append(out, aws.ToString(p.Prefix))
	}
	sortStrings(out)
	return strings.Join(out, " ")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestAWSMultipart covers the multipart operations and their errors.
func TestAWSMultipart(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) { testAWSMultipart(t, tls) })
	}
}

func testAWSMultipart(t *testing.T, tls bool) {
	e := newEnv(t, tls, nil)
	c, ctx := e.aws(), context.Background()
	b, k := aws.String("mpu-bucket"), aws.String("big/object")
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b})
	must(t, err)
	src := pattern(6<<20, 7)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("src"), Body: bytes.NewReader(src)})
	must(t, err)

	cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: k,
		ContentType: aws.String("video/x-test"), Metadata: map[string]string{"m": "1"}})
	must(t, err)
	id := cr.UploadId
	if aws.ToString(cr.Bucket) != "mpu-bucket" || aws.ToString(cr.Key) != "big/object" || aws.ToString(id) == "" {
		t.Fatalf("CreateMultipartUpload %+v", cr)
	}
	part1 := pattern(5<<20, 1)
	up1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
	must(t, err)
	s1 := md5.Sum(part1)
	if aws.ToString(up1.ETag) != `"`+hex.EncodeToString(s1[:])+`"` {
		t.Errorf("part 1 ETag %s", aws.ToString(up1.ETag))
	}
	upc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(2),
		CopySource: aws.String("mpu-bucket/src"), CopySourceRange: aws.String("bytes=0-5242879")})
	must(t, err)
	part3 := []byte("tail")
	up3, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(3), Body: bytes.NewReader(part3)})
	must(t, err)

	_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(4),
		CopySource: aws.String("mpu-bucket/src"), CopySourceRange: aws.String("bytes=0-99999999")})
	wantCode(t, err, "InvalidArgument")
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: aws.String("nope"), PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
	wantCode(t, err, "NoSuchUpload")
	_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: k, UploadId: id, PartNumber: aws.Int32(10001), Body: strings.NewReader("x")})
	wantCode(t, err, "InvalidArgument")

	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id, MaxParts: aws.Int32(2)})
	must(t, err)
	if len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.NextPartNumberMarker) != "2" ||
		aws.ToInt64(lp.Parts[0].Size) != 5<<20 || aws.ToString(lp.Parts[1].ETag) != aws.ToString(upc.CopyPartResult.ETag) {
		t.Errorf("ListParts page 1: %+v", lp)
	}
	lp, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id, PartNumberMarker: lp.NextPartNumberMarker})
	must(t, err)
	if len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 3 || aws.ToBool(lp.IsTruncated) {
		t.Errorf("ListParts page 2: %+v", lp.Parts)
	}

	// A second upload, to list.
	cr2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("other/x")})
	must(t, err)
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b})
	must(t, err)
	if len(lu.Uploads) != 2 || aws.ToString(lu.Uploads[0].Key) != "big/object" || aws.ToString(lu.Uploads[1].UploadId) != aws.ToString(cr2.UploadId) {
		t.Errorf("ListMultipartUploads: %+v", lu.Uploads)
	}
	lu, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b, Delimiter: aws.String("/"), MaxUploads: aws.Int32(1)})
	must(t, err)
	if len(lu.CommonPrefixes) != 1 || aws.ToString(lu.CommonPrefixes[0].Prefix) != "big/" || !aws.ToBool(lu.IsTruncated) || aws.ToString(lu.NextKeyMarker) != "big/" {
		t.Errorf("ListMultipartUploads delimiter: %+v", lu)
	}
	lu, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b, Delimiter: aws.String("/"), KeyMarker: lu.NextKeyMarker})
	must(t, err)
	if len(lu.CommonPrefixes) != 1 || aws.ToString(lu.CommonPrefixes[0].Prefix) != "other/" || aws.ToBool(lu.IsTruncated) {
		t.Errorf("ListMultipartUploads page 2: %+v", lu)
	}
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("other/x"), UploadId: cr2.UploadId})
	must(t, err)
	_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("other/x"), UploadId: cr2.UploadId})
	wantCode(t, err, "NoSuchUpload")

	complete := func(parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	p := func(n int32, etag *string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: etag}
	}
	wantCode(t, complete(p(2, upc.CopyPartResult.ETag), p(1, up1.ETag)), "InvalidPartOrder")
	wantCode(t, complete(p(1, up1.ETag), p(2, up3.ETag)), "InvalidPart")
	wantCode(t, complete(p(1, up1.ETag), p(4, up3.ETag)), "InvalidPart")
	wantCode(t, complete(p(1, aws.String(`"00000000000000000000000000000000"`))), "InvalidPart")
	wantCode(t, complete(), "MalformedXML")

	// EntityTooSmall: a small part that is not last.
	cr3, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("small")})
	must(t, err)
	var small []types.CompletedPart
	for n := int32(1); n <= 2; n++ {
		u, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("small"), UploadId: cr3.UploadId, PartNumber: aws.Int32(n), Body: strings.NewReader("tiny")})
		must(t, err)
		small = append(small, p(n, u.ETag))
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("small"), UploadId: cr3.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: small}})
	wantCode(t, err, "EntityTooSmall")

	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: k, UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{p(1, up1.ETag), p(2, upc.CopyPartResult.ETag), p(3, up3.ETag)}}})
	must(t, err)
	var md5s []byte
	for _, part := range [][]byte{part1, src[:5<<20], part3} {
		s := md5.Sum(part)
		md5s = append(md5s, s[:]...)
	}
	all := md5.Sum(md5s)
	wantETag := `"` + hex.EncodeToString(all[:]) + `-3"`
	if aws.ToString(done.ETag) != wantETag || aws.ToString(done.Key) != "big/object" || !strings.HasSuffix(aws.ToString(done.Location), "/mpu-bucket/big/object") {
		t.Errorf("Complete: ETag %s (want %s) location %s", aws.ToString(done.ETag), wantETag, aws.ToString(done.Location))
	}
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k})
	must(t, err)
	body := readAll(t, g.Body)
	want := append(append(append([]byte(nil), part1...), src[:5<<20]...), part3...)
	if !bytes.Equal(body, want) || aws.ToString(g.ContentType) != "video/x-test" || g.Metadata["m"] != "1" || aws.ToInt32(g.PartsCount) != 3 {
		t.Errorf("completed object: %d bytes, type %q, meta %v, parts %d", len(body), aws.ToString(g.ContentType), g.Metadata, aws.ToInt32(g.PartsCount))
	}
	// GET ?partNumber serves one part.
	g, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k, PartNumber: aws.Int32(3)})
	must(t, err)
	if body := readAll(t, g.Body); string(body) != "tail" || aws.ToString(g.ContentRange) != fmt.Sprintf("bytes %d-%d/%d", 10<<20, 10<<20+3, 10<<20+4) {
		t.Errorf("partNumber 3: %q %q", body, aws.ToString(g.ContentRange))
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: k, PartNumber: aws.Int32(4)})
	wantCode(t, err, "InvalidPartNumber")
	_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: k, UploadId: id})
	wantCode(t, err, "NoSuchUpload")
}

// TestAWSVirtualHost addresses buckets as bucket.BaseDomain.
func TestAWSVirtualHost(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.BaseDomain = "s3.shale.test" })
	addr := e.srv.Listener.Addr().String()
	_, port, _ := strings.Cut(addr, ":")
	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr) // every host name reaches the test server
	}}}
	c := s3.NewFromConfig(aws.Config{Region: testRegion, HTTPClient: hc,
		Credentials: staticCreds()}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://s3.shale.test:" + port)
		o.Retryer = aws.NopRetryer{}
	})
	ctx := context.Background()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost")})
	must(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b c"), Body: strings.NewReader("virtual")})
	must(t, err)
	g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b c")})
	must(t, err)
	if body := readAll(t, g.Body); string(body) != "virtual" {
		t.Errorf("GET %q", body)
	}
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vhost")})
	must(t, err)
	if listed(l.Contents, nil) != "a/b c" {
		t.Errorf("list %q", listed(l.Contents, nil))
	}
	// Path style still works on the same endpoint.
	if _, err := e.store.HeadObject(ctx, "vhost", "a/b c"); err != nil {
		t.Fatal(err)
	}
	g, err = e.aws().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("a/b c")})
	must(t, err)
	readAll(t, g.Body)
}

// TestSlowDown: beyond MaxInFlight requests are shed with 503 SlowDown.
func TestSlowDown(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.MaxInFlight = 1 })
	must(t, e.store.CreateBucket(context.Background(), "shed", ""))
	e.store.putGate, e.store.putEnter = make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := e.aws().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("shed"), Key: aws.String("k"), Body: strings.NewReader("x")})
		done <- err
	}()
	<-e.store.putEnter // the first request holds the only slot
	_, err := e.aws().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("shed")})
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Errorf("second request: %v, want 503", err)
	}
	resp := e.do("GET", "/shed", nil, nil, testSK)
	if e := readErr(t, resp); resp.StatusCode != 503 || e.Code != "SlowDown" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("shed: %d %s", resp.StatusCode, e.Code)
	}
	close(e.store.putGate)
	must(t, <-done)
	_, err = e.aws().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String("shed")})
	must(t, err)
}

// TestReadFailure: a read that fails before the first byte is an S3 error;
// one that fails mid-body breaks the connection rather than end cleanly.
func TestReadFailure(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := context.Background()
	must(t, e.store.CreateBucket(ctx, "readfail", ""))
	_, err := e.aws().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("readfail"), Key: aws.String("k"), Body: bytes.NewReader(pattern(1<<20, 3))})
	must(t, err)

	e.store.readErr = fmt.Errorf("read readfail/k: %w", errUnreadableForTest())
	resp := e.do("GET", "/readfail/k", nil, nil, testSK)
	if er := readErr(t, resp); resp.StatusCode != 500 || er.Code != "InternalError" {
		t.Errorf("early failure: %d %s", resp.StatusCode, er.Code)
	}
	e.store.readFail = 100_000 // past the server's buffers: the status line is out
	resp, err = e.srv.Client().Do(e.request("GET", "/readfail/k", nil, nil, testSK))
	must(t, err)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil || n != 100_000 {
		t.Errorf("mid-body failure: status %d, read %d bytes, err %v (want a broken body)", resp.StatusCode, n, err)
	}
}
