package s3auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Keys that stress the canonical URI: spaces, '+', '%', unicode, '=',
// '~', empty and dot segments.
var trickyKeys = []string{
	"plain.txt",
	"a b/c d",
	"a+b",
	"100%",
	"ключ/ü/日本",
	"x=y&z",
	"~tilde~",
	"dir//x/./../y",
	"!$'()*,;:@",
}

func TestHeaderAuthSDKSignedOK(t *testing.T) {
	a := newTestAuth(testTime)
	body := []byte("hello, shale")
	for _, key := range trickyKeys {
		for _, q := range []string{"", "uploads", "partNumber=3&uploadId=a%2Bb%3D%3D", "list-type=2&prefix=a%20b&delimiter=%2F&x=%7E"} {
			r := newClientRequest(t, http.MethodPut, "/bucket/"+testEscapePath(key), q, body)
			r.Header.Set("Content-Type", "text/plain")
			r.Header.Set("X-Amz-Meta-Note", "  two   spaces  ")
			signHeader(t, r, sha256Hex(body), testAK, testSK, testRegion, testTime)
			sr := toServer(t, r)
			q2, err := a.Authenticate(sr)
			if err != nil {
				t.Fatalf("key %q query %q: %v", key, q, err)
			}
			got, err := drain(t, q2.Body)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("key %q: body %q, %v", key, got, err)
			}
			if q2.AccessKey != testAK || q2.Size != int64(len(body)) {
				t.Fatalf("key %q: %+v", key, q2)
			}
			// The same request authenticated in process (no RequestURI).
			if _, err := a.Authenticate(r); err != nil {
				t.Fatalf("in-process key %q: %v", key, err)
			}
		}
	}
}

// A client that signs the path exactly as sent, with '=' and '@' left
// unencoded (Go's default path encoding), is accepted too.
func TestHeaderAuthWirePathForm(t *testing.T) {
	a := newTestAuth(testTime)
	r := newClientRequest(t, http.MethodGet, "/bucket/x=y@z", "", nil)
	if got := r.URL.EscapedPath(); got != "/bucket/x=y@z" {
		t.Fatalf("escaped path %q", got)
	}
	signHeader(t, r, emptySHA256, testAK, testSK, testRegion, testTime)
	if _, err := a.Authenticate(toServer(t, r)); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderAuthTampering(t *testing.T) {
	a := newTestAuth(testTime)
	body := []byte("payload bytes")
	sign := func(region, ak, sk string) []byte {
		r := newClientRequest(t, http.MethodPut, "/bucket/a%20b", "partNumber=1&uploadId=xyz", body)
		r.Header.Set("X-Amz-Meta-Color", "blue")
		signHeader(t, r, sha256Hex(body), ak, sk, region, testTime)
		return wireOf(t, r)
	}
	good := sign(testRegion, testAK, testSK)
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("wire lacks %q:\n%s", old, good)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name string
		wire []byte
		want error
	}{
		{"method", replace("PUT ", "POST "), ErrSignatureMismatch},
		{"path", replace("/bucket/a%20b", "/bucket/a%20c"), ErrSignatureMismatch},
		{"path-plus", replace("/bucket/a%20b", "/bucket/a+b"), ErrSignatureMismatch},
		{"query", replace("partNumber=1", "partNumber=2"), ErrSignatureMismatch},
		{"query-added", replace("uploadId=xyz", "uploadId=xyz&acl"), ErrSignatureMismatch},
		{"header", replace("X-Amz-Meta-Color: blue", "X-Amz-Meta-Color: red"), ErrSignatureMismatch},
		{"host", replace("Host: s3.test", "Host: s4.test"), ErrSignatureMismatch},
		{"payload-hash", replace(sha256Hex(body), sha256Hex([]byte("other"))), ErrSignatureMismatch},
		{"date", replace("X-Amz-Date: 20240301T120000Z", "X-Amz-Date: 20240301T120100Z"), ErrSignatureMismatch},
		{"region", sign("eu-west-1", testAK, testSK), ErrRegion},
		{"wrong-secret", sign(testRegion, testAK, "not-the-secret"), ErrSignatureMismatch},
		{"unknown-key", sign(testRegion, "AKIDUNKNOWN", testSK), ErrUnknownAccessKey},
		{"no-auth", replace("Authorization:", "X-Not-Authorization:"), ErrMissingAuth},
		{"sigv2", replace("Authorization: AWS4-HMAC-SHA256", "Authorization: AWS AKID:sig X"), ErrUnsupported},
		{"date-header-unparsable", replace("X-Amz-Date: 20240301T120000Z", "X-Amz-Date: yesterday"), ErrMalformedAuth},
	}
	if _, err := a.Authenticate(parseServer(t, good)); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Authenticate(parseServer(t, c.wire))
			wantErr(t, err, c.want)
		})
	}
}

