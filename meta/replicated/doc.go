// Package replicated runs the metadata service as a raft group
// (hashicorp/raft): every replica (a Node) holds a meta.Store as its state
// machine and serves meta.Service.
//
// Nouns:
//
//   - A command is one mutation as a value (meta.Command). The leader
//     validates it and stamps it with everything non-deterministic — its
//     clock, a new upload's ID, the client's request id (meta.Stamp) — and
//     appends it to the raft log; every replica applies it with
//     meta.Store.Apply at the entry's index, which writes that index as the
//     store's applied index in the same pebble batch and skips entries at
//     or below it.
//   - The log and raft's stable state (term, vote) live in a pebble
//     database of their own (LogStore), every write synced. The state
//     machine's applies are not synced: the log is the durable record, and
//     the store's write-ahead log is synced before every snapshot, before
//     raft may drop the entries the snapshot covers.
//   - A snapshot is a pebble checkpoint of the store streamed as a tar
//     (meta.Checkpoint); a follower that falls behind the log's trailing
//     entries gets one and swaps it in (meta.Store.Restore). On start raft
//     does not restore a snapshot (the store is durable and carries its
//     applied index; raft replays the log after the snapshot and the store
//     skips what it holds) unless the store is behind it.
//
// Invariants:
//
//   - Only the leader proposes; a follower answers every call with a
//     *meta.NotLeaderError naming the leader it knows.
//   - Reads on the leader are linearizable (raft's read index): it takes
//     its commit index (its last index until an entry of its own term has
//     committed), confirms leadership with a quorum in the same term, then
//     waits until its store holds every command up to that index. A
//     confirmation is good for Config.ReadLease from its start (no other
//     leader can be elected sooner: raft's leader stickiness, the guard's
//     quiet period after a restart, a transfer suspends it), so concurrent
//     and back-to-back reads share one round.
//   - A mutation carrying a request id (meta.WithRequestID) is applied at
//     most once within meta.Config.RequestRetention: a retry returns the
//     first result, from any leader.
//
// What it does not do (yet): it brings no network transport of its own
// (the caller passes a raft.Transport: over the network, a
// raft.NetworkTransport on meta/raftnet's authenticated Layer), it does not run
// leader-only background work (ticks, repair, garbage collection) or the
// restart grace (meta.OpGrace) on a leader change, and clients that follow
// the leader are meta/remote's business.
package replicated
