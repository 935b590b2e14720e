// Package erasure is shale's stripe codec: it cuts an object into stripes,
// Reed-Solomon codes each stripe into k data and m parity blocks
// (github.com/klauspost/reedsolomon), and writes k+m shard streams of
// self-describing, checksummed records; it reads them back, whole or by
// range, reconstructing around missing or corrupt shards, and rebuilds lost
// shard streams for repair.
//
// Nouns:
//   - block size B: bytes of one shard in one full stripe (Config.BlockSize,
//     default DefaultBlockSize). A full stripe holds k×B object bytes; data
//     shard i's block is bytes [i×B, (i+1)×B) of the stripe.
//   - last stripe: an object whose size is not a multiple of k×B ends with a
//     partial stripe of rem bytes, whose blocks are bl = ceil(rem/k) rounded
//     up to a multiple of 64 bytes (SIMD-friendly, and never more than B);
//     data shard i holds bytes [i×bl, (i+1)×bl) of it, zero-padded. The
//     codec never stores the object size: Decode and Rebuild take it from the
//     manifest.
//   - record: RecordHeaderSize header bytes then one block. Header (format
//     version 1, little-endian): u64 checksum | u16 version | u16 shard index
//     | u32 block length | u64 stripe number. The checksum is XXH3-64 of the
//     record after it (rest of header + block), so header and block are
//     verified together in one pass over contiguous bytes.
//   - shard stream: shard i's records for stripes 0, 1, … in order. Every
//     record has length B except possibly the last. A stream can be walked
//     and verified knowing nothing of k, m or B (RecordReader, Verifier);
//     Summary is XXH3 over its records' checksums, a cheap whole-shard digest
//     for indexes and manifests.
//   - an object of size 0 has no stripes: every shard stream is empty.
//
// Why XXH3 for block checksums: measured on the target CPU (AMD EPYC, 2
// vCPU; BenchmarkChecksumCandidates; docs/bench/encode.md), XXH3-64 hashes
// cache-resident 64 KiB–1 MiB blocks at ~40–56 GB/s, CRC32C at ~15–25 GB/s,
// SHA-256 (crypto/sha256 and minio/sha256-simd alike, SHA-NI) at ~1.5 GB/s.
// Every byte of a k+m stream is hashed on write and on read, so the checksum
// is a direct tax on the pipeline; XXH3 is the cheapest, and 64 bits make an
// undetected random corruption (2^-64 per record) far rarer than CRC32C's
// 2^-32. Block checksums detect rot and torn writes, not tampering; object
// integrity against clients is the ETag/checksum layer's job.
//
// Invariants:
//   - the bytes written for an object are a pure function of (k, m, B,
//     object bytes): Rebuild re-creates a lost stream byte for byte, and
//     TestKnownAnswer pins the format. The parity matrix is reedsolomon's
//     default; switching matrices (e.g. Cauchy) would change the format.
//   - memory per call is bounded by a few stripes (Config.Depth,
//     Config.ReadAhead), never by object size; full-size buffers are pooled
//     per Codec, and a small object of known size (EncodeSize, Decode) gets
//     buffers sized to it. EncodeMemory and DecodeMemory state the bound
//     for one call, so callers can budget memory across calls.
//   - every goroutine a call starts has ended when the call returns.
//   - Decode reads data shards only while they are healthy; a shard that
//     fails (open, read, checksum) is dropped for the rest of the call and
//     reported in DecodeReport with the first stripe at which it failed.
//
// What it does not do: no disks, no network, no placement, no retries or
// timeouts (the ctx and the ShardOpener's readers carry those), no object
// size or ETag bookkeeping, and no authentication of content.
package erasure
