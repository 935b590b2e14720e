package s3auth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024")
	f.Add("AWS4-HMAC-SHA256 Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024,Credential=A/20130524/r/s3/aws4_request,SignedHeaders=host")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=;, Signature=")
	f.Add("AWS AKID:c2ln")
	f.Add("AWS4-ECDSA-P256-SHA256 Credential=x")
	f.Add("AWS4-HMAC-SHA256")
	f.Add("AWS4-HMAC-SHA256 ,,,==")
	f.Fuzz(func(t *testing.T, v string) {
		z, err := parseAuthorization(v)
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if len(z.signature) != 64 || z.accessKey == "" || len(z.date) != 8 || len(z.signedHeaders) == 0 {
			t.Fatalf("accepted %q as %+v", v, z)
		}
		if strings.Contains(z.accessKey, "/") || z.region == "" || z.service == "" {
			t.Fatalf("accepted %q as %+v", v, z)
		}
		for _, h := range z.signedHeaders {
			if h == "" || h != strings.ToLower(h) {
				t.Fatalf("signed header %q from %q", h, v)
			}
		}
	})
}

func FuzzCanonicalQuery(f *testing.F) {
	f.Add("")
	f.Add("uploads")
	f.Add("b=2&a=1&a=0&X-Amz-Signature=abc")
	f.Add("prefix=a+b%20c&delimiter=%2F&k=%7e~")
	f.Add("%zz=1")
	f.Add("&&=&a==b")
	f.Add("k=%E2%82%AC&k=%C3%A9")
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := canonicalQuery(raw, "X-Amz-Signature")
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		// Canonical form is a fixed point: decoding and re-encoding it
		// changes nothing (it holds no '+', only %20).
		again, err := canonicalQuery(out, "X-Amz-Signature")
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", raw, out, again, err)
		}
		if out == "" {
			return
		}
		pairs := strings.Split(out, "&")
		if !slices.IsSortedFunc(pairs, func(a, b string) int {
			ak, av, _ := strings.Cut(a, "=")
			bk, bv, _ := strings.Cut(b, "=")
			if c := strings.Compare(ak, bk); c != 0 {
				return c
			}
			return strings.Compare(av, bv)
		}) {
			t.Fatalf("not sorted: %q", out)
		}
		for _, p := range pairs {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "X-Amz-Signature" {
				t.Fatalf("pair %q in %q", p, out)
			}
			for _, s := range []string{k, v} {
				for i := 0; i < len(s); i++ {
					if c := s[i]; !isUnreserved(c) && c != '%' {
						t.Fatalf("unencoded %q in %q", c, out)
					}
				}
				if _, err := url.PathUnescape(s); err != nil {
					t.Fatalf("bad escape in %q", out)
				}
			}
		}
	})
}

