// Package object is the coordinator that turns S3 operations into erasure
// coded shard streams on storage nodes and manifests in meta.
//
// Nouns:
//
//   - Version: one committed write of a key, named by a random hex version
//     id chosen by the writer. Every shard a version owns carries its id, so
//     two versions of a key never share a shard and a reader holding a
//     manifest never mixes versions.
//   - Segment: an independently coded run of object bytes — the whole object
//     for a simple PUT, one part for a multipart upload. Each segment has its
//     own k+m shards and its own placement.
//   - Shard id: "<version>.<segment number>.<shard index>" for shards written
//     by a PUT or an upload part (every part attempt has its own version id),
//     and "<version>.<segment number>.<index>.r<random>" for shards
//     re-created by repair, so a repaired shard never collides with the one it
//     replaces, even on the same node.
//   - Write quorum: the number of shard writes that must be durable before a
//     manifest may be committed (Config.WriteQuorum, k+1 by default, never
//     below k). A version committed with fewer than k+m shards is "degraded":
//     its missing shards carry Node "" and meta queues it for repair.
//   - Node-side rebuild: RepairObject asks a lost shard's new node, when its
//     store is a ShardRebuilder, to re-create the shard itself from the
//     segment's other shards (the node runs a LocalRebuilder: the same
//     record and summary checks as the coordinator, a durable write to its
//     own store); the shard enters the manifest only once the node has
//     answered it is durable, and anything but a clean success is rebuilt
//     by the coordinator instead.
//   - Service: the object operations as the S3 front door sees them
//     (service.go): results in this package's own types — Info for a
//     version, with no layout — and errors matching this package's
//     sentinels (meta's translated at that boundary, still wrapped), so
//     httpapi imports no meta. The Coordinator behind it speaks meta's
//     records, for the callers that need manifests: repair, rebalance, cmd.
//   - Garbage: a shard no manifest references. A PUT that fails before its
//     commit queues every shard it may have written as garbage; garbage
//     collection deletes it from its node once its NotBefore has passed.
//
// Invariants:
//
//   - Only meta's commit makes a version visible; a failed PUT leaves only
//     orphans queued for garbage collection, never a partial object. A
//     conditional write (Precondition) is decided by meta at that commit;
//     the Get that refuses it early only saves storing a doomed body.
//   - Memory per request is bounded by the codec's stripes in flight: bodies
//     and shards are streamed through pipes, never buffered whole.
//   - Every goroutine started here is owned: someone waits for it before the
//     operation returns, and stragglers are cancelled once the outcome is
//     decided.
//   - Reads report corrupt or missing shards to meta (for repair), never
//     timeouts, unavailable nodes or cancellations.
//   - Memory is bounded per request by the codec's stripes in flight, and
//     across requests by Config.MemoryBudget: every PUT, part, GET and copy
//     reserves its buffers from that budget first (waiting, in arrival
//     order, at most Config.BudgetWait, then ErrBusy), so the buffers of
//     the requests that are moving data never exceed it however many
//     requests arrive. A request whose client is slow holds no reservation
//     while it waits, and at most one stripe (GET: one block) of data: a GET
//     stops its decode (clientWriter in get.go), a PUT gives its
//     reservation back and its encoder holds no buffer until the next
//     stripe has arrived (clientGuard in budget.go, stagedBody in put.go).
//     No client can hold the budget by not reading or by trickling its
//     body.
//   - Every progress deadline (shard writes, shard reads) is one
//     internal/progress Watchdog.
//
// What it does not do: it speaks no HTTP and knows no S3 error codes (httpapi
// maps the sentinels in api.go); it does not schedule repair or garbage
// collection (the repair package calls RepairObject, and deletes garbage
// itself through the same Nodes); it keeps no state beyond a briefly
// cached cluster map; it does not retry failed shard
// writes of a PUT (a missing shard is repair's job) — only RepairObject
// places a rebuilt shard whose write failed once more on another node, a
// bounded number of times (a node that just died still looks up).
package object
