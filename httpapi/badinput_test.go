package httpapi

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestBadInput sends malformed, oversized, unauthenticated and otherwise
// invalid requests; each must get its specific S3 error and leave the store
// exactly as it was.
func TestBadInput(t *testing.T) {
	e := newEnv(t, false, nil)
	ctx := context.Background()
	must(t, e.store.CreateBucket(ctx, "bad-input", ""))
	resp := e.do("PUT", "/bad-input/r", []byte(strings.Repeat("r", 100)), nil, testSK)
	resp.Body.Close()
	up, err := e.store.CreateUpload(ctx, testUpload("bad-input", "mp"))
	must(t, err)
	b0, o0, u0, p0 := e.store.stored()
	if o0 != 1 || u0 != 1 {
		t.Fatalf("setup: %d objects, %d uploads", o0, u0)
	}

	md5of := func(s string) string { h := md5.Sum([]byte(s)); return base64.StdEncoding.EncodeToString(h[:]) }
	sha := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSK}
	send := func(req *http.Request) *http.Response {
		resp, err := e.srv.Client().Do(req)
		must(t, err)
		return resp
	}
	signed := func(method, path, body string, hdr map[string]string) func() *http.Response {
		return func() *http.Response { return e.do(method, path, []byte(body), hdr, testSK) }
	}
	var deleteMany strings.Builder
	deleteMany.WriteString("<Delete>")
	for i := range 1001 {
		fmt.Fprintf(&deleteMany, "<Object><Key>k%d</Key></Object>", i)
	}
	deleteMany.WriteString("</Delete>")
	mp := "/bad-input/mp?uploadId=" + up.ID

	cases := []struct {
		name   string
		send   func() *http.Response
		status int
		code   string
	}{
		// Names.
		{"key over 1024 bytes", signed("PUT", "/bad-input/"+strings.Repeat("k", 1025), "data", nil), 400, "KeyTooLongError"},
		{"key over 1024 bytes, copy source", signed("PUT", "/bad-input/dst", "", map[string]string{"x-amz-copy-source": "bad-input/" + strings.Repeat("k", 1025)}), 400, "KeyTooLongError"},
		{"bucket name uppercase", signed("PUT", "/Bad-Bucket", "", nil), 400, "InvalidBucketName"},
		{"bucket name underscore", signed("PUT", "/bad_bucket", "", nil), 400, "InvalidBucketName"},
		{"bucket name too short", signed("PUT", "/ab", "", nil), 400, "InvalidBucketName"},
		{"bucket name too long", signed("PUT", "/"+strings.Repeat("b", 64), "", nil), 400, "InvalidBucketName"},
		{"bucket name IP address", signed("PUT", "/192.168.10.1", "", nil), 400, "InvalidBucketName"},
		{"bucket name adjacent dots", signed("PUT", "/a..b", "", nil), 400, "InvalidBucketName"},
		{"bucket name leading hyphen", signed("PUT", "/-abc", "", nil), 400, "InvalidBucketName"},
		{"bucket name xn-- prefix", signed("PUT", "/xn--abc", "", nil), 400, "InvalidBucketName"},
		{"bucket name on object PUT", signed("PUT", "/UP/key", "data", nil), 400, "InvalidBucketName"},
		{"bucket wrong region", signed("PUT", "/new-bucket", "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>", nil), 400, "InvalidLocationConstraint"},
		{"bucket config not XML", signed("PUT", "/new-bucket", "<CreateBucketConfiguration><Loc", nil), 400, "MalformedXML"},

		// XML bodies.
		{"complete: truncated XML", signed("POST", mp, "<CompleteMultipartUpload><Part><PartNumber>1", nil), 400, "MalformedXML"},
		{"complete: not XML", signed("POST", mp, "garbage", nil), 400, "MalformedXML"},
		{"complete: empty body", signed("POST", mp, "", nil), 400, "MalformedXML"},
		{"complete: no parts", signed("POST", mp, "<CompleteMultipartUpload></CompleteMultipartUpload>", nil), 400, "MalformedXML"},
		{"complete: wrong root", signed("POST", mp, "<Delete><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Delete>", nil), 400, "MalformedXML"},
		{"complete: part number not a number", signed("POST", mp, "<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>", nil), 400, "MalformedXML"},
		{"complete: unknown upload", signed("POST", "/bad-input/mp?uploadId=nope", "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>", nil), 404, "NoSuchUpload"},
		{"delete: truncated XML", signed("POST", "/bad-input?delete", "<Delete><Object><Key>r</Key>", nil), 400, "MalformedXML"},
		{"delete: no objects", signed("POST", "/bad-input?delete", "<Delete><Quiet>true</Quiet></Delete>", nil), 400, "MalformedXML"},
		{"delete: bad Quiet", signed("POST", "/bad-input?delete", "<Delete><Quiet>maybe</Quiet><Object><Key>r</Key></Object></Delete>", nil), 400, "MalformedXML"},
		{"delete: 1001 keys", signed("POST", "/bad-input?delete", deleteMany.String(), nil), 400, "MalformedXML"},
		{"delete: wrong Content-MD5", signed("POST", "/bad-input?delete", "<Delete><Object><Key>r</Key></Object></Delete>", map[string]string{"Content-MD5": md5of("other")}), 400, "BadDigest"},

		// Bodies and digests.
		{"PUT wrong Content-MD5", signed("PUT", "/bad-input/k", "data", map[string]string{"Content-MD5": md5of("atad")}), 400, "BadDigest"},
		{"PUT invalid Content-MD5", signed("PUT", "/bad-input/k", "data", map[string]string{"Content-MD5": "not-base64!"}), 400, "InvalidDigest"},
		{"PUT wrong CRC32", signed("PUT", "/bad-input/k", "data", map[string]string{"x-amz-checksum-crc32": "AAAAAA=="}), 400, "BadDigest"},
		{"PUT wrong x-amz-content-sha256", signed("PUT", "/bad-input/k", "data", map[string]string{"X-Amz-Content-Sha256": sha("other")}), 400, "XAmzContentSHA256Mismatch"},
		{"PUT truncated aws-chunked body", signed("PUT", "/bad-input/k", "5\r\nhello\r\n", map[string]string{
			"X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "Content-Encoding": "aws-chunked",
			"X-Amz-Decoded-Content-Length": "10", "X-Amz-Trailer": "x-amz-checksum-crc32"}), 400, "IncompleteBody"},
		{"PUT garbage aws-chunked body", signed("PUT", "/bad-input/k", "zz\r\nhello\r\n0\r\n\r\n", map[string]string{
			"X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "Content-Encoding": "aws-chunked",
			"X-Amz-Decoded-Content-Length": "5", "X-Amz-Trailer": "x-amz-checksum-crc32"}), 400, "IncompleteBody"},
		{"PUT over 5 GiB", signed("PUT", "/bad-input/k", "0\r\n\r\n", map[string]string{
			"X-Amz-Content-Sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "Content-Encoding": "aws-chunked",
			"X-Amz-Decoded-Content-Length": "6442450944"}), 400, "EntityTooLarge"},
		{"PUT user metadata over 2 KB", signed("PUT", "/bad-input/k", "data", map[string]string{"x-amz-meta-big": strings.Repeat("m", 2100)}), 400, "MetadataTooLarge"},

		// Authentication.
		{"wrong signature", func() *http.Response { return e.do("PUT", "/bad-input/k", []byte("data"), nil, "wrong-secret") }, 403, "SignatureDoesNotMatch"},
		{"unknown access key", func() *http.Response {
			return send(e.requestAs(aws.Credentials{AccessKeyID: "AKIDUNKNOWN", SecretAccessKey: testSK}, testRegion, time.Now(), "PUT", "/bad-input/k", []byte("data"), nil))
		}, 403, "InvalidAccessKeyId"},
		{"wrong region", func() *http.Response {
			return send(e.requestAs(creds, "eu-west-1", time.Now(), "PUT", "/bad-input/k", []byte("data"), nil))
		}, 400, "AuthorizationHeaderMalformed"},
		{"request time skewed", func() *http.Response {
			return send(e.requestAs(creds, testRegion, time.Now().Add(-time.Hour), "PUT", "/bad-input/k", []byte("data"), nil))
		}, 403, "RequestTimeTooSkewed"},
		{"not signed", func() *http.Response {
			req, err := http.NewRequest("PUT", e.srv.URL+"/bad-input/k", strings.NewReader("data"))
			must(t, err)
			return send(req)
		}, 403, "AccessDenied"},
		{"expired presigned URL", func() *http.Response {
			req, err := http.NewRequest("PUT", e.srv.URL+"/bad-input/k?X-Amz-Expires=60", strings.NewReader("data"))
			must(t, err)
			u, _, err := signer().PresignHTTP(ctx, creds, req, "UNSIGNED-PAYLOAD", "s3", testRegion, time.Now().Add(-2*time.Hour))
			must(t, err)
			req, err = http.NewRequest("PUT", u, strings.NewReader("data"))
			must(t, err)
			return send(req)
		}, 403, "AccessDenied"},

		// Arguments.
		{"part number 0", signed("PUT", "/bad-input/mp?partNumber=0&uploadId="+up.ID, "data", nil), 400, "InvalidArgument"},
		{"part number 10001", signed("PUT", "/bad-input/mp?partNumber=10001&uploadId="+up.ID, "data", nil), 400, "InvalidArgument"},
		{"part number not a number", signed("PUT", "/bad-input/mp?partNumber=x&uploadId="+up.ID, "data", nil), 400, "InvalidArgument"},
		{"upload part, unknown upload", signed("PUT", "/bad-input/mp?partNumber=1&uploadId=nope", "data", nil), 404, "NoSuchUpload"},
		{"copy: bad metadata directive", signed("PUT", "/bad-input/dst", "", map[string]string{"x-amz-copy-source": "bad-input/r", "x-amz-metadata-directive": "MERGE"}), 400, "InvalidArgument"},
		{"copy: source without key", signed("PUT", "/bad-input/dst", "", map[string]string{"x-amz-copy-source": "bad-input"}), 400, "InvalidArgument"},
		{"copy: bad percent-encoding", signed("PUT", "/bad-input/dst", "", map[string]string{"x-amz-copy-source": "bad-input/%zz"}), 400, "InvalidArgument"},
		{"copy: source missing", signed("PUT", "/bad-input/dst", "", map[string]string{"x-amz-copy-source": "bad-input/none"}), 404, "NoSuchKey"},
		{"copy part: bad range", signed("PUT", "/bad-input/mp?partNumber=1&uploadId="+up.ID, "", map[string]string{"x-amz-copy-source": "bad-input/r", "x-amz-copy-source-range": "bytes=5-"}), 400, "InvalidArgument"},
		{"copy part: range past end", signed("PUT", "/bad-input/mp?partNumber=1&uploadId="+up.ID, "", map[string]string{"x-amz-copy-source": "bad-input/r", "x-amz-copy-source-range": "bytes=0-100"}), 400, "InvalidArgument"},
		{"list: negative max-keys", signed("GET", "/bad-input?list-type=2&max-keys=-1", "", nil), 400, "InvalidArgument"},
		{"list: bad continuation token", signed("GET", "/bad-input?list-type=2&continuation-token=%21%21", "", nil), 400, "InvalidArgument"},
		{"list: bad encoding type", signed("GET", "/bad-input?list-type=2&encoding-type=xml", "", nil), 400, "InvalidArgument"},
		{"list parts: bad marker", signed("GET", mp+"&part-number-marker=-3", "", nil), 400, "InvalidArgument"},
		{"unknown sub-resource", signed("PUT", "/bad-input/r?tagging", "<Tagging/>", nil), 501, "NotImplemented"},
		{"unknown bucket sub-resource", signed("GET", "/bad-input?lifecycle", "", nil), 501, "NotImplemented"},
		{"POST form upload", signed("POST", "/bad-input", "x", nil), 501, "NotImplemented"},
		{"method not allowed", signed("PATCH", "/bad-input/r", "x", nil), 405, "MethodNotAllowed"},

		// Ranges that parse but cannot be satisfied.
		{"range past end", signed("GET", "/bad-input/r", "", map[string]string{"Range": "bytes=100-"}), 416, "InvalidRange"},
		{"range empty suffix", signed("GET", "/bad-input/r", "", map[string]string{"Range": "bytes=-0"}), 416, "InvalidRange"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.send()
			got := readErr(t, resp)
			if resp.StatusCode != tc.status || got.Code != tc.code {
				t.Errorf("%d %s (%s), want %d %s", resp.StatusCode, got.Code, got.Message, tc.status, tc.code)
			}
			if tc.code == "InvalidRange" && resp.Header.Get("Content-Range") != "bytes */100" {
				t.Errorf("Content-Range %q, want bytes */100", resp.Header.Get("Content-Range"))
			}
			if b, o, u, p := e.store.stored(); b != b0 || o != o0 || u != u0 || p != p0 {
				t.Errorf("store changed: buckets %d→%d objects %d→%d uploads %d→%d parts %d→%d", b0, b, o0, o, u0, u, p0, p)
			}
			if m, err := e.store.HeadObject(ctx, "bad-input", "r"); err != nil || m.Size != 100 {
				t.Errorf("object r changed: %+v %v", m, err)
			}
		})
	}
}

