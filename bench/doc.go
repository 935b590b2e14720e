// Package bench measures shale: the erasure codec's encode and decode paths
// (Encode), and — from other files — S3 load and repair time.
//
// Nouns:
//   - a path is one way of moving an object's bytes that the encode
//     benchmark times: "raw" (Reed-Solomon parity computation alone over
//     in-memory stripes), "pipeline" (erasure.Codec.Encode from a reader to
//     k+m discarding writers: read copy, encode, checksums, records, writer
//     goroutines), "decode" (erasure.Codec.Decode of the whole object from
//     in-memory shard streams, data shards only), "decode_degraded" (the
//     same with m data shards missing, so every stripe is reconstructed) and
//     "memcpy" (copying the object into a stripe-sized buffer: the one copy
//     a reader-fed pipeline cannot avoid);
//   - a Measurement is the median throughput of one path for one coding,
//     block size and GOMAXPROCS over N runs, in GB/s (10^9 bytes/s) of
//     object bytes, so every path is comparable whatever it reads or writes.
//
// Invariants: runs of the different paths are interleaved (run 1 of every
// path, then run 2, …) so that noise from a shared machine hits all paths
// alike and the ratios between paths stay meaningful; GOMAXPROCS is restored
// when Encode returns.
//
// What it does not do: it does not touch disks or the network (those are the
// S3 and repair benchmarks), and it does not judge the numbers — callers
// print ratios and compare them to their floors.
package bench
