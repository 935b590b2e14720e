// Package placement chooses the k+m storage nodes that hold an object's
// shards, and says what a choice survives.
//
// Nouns:
//
//   - A placement is a slice of node ids; element i is the node of shard i
//     (shards 0..k-1 are data, k..k+m-1 parity). An empty id "" marks a shard
//     index with no node (a degraded placement).
//   - The eligible nodes of a map are its Up nodes; only they receive new
//     shards. Domains are counted over eligible nodes only.
//   - The caps of a placement of n shards are, per level (zone, rack, host),
//     the most shards one domain of that level may hold. A level's cap is
//     ceil(n / domains at that level) whenever the map lets every domain take
//     that many; otherwise it is the smallest cap that still lets n shards be
//     placed, found zones first, then racks, then hosts (see Planner.Caps).
//   - A node's score for an object is its weighted rendezvous (HRW) key
//     -ln(u)/weight, u a 64-bit hash of (object, node id) mapped into (0,1);
//     the lowest key is the best.
//
// Invariants of Place and PlaceDegraded:
//
//   - The nodes are distinct and Up, and no domain holds more than its
//     level's cap.
//   - The chosen set is the best-scoring set that respects the caps (a
//     maximum-weight basis of the laminar matroid the caps define, found
//     greedily). Hence removing a node from the map changes only the sets
//     that contained it, each by exactly that node, and adding a node changes
//     only the sets the new node enters, each by one node — provided the caps
//     stay the same.
//   - The answer is a pure function of the object id and of the set of
//     nodes with their domains, weights and states: node listing order never
//     matters (ties are broken by hash and then by id, never by position).
//
// Shard indexes are assigned after the set is chosen: nodes in score order
// each take their preferred free index (by a second hash). Index assignment
// is deterministic, but unlike set membership it is not minimal under map
// changes; that is by design — no deterministic function of the map alone
// can keep every surviving shard on its index for all maps — and harmless,
// because manifests record each shard's node, and Replace keeps indexes.
//
// The package is pure: no I/O, no clock, no randomness, no package-level
// state. It does not move data, read manifests or decide when to repair; it
// does not weigh nodes by free space (only by Node.Weight) and it does not
// balance read load.
package placement
