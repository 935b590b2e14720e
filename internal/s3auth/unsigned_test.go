package s3auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// attackHeaders are x-amz-* headers that change what a request does; none
// may ride along on a signature that does not cover it.
var attackHeaders = map[string]string{
	"X-Amz-Copy-Source":            "/secret/db.txt",
	"X-Amz-Metadata-Directive":     "REPLACE",
	"X-Amz-Copy-Source-Range":      "bytes=0-9",
	"X-Amz-Meta-Owner":             "mallory",
	"X-Amz-Acl":                    "public-read",
	"X-Amz-Checksum-Crc32":         "AAAAAA==",
	"X-Amz-Sdk-Checksum-Algorithm": "CRC32",
	"X-Amz-Date":                   "20240301T120000Z",
	"X-Amz-Decoded-Content-Length": "5",
	"X-Amz-Trailer":                "x-amz-checksum-crc32",
	"X-Amz-Security-Token":         "token",
}

// An x-amz-* header outside the signed headers fails authentication with
// ErrUnsignedHeaders naming it, in both signature forms, whatever its case.
func TestUnsignedAmzHeaderRefused(t *testing.T) {
	a := newTestAuth(testTime.Add(time.Minute))
	for name, value := range attackHeaders {
		for _, spelling := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			t.Run("presigned/"+spelling, func(t *testing.T) {
				u, hdr := presign(t, http.MethodPut, "/bucket/key", "", "600", testRegion, testSK, testTime)
				r := presignedRequest(t, http.MethodPut, u, hdr)
				r.Header[spelling] = []string{value} // as a server may hold a non-canonical name
				checkUnsigned(t, a, r, strings.ToLower(name))
			})
		}
		t.Run("header/"+name, func(t *testing.T) {
			r := newClientRequest(t, http.MethodPut, "/bucket/key", "", nil)
			signHeader(t, r, emptySHA256, testAK, testSK, testRegion, testTime)
			sr := toServer(t, r)
			if name == "X-Amz-Date" {
				sr.Header.Set(name, "20240301T120000Z") // already signed; add a second value
				sr.Header.Add("X-Amz-Meta-Late", "x")
				checkUnsigned(t, a, sr, "x-amz-meta-late")
				return
			}
			sr.Header.Set(name, value)
			checkUnsigned(t, a, sr, strings.ToLower(name))
		})
	}
}

func checkUnsigned(t *testing.T, a *Authenticator, r *http.Request, want string) {
	t.Helper()
	_, err := a.Authenticate(r)
	var ue *UnsignedHeadersError
	if !errors.Is(err, ErrUnsignedHeaders) || !errors.As(err, &ue) {
		t.Fatalf("error = %v, want ErrUnsignedHeaders", err)
	}
	if !slices.Contains(ue.Names, want) {
		t.Fatalf("names %q lack %q", ue.Names, want)
	}
}

// The same x-amz-* headers are accepted when the signer signed them.
func TestSignedAmzHeadersAccepted(t *testing.T) {
	a := newTestAuth(testTime.Add(time.Minute))
	r := newClientRequest(t, http.MethodPut, "/bucket/key", "", nil)
	for name, value := range attackHeaders {
		if name != "X-Amz-Date" {
			r.Header.Set(name, value)
		}
	}
	r.Header.Set("X-Amz-Security-Token", "token")
	signHeader(t, r, emptySHA256, testAK, testSK, testRegion, testTime)
	if _, err := a.Authenticate(toServer(t, r)); err != nil && !errors.Is(err, ErrInvalidChecksum) {
		// Checksum/trailer headers are judged after the signature; only
		// the signature check matters here.
		t.Fatalf("all x-amz-* signed: %v", err)
	}

	pr := newClientRequest(t, http.MethodPut, "/bucket/key", "X-Amz-Expires=600", nil)
	pr.Header.Set("X-Amz-Meta-Owner", "alice")
	pr.Header.Set("X-Amz-Copy-Source", "/b/src")
	u, hdr, err := sdkSigner().PresignHTTP(context.Background(), creds(testAK, testSK), pr, unsignedPayload, "s3", testRegion, testTime)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "x-amz-meta-owner") {
		t.Fatalf("presigner did not sign the metadata header: %s", u)
	}
	if _, err := a.Authenticate(presignedRequest(t, http.MethodPut, u, hdr)); err != nil {
		t.Fatalf("presigned with signed x-amz-* headers: %v", err)
	}
}