// Tampering with the body alone passes authentication but fails on the
// final Read, before io.EOF.
func TestHeaderAuthPayloadMismatch(t *testing.T) {
	a := newTestAuth(testTime)
	body := []byte(strings.Repeat("0123456789", 500))
	r := newClientRequest(t, http.MethodPut, "/b/k", "", body)
	signHeader(t, r, sha256Hex(body), testAK, testSK, testRegion, testTime)
	wire := wireOf(t, r)
	wire[len(wire)-1] ^= 1
	q, err := a.Authenticate(parseServer(t, wire))
	if err != nil {
		t.Fatal(err)
	}
	got, err := drain(t, q.Body)
	wantErr(t, err, ErrContentSHA256Mismatch)
	if len(got) != len(body) {
		t.Fatalf("delivered %d bytes", len(got))
	}
}

func TestHeaderAuthUnsignedPayloadAndEmpty(t *testing.T) {
	a := newTestAuth(testTime)
	r := newClientRequest(t, http.MethodPut, "/b/k", "", []byte("abc"))
	signHeader(t, r, unsignedPayload, testAK, testSK, testRegion, testTime)
	q, err := a.Authenticate(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := drain(t, q.Body); err != nil || string(got) != "abc" {
		t.Fatalf("%q %v", got, err)
	}

	g := newClientRequest(t, http.MethodGet, "/b", "list-type=2", nil)
	signHeader(t, g, emptySHA256, testAK, testSK, testRegion, testTime)
	q, err = a.Authenticate(toServer(t, g))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := drain(t, q.Body); err != nil || len(got) != 0 || q.Size != 0 {
		t.Fatalf("%q %v size %d", got, err, q.Size)
	}
}

func TestHeaderAuthSkew(t *testing.T) {
	for _, c := range []struct {
		offset time.Duration
		want   error
	}{
		{14 * time.Minute, nil},
		{-14 * time.Minute, nil},
		{16 * time.Minute, ErrSkew},
		{-16 * time.Minute, ErrSkew},
	} {
		a := newTestAuth(testTime.Add(c.offset))
		r := newClientRequest(t, http.MethodGet, "/b/k", "", nil)
		signHeader(t, r, emptySHA256, testAK, testSK, testRegion, testTime)
		_, err := a.Authenticate(toServer(t, r))
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("offset %v: %v, want %v", c.offset, err, c.want)
		}
	}
}

// The Date header may stand in for X-Amz-Date (the SDK always sets
// X-Amz-Date, so this request is signed by hand).
func TestHeaderAuthDateHeader(t *testing.T) {
	a := newTestAuth(testTime)
	const date = "Fri, 01 Mar 2024 12:00:00 GMT"
	creq := "GET\n/b/k%20%2B\nx=1\ndate:" + date + "\nhost:s3.test\nx-amz-content-sha256:" + emptySHA256 +
		"\n\ndate;host;x-amz-content-sha256\n" + emptySHA256
	sts := "AWS4-HMAC-SHA256\n20240301T120000Z\n20240301/us-east-1/s3/aws4_request\n" + sha256Hex([]byte(creq))
	sig := hex.EncodeToString(tHMAC(tSigningKey(testSK, "20240301", testRegion), sts))
	wire := "GET /b/k%20+?x=1 HTTP/1.1\r\nHost: s3.test\r\nDate: " + date + "\r\nX-Amz-Content-Sha256: " + emptySHA256 +
		"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + testAK + "/20240301/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256,Signature=" + sig + "\r\n\r\n"
	if _, err := a.Authenticate(parseServer(t, []byte(wire))); err != nil {
		t.Fatal(err)
	}
	// The same request one second later no longer matches.
	_, err := a.Authenticate(parseServer(t, []byte(strings.Replace(wire, "12:00:00", "12:00:01", 1))))
	wantErr(t, err, ErrSignatureMismatch)
}

func TestHeaderAuthMissingContentSHA(t *testing.T) {
	a := newTestAuth(testTime)
	r := newClientRequest(t, http.MethodGet, "/b/k", "", nil)
	if err := sdkSigner().SignHTTP(context.Background(), creds(testAK, testSK), r, emptySHA256, "s3", testRegion, testTime); err != nil {
		t.Fatal(err)
	}
	_, err := a.Authenticate(toServer(t, r))
	wantErr(t, err, ErrMalformedAuth)
}
