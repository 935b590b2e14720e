package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/shale-store/shale/object"
)

const (
	testAK     = "AKIAEXAMPLESHALE01"
	testSK     = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

type testEnv struct {
	t     testing.TB
	srv   *httptest.Server
	store *fakeStore

	mu       sync.Mutex
	payloads map[string]int // x-amz-content-sha256 forms seen (hashes as "sha256")
}

// sawPayload reports whether a request with payload form p arrived.
func (e *testEnv) sawPayload(p string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.payloads[p] > 0
}

// newEnv starts the handler over httptest (TLS when tls) with the fake store;
// mut may adjust the Config.
func newEnv(t testing.TB, tls bool, mut func(*Config)) *testEnv {
	t.Helper()
	store := newFakeStore()
	cfg := Config{Credentials: map[string]string{testAK: testSK}}
	if mut != nil {
		mut(&cfg)
	}
	e := &testEnv{t: t, store: store, payloads: map[string]int{}}
	api := New(cfg, store)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.Header.Get("X-Amz-Content-Sha256")
		if len(p) == 64 && !strings.HasPrefix(p, "STREAMING") {
			p = "sha256"
		}
		e.mu.Lock()
		e.payloads[p]++
		e.mu.Unlock()
		api.ServeHTTP(w, r)
	})
	if tls {
		e.srv = httptest.NewTLSServer(h)
	} else {
		e.srv = httptest.NewServer(h)
	}
	t.Cleanup(e.srv.Close)
	return e
}

func (e *testEnv) aws() *s3.Client {
	return s3.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: awscreds.NewStaticCredentialsProvider(testAK, testSK, ""),
		HTTPClient:  e.srv.Client(),
		// What config.LoadDefaultConfig resolves by default: CRC32 on every
		// upload, validated on download.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(e.srv.URL)
		o.UsePathStyle = true
		o.Retryer = aws.NopRetryer{}
	})
}

func (e *testEnv) minio() *minio.Client {
	e.t.Helper()
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:     mcreds.NewStaticV4(testAK, testSK, ""),
		Secure:    u.Scheme == "https",
		Region:    testRegion,
		Transport: e.srv.Client().Transport,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// signer signs raw test requests the way S3 clients do (no double escaping).
func signer() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// do sends a raw request signed with secret (SigV4 header auth, signed
// payload unless hdr sets X-Amz-Content-Sha256).
func (e *testEnv) do(method, path string, body []byte, hdr map[string]string, secret string) *http.Response {
	e.t.Helper()
	resp, err := e.srv.Client().Do(e.request(method, path, body, hdr, secret))
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// request builds the signed request that do sends.
func (e *testEnv) request(method, path string, body []byte, hdr map[string]string, secret string) *http.Request {
	e.t.Helper()
	return e.requestAs(aws.Credentials{AccessKeyID: testAK, SecretAccessKey: secret}, testRegion, time.Now(), method, path, body, hdr)
}

// requestAs builds a request signed with creds for region at time at.
func (e *testEnv) requestAs(creds aws.Credentials, region string, at time.Time, method, path string, body []byte, hdr map[string]string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	payload := req.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", payload)
	}
	err = signer().SignHTTP(context.Background(), creds, req, payload, "s3", region, at)
	if err != nil {
		e.t.Fatal(err)
	}
	return req
}

// s3err is a decoded S3 error document.
type s3err struct {
	Code, Message, Resource, RequestId string
}

// readErr reads resp's body as an S3 error document and checks the
// request-id headers and that the body's RequestId matches.
func readErr(t testing.TB, resp *http.Response) s3err {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e s3err
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatalf("status %d: body is not an S3 error: %v: %q", resp.StatusCode, err, b)
	}
	if id := resp.Header.Get("x-amz-request-id"); id == "" || id != e.RequestId {
		t.Errorf("x-amz-request-id %q, body RequestId %q", id, e.RequestId)
	}
	if resp.Header.Get("x-amz-id-2") == "" {
		t.Error("no x-amz-id-2")
	}
	return e
}

// code returns the S3 error code of an SDK error.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	var me minio.ErrorResponse
	if errors.As(err, &me) {
		return me.Code
	}
	if err == nil {
		return ""
	}
	return "?" + err.Error()
}

func wantCode(t testing.TB, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error code %q, want %q (err %v)", got, want, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pattern returns n bytes of a non-repeating-looking pattern.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func staticCreds() aws.CredentialsProvider {
	return awscreds.NewStaticCredentialsProvider(testAK, testSK, "")
}

func errUnreadableForTest() error { return object.ErrUnreadable }

func testUpload(bucket, key string) object.Upload { return object.Upload{Bucket: bucket, Key: key} }
