package s3auth

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"testing"
)

// Known answers: the CRC catalogue check values for "123456789", FIPS
// 180 "abc" digests, and the aws-sdk-go-v2 checksum test vectors for
// "hello world".
func TestChecksumVectors(t *testing.T) {
	for _, c := range []struct{ alg, in, hexWant, b64Want string }{
		{"CRC32", "123456789", "cbf43926", ""},
		{"CRC32C", "123456789", "e3069283", ""},
		{"CRC64NVME", "123456789", "ae8b14860a799888", ""},
		{"SHA1", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d", ""},
		{"SHA256", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ""},
		{"CRC32", "hello world", "", "DUoRhQ=="},
		{"crc32c", "hello world", "", "yZRlqg=="},
		{"CRC64NVME", "hello world", "", "jSnVw/bqjr4="},
		{"SHA1", "hello world", "", "Kq5sNclPz7QV2+lfQIuc6R7oRu0="},
		{"SHA256", "hello world", "", "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="},
	} {
		h, ok := NewChecksum(c.alg)
		if !ok {
			t.Fatalf("%s unknown", c.alg)
		}
		h.Write([]byte(c.in))
		sum := h.Sum(nil)
		if c.hexWant != "" && hex.EncodeToString(sum) != c.hexWant {
			t.Errorf("%s(%q) = %x, want %s", c.alg, c.in, sum, c.hexWant)
		}
		if c.b64Want != "" && base64.StdEncoding.EncodeToString(sum) != c.b64Want {
			t.Errorf("%s(%q) = %s, want %s", c.alg, c.in, base64.StdEncoding.EncodeToString(sum), c.b64Want)
		}
	}
	if _, ok := NewChecksum("MD5"); ok {
		t.Error("MD5 is not an x-amz-checksum algorithm")
	}
}

func b64(alg string, data []byte) string {
	h, _ := NewChecksum(alg)
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func TestHeaderChecksumsAndMD5(t *testing.T) {
	a := newTestAuth(testTime)
	body := testData(5000)
	m := md5.Sum(body)
	goodMD5 := base64.StdEncoding.EncodeToString(m[:])
	other := []byte("not the body")
	type tc struct {
		name    string
		payload string
		hdr     map[string]string
		authErr error // from Authenticate
		readErr error // from the final Read
	}
	cases := []tc{
		{"md5-ok", unsignedPayload, map[string]string{"Content-Md5": goodMD5}, nil, nil},
		{"md5-bad", unsignedPayload, map[string]string{"Content-Md5": b64("SHA1", other)[:22] + "=="}, nil, ErrBadDigest},
		{"md5-invalid", unsignedPayload, map[string]string{"Content-Md5": "bm90IGFuIG1kNQ=="}, ErrInvalidDigest, nil},
		{"md5-not-base64", sha256Hex(body), map[string]string{"Content-Md5": "!!!"}, ErrInvalidDigest, nil},
		{"sdk-alg-only", unsignedPayload, map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC64NVME"}, nil, nil},
		{"sdk-alg-unknown", unsignedPayload, map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "MD4"}, ErrInvalidChecksum, nil},
		{"two-checksums", unsignedPayload, map[string]string{"X-Amz-Checksum-Crc32": b64("CRC32", body), "X-Amz-Checksum-Sha1": b64("SHA1", body)}, ErrInvalidChecksum, nil},
		{"bad-length", unsignedPayload, map[string]string{"X-Amz-Checksum-Crc32": b64("SHA1", body)}, ErrInvalidChecksum, nil},
		{"md5-and-sha-ok", sha256Hex(body), map[string]string{"Content-Md5": goodMD5, "X-Amz-Checksum-Sha256": b64("SHA256", body)}, nil, nil},
	}
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"} {
		h := "X-Amz-Checksum-" + alg
		cases = append(cases,
			tc{"ok-" + alg, unsignedPayload, map[string]string{h: b64(alg, body), "X-Amz-Sdk-Checksum-Algorithm": alg}, nil, nil},
			tc{"bad-" + alg, unsignedPayload, map[string]string{h: b64(alg, other)}, nil, ErrChecksumMismatch},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newClientRequest(t, http.MethodPut, "/b/k", "", body)
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			signHeader(t, r, c.payload, testAK, testSK, testRegion, testTime)
			q, err := a.Authenticate(toServer(t, r))
			if c.authErr != nil {
				wantErr(t, err, c.authErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := drain(t, q.Body)
			if c.readErr != nil {
				wantErr(t, err, c.readErr)
				if q.Checksums() != nil {
					t.Fatal("Checksums after a failed body")
				}
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("body %d bytes, %v", len(got), err)
			}
			sums := q.Checksums()
			for k, v := range c.hdr {
				if alg := algFromHeader(k); alg != nil && sums[alg.name] != v {
					t.Fatalf("Checksums %v lacks %s=%s", sums, alg.name, v)
				}
				if k == "X-Amz-Sdk-Checksum-Algorithm" {
					if sums[v] != b64(v, body) {
						t.Fatalf("Checksums %v: computed %s wrong", sums, v)
					}
				}
				if k == "Content-Md5" && !bytes.Equal(q.MD5, m[:]) && c.authErr == nil && c.readErr == nil {
					t.Fatalf("MD5 %x", q.MD5)
				}
			}
		})
	}
}

// A plain body shorter than its Content-Length is ErrIncompleteBody.
func TestPlainBodyCut(t *testing.T) {
	body := testData(3000)
	r := newClientRequest(t, http.MethodPut, "/b/k", "", body)
	signHeader(t, r, unsignedPayload, testAK, testSK, testRegion, testTime)
	wire := wireOf(t, r)
	q, err := newTestAuth(testTime).Authenticate(parseServer(t, wire[:len(wire)-10]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = drain(t, q.Body)
	wantErr(t, err, ErrIncompleteBody)
}

// TestCallerChecksMD5: once the caller takes the Content-MD5 check over, a
// body whose MD5 differs reads to its end (the caller compares q.MD5 with
// its own hash), and the other checks still run.
func TestCallerChecksMD5(t *testing.T) {
	a := newTestAuth(testTime)
	body := testData(5000)
	wrong := md5.Sum([]byte("not the body"))
	for _, c := range []struct {
		name    string
		sumHdr  string // an x-amz-checksum-crc32 value, or ""
		readErr error
	}{
		{"md5-left-to-caller", "", nil},
		{"crc-still-checked", b64("CRC32", []byte("other")), ErrChecksumMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newClientRequest(t, http.MethodPut, "/b/k", "", body)
			r.Header.Set("Content-Md5", base64.StdEncoding.EncodeToString(wrong[:]))
			if c.sumHdr != "" {
				r.Header.Set("X-Amz-Checksum-Crc32", c.sumHdr)
			}
			signHeader(t, r, unsignedPayload, testAK, testSK, testRegion, testTime)
			q, err := a.Authenticate(toServer(t, r))
			if err != nil {
				t.Fatal(err)
			}
			q.CallerChecksMD5()
			got, err := drain(t, q.Body)
			if c.readErr != nil {
				wantErr(t, err, c.readErr)
				return
			}
			if err != nil || !bytes.Equal(got, body) || !bytes.Equal(q.MD5, wrong[:]) {
				t.Fatalf("body %d bytes, %v; MD5 %x", len(got), err, q.MD5)
			}
		})
	}
}
