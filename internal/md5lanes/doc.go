// Package md5lanes computes the MD5 of many bodies at once (the ETags of
// concurrent PUTs and part uploads) in the SIMD lanes of one
// github.com/minio/md5-simd server, and of a lone body with crypto/md5.
//
// MD5 is ≈1.4 ms of CPU per MiB on one core here, a large share of what a
// PUT costs. md5-simd runs 8 (AVX2) or 16 (AVX-512) streams through one
// pass: with 8 bodies hashed at once it costs about half as much per byte,
// with 16 about a third — but a single stream costs more than crypto/md5
// (BenchmarkHash). So a Pool hands out a lane only while at least Min
// bodies are being hashed, and crypto/md5 otherwise.
//
// Invariants: every hash a Pool hands out is given back once (its done
// func), which frees its lane; Close stops the server's goroutine (when
// the last lane out comes back), after which New hands out crypto/md5
// only.
package md5lanes
