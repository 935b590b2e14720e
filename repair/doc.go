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
//     back to meta at most every Config.PublishEvery and at the end of each
//     pass: the candidates and lost bytes left in
//     the pass (meta's status counts them in the repair queue, since a node
//     out puts nothing in the degraded queue), the rate, the ETA (bytes left
//     over the rate) and the time-to-repair.
//   - The adaptive throttle (throttle.go) decides how many objects are in
//     flight: Config.Concurrency while the Foreground signal (the requests
//     of the S3 path that meta served, counted by meta/remote's handler)
//     stays below BusyRate, and BusyConcurrency (1) with a pause of Pause
//     times each object's own time after it while there is foreground
//     work, until Quiet has passed without. It never stops repair: the
//     floor is one object in flight repairing at least 1/(1+Pause) of the
//     time. Objects are admitted in Plan's order, urgent ones at once; the
//     byte rate (Config.Rate) is a hard cap on top. Status and metrics
//     show its state, limit, objects in flight, the foreground rate and
//     why.
//   - The rebalancer (rebalance.go) runs in every pass that found nothing
//     to repair — repair always comes first. A change of the placement
//     signature (the nodes that hold or may receive shards, their domains
//     and weights: a node added, back in, re-weighted, out or draining; a
//     node merely down or full changes nothing) starts a round: a planning
//     scan over every manifest (meta's Manifests, ScanPerPass per pass)
//     counts the objects and bytes placement now wants elsewhere
//     (PlanMoves: placement.Moves per segment, the fewest moves), then a
//     moving scan moves them through the Mover (object.MoveShards: the new
//     node pulls the shard as stored from its old node — relayed through
//     the coordinator when it cannot — verified by its Put and against the
//     manifest's checksum, one compare-and-swap commit on the generation,
//     old shards to garbage), admitted by the same throttle and byte rate as repairs
//     and for at most StepTime per pass. Objects not whole, or with a
//     shard on a node that is not up, wait for a later round (RetryAfter).
//     A draining node's shards are repair's: they are copied from it (not
//     rebuilt) when it can still be read.
//   - An episode runs from a node going out or starting to drain (the
//     node's Since, which meta keeps) to the first pass that finds nothing
//     left to repair and did not stop at MaxPerPass; its length is the
//     time-to-repair.
//   - A stale upload is a multipart upload still in progress
//     Config.AbortUploadsAfter (7 days by default) after it began; each pass
//     aborts a bounded number of them, oldest first, and their parts' shards
//     become garbage as an S3 abort leaves them.
//   - The Collector exposes the loop's figures and meta's status to
//     Prometheus; it reads the status (an O(objects) scan) at most every
//     10 s, never in two scans at once, and a scrape that finds a scan
//     running serves the last figures instead of waiting.
//   - An orphan is a shard stored on a node that no manifest, no part of an
//     upload in progress and no garbage entry references: a gateway that
//     crashed between writing shards and committing (or queuing them as
//     garbage) leaves them. The Inventory sweeps the readable nodes' shard
//     lists at most once per Every, a few pages per loop pass, and queues
//     every unreferenced shard older than Grace as garbage. The grace is
//     what keeps a write in flight safe: its shards are stored before its
//     commit, and no write holds stored shards uncommitted for that long.
//   - The GarbageCollector deletes the shards of meta's garbage queue once
//     they are due, re-asking meta just before each delete whether the
//     shard is referenced after all (a commit whose reply was lost may land
//     after its shards were queued). It works node by node, sharing
//     GarbagePerPass among the nodes it can reach, so a dead node's backlog
//     — repair turns all of its shards into garbage there — never keeps the
//     other nodes' garbage waiting. Garbage on out nodes is collected too
//     (an out node is tried at most once a minute, each delete bounded), so
//     a node that comes back alive but stays out until an operator's "in"
//     loses its stale shards.
//
// Leadership: all of this is leader-only work. The meta process runs the
// loop (with its inventory and collector) as an internal/leader Task, so it
// runs only while that process leads, after a barrier, and is cancelled
// and waited for when leadership is lost; Run may be called again for the
// next term and then resumes from meta like a restarted loop.
//
// Restart safety: the loop keeps no state of its own that matters. Every pass
// recomputes what needs repair from meta, and every repair commits with
// compare-and-swap on the manifest's generation, so a loop killed at any point
// and started again repeats at most the rebuilding of a shard, never a commit,
// and an overwrite or delete that lands meanwhile always wins. Its figures
// are persisted by meta; a new loop carries on from them (counters, the
// episode in progress, the end of the last), and takes an episode's start
// from the nodes' Since, so a meta restart mid-repair still reports the time
// from the node going out.
//
// What it does not do: rebuild shards itself (object.Coordinator.RepairObject
// does, reusing the write path or having the shard's new node rebuild it) or
// decide node states (meta does).
package repair
