// Package storage is a storage node's local shard store.
//
// Nouns:
//
//   - A shard is one shard stream of one object segment: a sequence of
//     erasure records (header + block, see package erasure), named by an id
//     (ValidateID: [A-Za-z0-9][A-Za-z0-9._-]{0,199}, no ".."), so an id is
//     always a plain file name and never reaches outside the data directory.
//   - Store (store.go) is the contract every shard store meets; Disk is the
//     real one, Mem an in-memory one for tests of other packages, and
//     storage/remote serves a Store over HTTP. storetest is the conformance
//     suite all of them pass.
//   - The index is a pebble database mapping id → size, record layout,
//     checksum summary (erasure.Verifier.Summary), creation time and inode.
//     A shard of at most DiskConfig.InlineMax bytes is inline: its bytes
//     live in the index too (d/<id>) and it has no file.
//   - The Scrubber re-reads every shard at a bounded byte rate and records
//     the ones that fail verification.
//
// Disk layout (FormatVersion 2; version 1 is the same without inline shards):
//
//	DIR/FORMAT            "shale-storage 2" ("… 1" with InlineMax < 0); anything else is refused (ErrFormat)
//	DIR/shards/xx/<id>    one file per shard that is not inline, xx = low byte of XXH3(id) in hex
//	DIR/tmp/              uploads in progress; emptied on every open
//	DIR/index/            pebble: s/<id> entries, d/<id> inline bytes, b/<id> scrub marks, m/clean
//
// Every file and directory the store creates is private (0600/0700, see
// internal/privfs), and all of them — shard files and index alike — go
// through one pebble vfs.FS (DiskConfig.FS), which tests wrap with errorfs.
//
// Invariants:
//
//   - Verified before stored, verified when read: Put streams through an
//     erasure.Verifier and refuses a corrupt or truncated stream with
//     *CorruptError, keeping nothing; every record a Get returns has passed
//     its checksum before any of its bytes are handed out. Disk.GetRaw is
//     the one exception, by contract: it hands out the stored bytes
//     unverified (after checking the range and the file's size against the
//     index), for a node to send to a reader that verifies every record
//     itself (see storage/remote); the scrubber finds rot nobody reads.
//   - Durable before acknowledged: an inline Put commits entry and bytes
//     in one synced batch (concurrent ones share pebble's WAL sync). A
//     file Put writes a temporary file, fsyncs it,
//     renames it into place, fsyncs the directory and commits the index
//     entry with a synced write before it returns. Delete removes the file,
//     fsyncs the directory, then deletes the entry.
//   - Nothing partial is ever visible: readers and List see only indexed
//     shards, and a shard is indexed only once its file is complete. An
//     overwrite replaces the old shard atomically; a reader opened before
//     keeps reading the old one.
//   - The index agrees with the files: Close writes a clean-shutdown marker;
//     an open without one reconciles the two (drops entries without files,
//     verifies and indexes complete files without entries, deletes the rest).
//   - Ranged reads start and end on record boundaries (else ErrRange); the
//     layout in the index (every record as long as the first, the last one
//     possibly shorter) locates them without reading the file.
//
// What it does not do: it knows nothing of objects, k, m or placement, does
// not repair (it reports, the repair loop acts), does not speak HTTP
// (storage/remote does), and Mem is not durable. Space accounting counts
// shard bytes, not file-system overhead; the Limit check is made when a Put
// starts, so concurrent Puts may overshoot it by their own sizes.
package storage
