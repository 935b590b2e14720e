// Package repair brings objects back to full redundancy.
//
// Nouns:
//   - A Candidate is one object version with fewer than k+m healthy shards in
//     some segment: shards never written (a degraded PUT), on nodes that are
//     out or draining, or reported missing or corrupt.
//   - Plan (pure) orders candidates by risk: the fewest healthy shards above
//     k first — an object with exactly k left is one failure from loss — then
//     the oldest, then by name so the order is total and repeatable.
//   - Loop (the imperative shell) runs beside meta: every pass it rebuilds the
//     candidate list from meta (the degraded queue and the node→shard index of
//     out and draining nodes), plans, and repairs with bounded concurrency and
//     a byte-rate throttle that objects at k or below bypass (urgent mode). It
//     collects garbage, marks drained nodes out, and reports its progress
//     (rate, ETA, time-to-repair) back to meta.
//   - An orphan is a shard stored on a node that no manifest, no part of an
//     upload in progress and no garbage entry references: a gateway that
//     crashed between writing shards and committing (or queuing them as
//     garbage) leaves them. The Inventory sweeps the readable nodes' shard
//     lists at most once per Every, a few pages per loop pass, and queues
//     every unreferenced shard older than Grace as garbage. The grace is
//     what keeps a write in flight safe: its shards are stored before its
//     commit, and no write holds stored shards uncommitted for that long.
//
// Garbage on out nodes is collected too (object.Coordinator.CollectGarbage
// tries an out node at most once a minute, each delete bounded), so a node
// that comes back alive but stays out until an operator's "in" loses its
// stale shards.
//
// Restart safety: the loop keeps no state of its own that matters. Every pass
// recomputes what needs repair from meta, and every repair commits with
// compare-and-swap on the manifest's generation, so a loop killed at any point
// and started again repeats at most the rebuilding of a shard, never a commit,
// and an overwrite or delete that lands meanwhile always wins.
//
// What it does not do: rebuild shards itself (object.Coordinator.RepairObject
// reuses the write path for that) or decide node states (meta does).
package repair