// S3's exception: x-amz-content-sha256 may be absent from the signed
// headers. It is safe because its value is the payload line of the
// canonical request: a value other than the one signed fails the signature.
func TestUnsignedContentSHA256Exception(t *testing.T) {
	a := newTestAuth(testTime.Add(time.Minute))

	t.Run("presigned", func(t *testing.T) {
		u, hdr := presign(t, http.MethodPut, "/bucket/key", "", "600", testRegion, testSK, testTime)
		r := presignedRequest(t, http.MethodPut, u, hdr)
		r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		if _, err := a.Authenticate(r); err != nil {
			t.Fatalf("presigned with unsigned x-amz-content-sha256 %s: %v", unsignedPayload, err)
		}
		// Another value changes the canonical request.
		r.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailer)
		_, err := a.Authenticate(r)
		wantErr(t, err, ErrSignatureMismatch)
	})

	t.Run("header", func(t *testing.T) {
		r := newClientRequest(t, http.MethodGet, "/bucket/key", "", nil)
		// Sign without the header in the request, then add it: it is not
		// in SignedHeaders but its value is the signed payload hash.
		if err := sdkSigner().SignHTTP(context.Background(), creds(testAK, testSK), r, emptySHA256, "s3", testRegion, testTime); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Header.Get("Authorization"), "x-amz-content-sha256") {
			t.Fatalf("test setup: header was signed: %s", r.Header.Get("Authorization"))
		}
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		if _, err := a.Authenticate(toServer(t, r)); err != nil {
			t.Fatalf("header auth with unsigned x-amz-content-sha256: %v", err)
		}
		r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		_, err := a.Authenticate(toServer(t, r))
		wantErr(t, err, ErrSignatureMismatch)
	})
}

// X-Amzn-Trace-Id shares "x-amz" but not the "x-amz-" prefix: the AWS
// signers deliberately leave it unsigned (load balancers and X-Ray add it in
// flight), and S3 accepts it so.
func TestUnsignedTraceIDAccepted(t *testing.T) {
	a := newTestAuth(testTime.Add(time.Minute))
	u, hdr := presign(t, http.MethodPut, "/bucket/key", "", "600", testRegion, testSK, testTime)
	r := presignedRequest(t, http.MethodPut, u, hdr)
	r.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")
	if _, err := a.Authenticate(r); err != nil {
		t.Fatalf("presigned with unsigned X-Amzn-Trace-Id: %v", err)
	}
	cr := newClientRequest(t, http.MethodGet, "/bucket/key", "", nil)
	signHeader(t, cr, emptySHA256, testAK, testSK, testRegion, testTime)
	sr := toServer(t, cr)
	sr.Header.Set("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")
	if _, err := a.Authenticate(sr); err != nil {
		t.Fatalf("header auth with unsigned X-Amzn-Trace-Id: %v", err)
	}
}

// Headers outside the x-amz- prefix are covered only when listed, as in
// S3: a presigned URL signs only host, and the browser or curl that uses it
// adds User-Agent, Expect, Content-Type and the like.
func TestUnsignedStandardHeadersAccepted(t *testing.T) {
	a := newTestAuth(testTime.Add(time.Minute))
	u, hdr := presign(t, http.MethodPut, "/bucket/key", "", "600", testRegion, testSK, testTime)
	r := presignedRequest(t, http.MethodPut, u, hdr)
	r.Header.Set("User-Agent", "curl/8")
	r.Header.Set("Expect", "100-continue")
	r.Header.Set("Content-Type", "text/plain")
	r.Header.Set("Cache-Control", "no-cache")
	r.Header.Set("X-Amz", "not the prefix")
	r.Header.Set("X-Amzmeta", "not the prefix")
	if _, err := a.Authenticate(r); err != nil {
		t.Fatalf("presigned with non-x-amz-* headers: %v", err)
	}
}

func TestUnsignedHeadersList(t *testing.T) {
	h := http.Header{
		"X-Amz-Meta-B":         {"1"},
		"x-amz-meta-b":         {"2"}, // same name, non-canonical key
		"X-Amz-Meta-A":         {"1"},
		"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"},
		"X-Amz-Date":           {"d"},
		"Host":                 {"h"},
	}
	got := unsignedHeaders(h, []string{"host", "x-amz-date"})
	if want := []string{"x-amz-meta-a", "x-amz-meta-b"}; !slices.Equal(got, want) {
		t.Fatalf("unsignedHeaders = %q, want %q", got, want)
	}
}
