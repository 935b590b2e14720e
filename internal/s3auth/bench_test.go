package s3auth

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// benchBody authenticates one request per iteration and reads its body.
func benchBody(b *testing.B, build func() *http.Request, size int) {
	a := newTestAuth(testTime)
	r := build()
	wire := wireOf(&testing.T{}, r)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		sr := parseServer(&testing.T{}, wire)
		q, err := a.Authenticate(sr)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, q.Body); err != nil || n != int64(size) {
			b.Fatal(n, err)
		}
	}
}

const benchSize = 8 << 20

func BenchmarkSignedSingleChunk(b *testing.B) {
	data := testData(benchSize)
	benchBody(b, func() *http.Request {
		r := newClientRequest(&testing.T{}, http.MethodPut, "/b/k", "", data)
		signHeader(&testing.T{}, r, sha256Hex(data), testAK, testSK, testRegion, testTime)
		return r
	}, benchSize)
}

func BenchmarkStreamingSigned64KiB(b *testing.B) {
	data := testData(benchSize)
	benchBody(b, func() *http.Request {
		return chunkedCase{payload: streamingPayload, data: data, chunkSize: 64 << 10, decodedLen: -1}.request(&testing.T{})
	}, benchSize)
}

func BenchmarkStreamingUnsignedTrailer(b *testing.B) {
	for _, alg := range []string{"CRC32", "CRC32C", "CRC64NVME", "SHA256"} {
		b.Run(alg, func(b *testing.B) {
			data := testData(benchSize)
			benchBody(b, func() *http.Request {
				return chunkedCase{payload: streamingUnsignedTrailer, data: data, chunkSize: 64 << 10, trailerAlg: alg, decodedLen: -1}.request(&testing.T{})
			}, benchSize)
		})
	}
}

func BenchmarkHeaderAuthOnly(b *testing.B) {
	a := newTestAuth(testTime)
	r := newClientRequest(&testing.T{}, http.MethodGet, "/bucket/some/key%20name", "list-type=2&prefix=a", nil)
	signHeader(&testing.T{}, r, emptySHA256, testAK, testSK, testRegion, testTime)
	wire := wireOf(&testing.T{}, r)
	sr := parseServer(&testing.T{}, wire)
	for b.Loop() {
		if _, err := a.Authenticate(sr); err != nil {
			b.Fatal(err)
		}
	}
	_ = bytes.MinRead
}

// BenchmarkUnsignedHeaderCheck is the signed-header rule on the headers of
// a typical SDK PUT (all signed).
func BenchmarkUnsignedHeaderCheck(b *testing.B) {
	h := http.Header{
		"Authorization":                {"AWS4-HMAC-SHA256 …"},
		"Content-Length":               {"1048576"},
		"Content-Type":                 {"application/octet-stream"},
		"User-Agent":                   {"aws-sdk-go-v2/1.30"},
		"X-Amz-Content-Sha256":         {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		"X-Amz-Date":                   {"20240301T120000Z"},
		"X-Amz-Decoded-Content-Length": {"1048576"},
		"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"},
		"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
		"X-Amz-Meta-Owner":             {"alice"},
		"Amz-Sdk-Request":              {"attempt=1; max=3"},
	}
	signed := []string{"amz-sdk-request", "content-length", "content-type", "host", "x-amz-content-sha256", "x-amz-date",
		"x-amz-decoded-content-length", "x-amz-meta-owner", "x-amz-sdk-checksum-algorithm", "x-amz-trailer"}
	b.ReportAllocs()
	for b.Loop() {
		if unsignedHeaders(h, signed) != nil {
			b.Fatal("unsigned")
		}
	}
}
