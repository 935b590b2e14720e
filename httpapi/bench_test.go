package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkGetObject1MiB measures a signed 1 MiB GET through the handler
// (auth, routing, headers, streaming) against the in-memory store.
func BenchmarkGetObject1MiB(b *testing.B) {
	e := newEnv(b, false, nil)
	ctx := context.Background()
	if err := e.store.CreateBucket(ctx, "bench", ""); err != nil {
		b.Fatal(err)
	}
	data := pattern(1<<20, 1)
	resp := e.do("PUT", "/bench/k", data, nil, testSK)
	resp.Body.Close()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		resp := e.do("GET", "/bench/k", nil, nil, testSK)
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != int64(len(data)) {
			b.Fatalf("GET: %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// BenchmarkPutObject1MiB measures a signed 1 MiB PUT with UNSIGNED-PAYLOAD
// (the fake store hashes the body once for the ETag, as the object layer does).
func BenchmarkPutObject1MiB(b *testing.B) {
	e := newEnv(b, false, nil)
	if err := e.store.CreateBucket(context.Background(), "bench", ""); err != nil {
		b.Fatal(err)
	}
	data := pattern(1<<20, 2)
	hdr := map[string]string{"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		resp := e.do("PUT", "/bench/k", bytes.Clone(data), hdr, testSK)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("PUT: %d", resp.StatusCode)
		}
	}
}
