// Package drill is the pure core of `shale chaos`, the operator's failure
// drill: which processes a round kills, what the cluster's status samples
// say happened (the timeline), and the verdict at the end.
//
// Nouns:
//
//   - A Candidate is one process of the cluster that a drill may kill: a
//     storage node (or meta replica) with its failure zone, the pid its
//     cluster file recorded, and whether that pid was checked to still be a
//     shale process of this cluster (Alive). Only Alive candidates are ever
//     chosen.
//   - A Plan is what the operator asked for: k+m, the nodes, how many to kill
//     per round (or a whole zone), how many rounds. Plan.Check refuses plans
//     that would lose data by design (more than m shards of an object gone at
//     once) unless forced.
//   - A Sample is one reading of meta's status, reduced to what the drill
//     follows: each node's state, objects by spare shards (healthy shards
//     beyond k), the repair queue and the repair counters.
//   - A Tracker turns the kills and the samples of a drill into Events (the
//     timeline) and a RoundResult per round: when each victim was seen down
//     and then out, the worst redundancy seen, when every object was back at
//     full redundancy (time-to-repair) and the bytes repaired meanwhile.
//   - A Verdict is the outcome from the counts of the final read-back:
//     objects lost, reads wrong, reads failed, and whether repair finished.
//
// Invariants: victim choice is a function of the seed, the round and the set
// of candidates (never of their order); a round is repaired only after every
// node it killed was seen out and every object sits at full redundancy with
// an empty repair queue; events come out ordered by time, ties in the order
// they were added.
//
// The package does no I/O of its own, reads no clock and draws no unseeded
// randomness: the shell (cmd/shale/chaos.go) kills, samples, reads objects
// and passes times in. IsClusterProcess reads a /proc given as an fs.FS.
package drill
