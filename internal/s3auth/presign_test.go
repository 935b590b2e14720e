package s3auth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// presign returns a presigned URL made by the AWS SDK signer, valid for
// expires from at.
func presign(t *testing.T, method, escapedPath, rawQuery string, expires string, region, sk string, at time.Time) (string, http.Header) {
	t.Helper()
	r := newClientRequest(t, method, escapedPath, rawQuery, nil)
	q := r.URL.Query()
	q.Set("X-Amz-Expires", expires)
	r.URL.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	u, hdr, err := sdkSigner().PresignHTTP(context.Background(), creds(testAK, sk), r, unsignedPayload, "s3", region, at)
	if err != nil {
		t.Fatal(err)
	}
	return u, hdr
}

func presignedRequest(t *testing.T, method, rawURL string, hdr http.Header) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k != "Host" {
			r.Header[k] = v
		}
	}
	return toServer(t, r)
}

func TestPresignedSDKOK(t *testing.T) {
	a := newTestAuth(testTime.Add(30 * time.Minute))
	for _, key := range trickyKeys {
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			u, hdr := presign(t, method, "/bucket/"+testEscapePath(key), "response-content-type=text%2Fplain%3B%20x%3Dy", "3600", testRegion, testSK, testTime)
			q, err := a.Authenticate(presignedRequest(t, method, u, hdr))
			if err != nil {
				t.Fatalf("%s key %q url %s: %v", method, key, u, err)
			}
			if q.AccessKey != testAK {
				t.Fatalf("access key %q", q.AccessKey)
			}
		}
	}
}

func TestPresignedTampering(t *testing.T) {
	a := newTestAuth(testTime.Add(time.Minute))
	u, hdr := presign(t, http.MethodGet, "/bucket/k%20ey", "versionId=3", "600", testRegion, testSK, testTime)
	if _, err := a.Authenticate(presignedRequest(t, http.MethodGet, u, hdr)); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	mustReplace := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("%q lacks %q", s, old)
		}
		return strings.Replace(s, old, new, 1)
	}
	cases := []struct {
		name, method, url string
		want              error
	}{
		{"method", http.MethodPut, u, ErrSignatureMismatch},
		{"path", http.MethodGet, mustReplace(u, "k%20ey", "k%20ez"), ErrSignatureMismatch},
		{"query", http.MethodGet, mustReplace(u, "versionId=3", "versionId=4"), ErrSignatureMismatch},
		{"query-added", http.MethodGet, u + "&acl", ErrSignatureMismatch},
		{"expires", http.MethodGet, mustReplace(u, "X-Amz-Expires=600", "X-Amz-Expires=601"), ErrSignatureMismatch},
		{"date", http.MethodGet, mustReplace(u, "X-Amz-Date=20240301T120000Z", "X-Amz-Date=20240301T120001Z"), ErrSignatureMismatch},
		{"signature", http.MethodGet, mustReplace(u, "X-Amz-Signature=", "X-Amz-Signature=0"), ErrMalformedAuth},
		{"no-signature", http.MethodGet, mustReplace(u, "X-Amz-Signature=", "X-Amz-Nope="), ErrMalformedAuth},
		{"algorithm", http.MethodGet, mustReplace(u, "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"), ErrMalformedAuth},
		{"unknown-key", http.MethodGet, mustReplace(u, testAK, "AKIDUNKNOWN"), ErrUnknownAccessKey},
		{"region", http.MethodGet, mustReplace(u, "%2Fus-east-1%2F", "%2Feu-west-1%2F"), ErrRegion},
		{"service", http.MethodGet, mustReplace(u, "%2Fs3%2F", "%2Fs4%2F"), ErrMalformedAuth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Authenticate(presignedRequest(t, c.method, c.url, hdr))
			wantErr(t, err, c.want)
		})
	}

	wrongSecret, _ := presign(t, http.MethodGet, "/bucket/k", "", "600", testRegion, "wrong", testTime)
	_, err := a.Authenticate(presignedRequest(t, http.MethodGet, wrongSecret, hdr))
	wantErr(t, err, ErrSignatureMismatch)
}

func TestPresignedExpiry(t *testing.T) {
	u, hdr := presign(t, http.MethodGet, "/b/k", "", "3600", testRegion, testSK, testTime)
	for _, c := range []struct {
		now  time.Time
		want error
	}{
		{testTime, nil},
		{testTime.Add(3600 * time.Second), nil},
		{testTime.Add(3601 * time.Second), ErrExpired},
		{testTime.Add(-14 * time.Minute), nil},
		{testTime.Add(-16 * time.Minute), ErrSkew}, // signed in the future
	} {
		_, err := newTestAuth(c.now).Authenticate(presignedRequest(t, http.MethodGet, u, hdr))
		if c.want == nil && err != nil || c.want != nil && !errorsIs(err, c.want) {
			t.Errorf("now %v: %v, want %v", c.now, err, c.want)
		}
	}

	// Seven days is the limit; one second more is malformed.
	week, hdr := presign(t, http.MethodGet, "/b/k", "", "604800", testRegion, testSK, testTime)
	if _, err := newTestAuth(testTime.Add(6 * 24 * time.Hour)).Authenticate(presignedRequest(t, http.MethodGet, week, hdr)); err != nil {
		t.Fatalf("7-day URL after 6 days: %v", err)
	}
	if _, err := newTestAuth(testTime.Add(8 * 24 * time.Hour)).Authenticate(presignedRequest(t, http.MethodGet, week, hdr)); !errorsIs(err, ErrExpired) {
		t.Fatalf("7-day URL after 8 days: %v", err)
	}
	tooLong, hdr := presign(t, http.MethodGet, "/b/k", "", "604801", testRegion, testSK, testTime)
	_, err := newTestAuth(testTime).Authenticate(presignedRequest(t, http.MethodGet, tooLong, hdr))
	wantErr(t, err, ErrMalformedAuth)
}

func TestPresignedAndHeaderBoth(t *testing.T) {
	u, hdr := presign(t, http.MethodGet, "/b/k", "", "60", testRegion, testSK, testTime)
	r := presignedRequest(t, http.MethodGet, u, hdr)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
	_, err := newTestAuth(testTime).Authenticate(r)
	wantErr(t, err, ErrMalformedAuth)
}