// FuzzChunkedDecoder feeds arbitrary bytes to the decoder, signed (with a
// fixed key) and unsigned: it must not panic, must never return more bytes
// than it was given, and must end in io.EOF or an error wrapping one of the
// body sentinels.
func FuzzChunkedDecoder(f *testing.F) {
	key := tSigningKey(testSK, "20240301", testRegion)
	sig := &signed{key: key, amzDate: "20240301T120000Z", scope: "20240301/us-east-1/s3/aws4_request", seed: strings.Repeat("a", 64)}
	valid := (&tChunkSigner{key: key, amzDate: sig.amzDate, scope: sig.scope, prev: sig.seed}).body([]byte("hello world, hello chunks"), 7)
	validTrailer := (&tChunkSigner{key: key, amzDate: sig.amzDate, scope: sig.scope, prev: sig.seed,
		trailerName: "x-amz-checksum-crc32", trailerVal: "DUoRhQ=="}).body([]byte("hello world"), 4)
	unsigned := (&tChunkSigner{unsigned: true, trailerName: "x-amz-checksum-crc32", trailerVal: "DUoRhQ=="}).body([]byte("hello world"), 5)
	for _, mode := range []byte{0, 1, 2} {
		f.Add(mode, valid)
		f.Add(mode, validTrailer)
		f.Add(mode, unsigned)
		f.Add(mode, []byte("0\r\n\r\n"))
		f.Add(mode, []byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\n\r\n\r\n")) // minio-go line ends
		f.Add(mode, []byte("fffffffffffffff\r\nab\r\n"))
		f.Add(mode, []byte("3;chunk-signature=zz\r\nabc\r\n0\r\n\r\n"))
	}
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		var c *chunkReader
		switch mode % 3 {
		case 0: // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
			c = newChunkReader(bytes.NewReader(in), sig, false, nil, -1)
		case 1: // …-TRAILER
			c = newChunkReader(bytes.NewReader(in), sig, true, []string{"x-amz-checksum-crc32"}, 1<<20)
		default: // STREAMING-UNSIGNED-PAYLOAD-TRAILER
			c = newChunkReader(bytes.NewReader(in), nil, true, []string{"x-amz-checksum-crc32"}, -1)
		}
		v := &verifier{src: c, chunks: c, want: -1}
		if mode%3 != 0 {
			v.sums = []*sumState{{alg: findAlg("CRC32"), h: findAlg("CRC32").new()}}
		}
		out, err := io.ReadAll(v)
		if len(out) > len(in) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(in))
		}
		if err == nil {
			return
		}
		for _, s := range []error{ErrMalformedChunk, ErrIncompleteBody, ErrSignatureMismatch, ErrChecksumMismatch, ErrInvalidChecksum} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error %v wraps no sentinel", err)
	})
}

// FuzzSignedHeaderCheck adds one header (any name, any value, as a server's
// header map may hold it) to a correctly signed request — header auth or a
// presigned URL — and checks the signed-header rule: authentication fails
// with ErrUnsignedHeaders exactly when the request then carries an x-amz-*
// header (any case) that the signature does not list, other than
// x-amz-content-sha256; and a request that authenticates carries no such
// header.
func FuzzSignedHeaderCheck(f *testing.F) {
	f.Add("X-Amz-Copy-Source", "/secret/db.txt", true)
	f.Add("x-amz-meta-a", "1", false)
	f.Add("X-AMZ-METADATA-DIRECTIVE", "REPLACE", true)
	f.Add("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD", true)
	f.Add("X-Amz-Date", "20240301T120000Z", false)
	f.Add("X-Amzn-Trace-Id", "Root=1", true)
	f.Add("x-amz-", "", false)
	f.Add("Content-Type", "text/plain", true)
	f.Fuzz(func(t *testing.T, name, value string, presigned bool) {
		a := newTestAuth(testTime.Add(time.Minute))
		var r *http.Request
		var signed []string
		if presigned {
			u, hdr := presign(t, http.MethodPut, "/bucket/key", "", "600", testRegion, testSK, testTime)
			r = presignedRequest(t, http.MethodPut, u, hdr)
			signed = []string{"host"}
		} else {
			cr := newClientRequest(t, http.MethodGet, "/bucket/key", "", nil)
			signHeader(t, cr, emptySHA256, testAK, testSK, testRegion, testTime)
			r = toServer(t, cr)
			signed = []string{"host", "x-amz-content-sha256", "x-amz-date"}
		}
		r.Header[name] = append(r.Header[name], value)
		lower := strings.ToLower(name)
		wantUnsigned := strings.HasPrefix(lower, "x-amz-") && lower != "x-amz-content-sha256" && !slices.Contains(signed, lower)
		_, err := a.Authenticate(r)
		if got := errors.Is(err, ErrUnsignedHeaders); got != wantUnsigned {
			t.Fatalf("header %q: %q: error %v, want unsigned-header error %v", name, value, err, wantUnsigned)
		}
		if err == nil {
			for k := range r.Header {
				lk := strings.ToLower(k)
				if strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-content-sha256" && !slices.Contains(signed, lk) {
					t.Fatalf("authenticated with unsigned %q", k)
				}
			}
		}
	})
}
