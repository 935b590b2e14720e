// Package md5lanes computes the MD5 of many bodies at once — the ETags of
// concurrent PUTs and part uploads — in the SIMD lanes of one
// github.com/minio/md5-simd server, and of a lone or small body with
// crypto/md5.
//
// Nouns:
//   - A Pool hands out one hash per body (New) and takes it back (the done
//     func New returns). It owns the md5-simd server: the server and its
//     goroutine start with the first lane handed out and stop at Close (or,
//     if lanes are still out then, when the last comes back).
//   - A lane is one of the server's hashers (at most Config.Lanes, made on
//     demand and reused body after body, never one per body: md5-simd
//     v1.1.2 never forgets a hasher it has seen, and its server walks all
//     of them on every round).
//
// Why and when: crypto/md5 costs ≈1.4 ms of CPU per MiB on one core here.
// md5-simd runs 16 (AVX-512) or 2×8 (AVX2) streams through one pass, so
// with many bodies hashed at once it costs a fraction of that per byte —
// but a lone stream costs more than crypto/md5, since every 32 KiB it
// hashes is a hand-off to the server's goroutine (BenchmarkHash has the
// numbers). So a body gets a lane only while at least Config.MinBodies
// large bodies are being hashed, itself included, and only if it is
// large (Config.MinSize) or of unknown size; otherwise crypto/md5. The
// choice is made once per body and never changes a sum.
//
// Lanes work best fed in large writes: a lane hands md5-simd its bytes in
// whole 32 KiB pieces (keeping back at most one piece), so writes of any
// size and alignment become full rounds, and writes that are multiples of
// 32 KiB (a stripe) pass through without a copy.
//
// Invariants: every hash New hands out is given back once, after its last
// Sum (done; a second done does nothing); a hash is not used after done.
// No hash blocks or panics because Close ran: lanes out at Close keep
// working until they come back, and New hands out crypto/md5 only from
// then on. The package keeps no state outside its Pools.
//
// It does not verify anything or know what a body is: callers compare
// sums.
package md5lanes