// TestIgnoredRanges: Range headers that do not parse are ignored (200, whole
// object), as S3 does.
func TestIgnoredRanges(t *testing.T) {
	e := newEnv(t, false, nil)
	must(t, e.store.CreateBucket(context.Background(), "ranges", ""))
	resp := e.do("PUT", "/ranges/r", []byte(strings.Repeat("r", 100)), nil, testSK)
	resp.Body.Close()
	for _, rng := range []string{"bytes=5-2", "bytes=abc", "bytes=0-1,5-6", "items=0-5", "bytes=", "bytes=--5", "bytes=+1-2", "bytes 0-5"} {
		resp := e.do("GET", "/ranges/r", nil, map[string]string{"Range": rng}, testSK)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) != 100 || resp.Header.Get("Content-Range") != "" {
			t.Errorf("Range %q: %d, %d bytes, Content-Range %q; want 200 and the whole object", rng, resp.StatusCode, len(body), resp.Header.Get("Content-Range"))
		}
	}
}

// TestHeadErrorsHaveNoBody: HEAD answers errors with the status alone, and
// every answer carries the request ids.
func TestHeadErrorsHaveNoBody(t *testing.T) {
	e := newEnv(t, false, nil)
	must(t, e.store.CreateBucket(context.Background(), "heads", ""))
	for _, tc := range []struct {
		path   string
		secret string
		status int
	}{
		{"/heads/missing", testSK, 404},
		{"/nobucket/k", testSK, 404},
		{"/heads", "wrong", 403},
		{"/heads/" + strings.Repeat("k", 1025), testSK, 400},
	} {
		resp := e.do("HEAD", tc.path, nil, nil, tc.secret)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || len(body) != 0 || resp.Header.Get("x-amz-request-id") == "" || resp.Header.Get("x-amz-id-2") == "" {
			t.Errorf("HEAD %s: %d with %d body bytes, ids %q %q", clip(tc.path), resp.StatusCode, len(body),
				resp.Header.Get("x-amz-request-id"), resp.Header.Get("x-amz-id-2"))
		}
	}
	resp := e.do("GET", "/heads", nil, nil, testSK)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("x-amz-request-id") == "" {
		t.Errorf("GET bucket: %d, request id %q", resp.StatusCode, resp.Header.Get("x-amz-request-id"))
	}
}

// TestNoCredentials: without credentials the handler refuses everything.
func TestNoCredentials(t *testing.T) {
	e := newEnv(t, false, func(c *Config) { c.Credentials = nil })
	resp := e.do("GET", "/", nil, nil, testSK)
	if got := readErr(t, resp); resp.StatusCode != 403 || got.Code != "AccessDenied" {
		t.Errorf("%d %s", resp.StatusCode, got.Code)
	}
}
