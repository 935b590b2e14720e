package s3auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testRegion = "us-east-1"
	testAK     = "AKIAIOSFODNN7EXAMPLE"
	testSK     = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// testTime is the signing time of most tests.
var testTime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestAuth(now time.Time) *Authenticator {
	return New(Config{
		Region: testRegion,
		Lookup: func(ak string) (string, bool) {
			if ak == testAK {
				return testSK, true
			}
			return "", false
		},
		Now: func() time.Time { return now },
	})
}

// testEscapePath encodes a key the way S3 SDKs do: every byte except
// RFC 3986 unreserved characters and '/' as %XX. Written independently of
// uriEncode on purpose.
func testEscapePath(p string) string {
	var b strings.Builder
	for _, c := range []byte(p) {
		if strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// newClientRequest builds a request to http://s3.test<escapedPath>?<rawQuery>.
func newClientRequest(t *testing.T, method, escapedPath, rawQuery string, body []byte) *http.Request {
	t.Helper()
	u, err := url.Parse("http://s3.test" + escapedPath)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = rawQuery
	r, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		r.Body = http.NoBody
		r.ContentLength = 0
	}
	return r
}

func sdkSigner() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

func creds(ak, sk string) aws.Credentials {
	return aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}
}

// signHeader signs r in its Authorization header with the AWS SDK signer,
// setting x-amz-content-sha256 to payloadHash first.
func signHeader(t *testing.T, r *http.Request, payloadHash, ak, sk, region string, at time.Time) {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := sdkSigner().SignHTTP(context.Background(), creds(ak, sk), r, payloadHash, "s3", region, at); err != nil {
		t.Fatal(err)
	}
}

// toServer serialises a client request and parses it back as a server
// would receive it (RequestURI, Host, Content-Length header as sent).
func toServer(t *testing.T, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return parseServer(t, buf.Bytes())
}

func parseServer(t *testing.T, wire []byte) *http.Request {
	t.Helper()
	sr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
	if err != nil {
		t.Fatalf("parse request: %v\n%s", err, wire)
	}
	return sr
}

// wireOf returns the request as bytes on the wire.
func wireOf(t *testing.T, r *http.Request) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// drain reads b to the end. It returns the bytes and the first error other
// than io.EOF; it fails the test if io.EOF was returned by a Read that
// came after, or together with, data that a later error would reject —
// i.e. it enforces "the error arrives before io.EOF".
func drain(t *testing.T, b io.Reader) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, 1000) // odd size: exercises partial chunk reads
	for {
		n, err := b.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			// After EOF the body must stay at EOF: no late error.
			if n2, err2 := b.Read(buf); n2 != 0 || err2 != io.EOF {
				t.Fatalf("Read after io.EOF = %d, %v", n2, err2)
			}
			return out, nil
		}
		if err != nil {
			// Sticky: the same error again, never io.EOF.
			if _, err2 := b.Read(buf); err2 == io.EOF || err2 == nil {
				t.Fatalf("Read after error %v returned %v", err, err2)
			}
			return out, err
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
