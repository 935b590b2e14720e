// Package meta is shale's metadata service: buckets, object manifests,
// multipart uploads, the node→shard index, cluster membership, the repair
// queue and the garbage list, kept in one pebble database (*Store).
// meta/remote is its HTTP face and client; meta/metatest is the conformance
// suite every Service implementation passes.
//
// Nouns:
//
//   - A manifest is one committed object version (see Manifest). Its
//     Generation is assigned by meta from one global sequence on every commit
//     and shard update, so per key it only grows, even across delete and
//     recreate; repair's UpdateShards compares it (compare-and-swap).
//   - The node→shard index maps (node, shard id) to the object (or upload
//     part) holding that shard. Every mutation that adds or drops shards
//     keeps it in the same batch; NodeShards reads it, ReportBad resolves
//     scrubber reports through it, AddGarbage refuses shards it still holds.
//   - Garbage is a shard no manifest or part references any more. Replaced
//     shards get NotBefore = commit time + GarbageGrace, so readers still
//     streaming an older version finish before the collector deletes them.
//     The queue is kept twice in the same batches: by NotBefore (g/, for
//     ListGarbage and the count) and by node then NotBefore (gn/), so the
//     collector lists each node's due entries (ListGarbagePage) and never
//     reads those of nodes it cannot reach; GarbageNodes says which nodes
//     have any. A store from before gn/ existed is indexed once on open.
//   - An upload (multipart, in progress) is indexed by bucket then key then
//     upload ID (ub/), which ListUploads pages through from S3's markers,
//     at most MaxListLimit uploads and common prefixes per reply, and by
//     initiation time (ua/), which StaleUploads reads for the repair loop's
//     abort of abandoned uploads. The IDs meta assigns begin with the
//     initiation time, so ID order within a key is S3's initiation order.
//     A store from before ua/ existed is indexed once on open.
//   - The repair queue (Degraded) holds objects committed short of shards
//     or with a reported bad shard, oldest first; UpdateShards recomputes an
//     entry, ResolveDegraded removes one, Commit/Delete replace it.
//   - A command (Command) is one mutation as a value: its arguments plus
//     what the proposer decided once (Stamp): the time apply uses as now,
//     a new upload's ID, the client's request id. Every mutation method
//     builds one (Mutations) and hands it to a proposer: *Store applies it
//     at once (index 0); meta/replicated appends it to a raft log and every
//     replica applies it at its log index (Apply). Apply reads only the
//     store, the command and the durations of Config, so replicas that
//     apply the same log hold the same keyspace and the same in-memory
//     state (generation, epoch, membership, repair figures).
//   - The applied index (c/applied) is the log index of the last command
//     the store holds, written in the command's own batch; Apply skips an
//     index at or below it, so a replayed log applies nothing twice.
//   - A request record (r/) keeps the first result of a command that
//     carried a request id (WithRequestID) for RequestRetention, in the
//     command's own batch: a retry returns it and changes nothing.
//   - A checkpoint (Checkpoint) is a consistent copy of the store at one
//     applied index, streamed as a tar; Restore swaps one in whole.
//   - Membership: nodes register by heartbeat; their state (cluster.State)
//     changes by heartbeats, by Tick (up→down after DownAfter silent,
//     down→out after OutAfter down) and by Admin. A node's liveness (last
//     heartbeat, down since, usage) is persisted (l/), so every replica
//     times it out alike; the restart grace (OpGrace: a fresh DownAfter
//     and OutAfter from now for every node) is a command too, applied by
//     Open in the single process and, in a raft group, proposed by a new
//     leader. Every change of state or
//     of a node's address, domain, capacity or PID bumps the persisted map
//     epoch. A node's Since records (and persists) when it became out or
//     draining; repair times its episodes from it.
//   - The repair loop's figures (SetRepairStats) are persisted, so the
//     counters, the episode in progress and the last time-to-repair outlive
//     a restart; Status's repair queue is the larger of the degraded queue
//     and the loop's current candidates.
//
// Invariants:
//
//   - Every command is one pebble batch (with its applied index and request
//     record), and commands are serialised by one mutex from their first
//     read to their commit: commit order is the order of "last writer
//     wins", and a read-modify-write never interleaves — a conditional
//     commit (CommitIf, CompleteUploadIf) checks the key's current version
//     in the same apply, so of two racing creates exactly one commits, on
//     every replica alike (ErrPreconditionFailed is a deterministic
//     rejection). In the single
//     process the batch is committed with pebble.Sync before the method
//     returns (liveness-only heartbeats and repair figures without); a
//     replica's applies are not synced, since its raft log is the durable
//     record, and Checkpoint syncs the WAL before raft may drop entries.
//   - A shard is never garbage while a manifest or part references it: the
//     garbage of a replacement is old shards minus new shards.
//   - Keys may contain any UTF-8 (0x00 included); the keyspace (keys.go)
//     keeps the bucket/key split unambiguous and lists in binary key order.
//
// What it does not do: it does not talk to nodes (repair and the object
// layer do), it does not check S3 naming rules beyond what its keyspace needs
// (no 0x00 or '/' in bucket names, keys 1–1024 bytes of UTF-8), it does not
// keep object versions (one current manifest per key), and it does not
// replicate itself: meta/replicated runs Stores as a raft group.
package meta
