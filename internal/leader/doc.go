// Package leader runs the work that only one process of the cluster may do
// at a time: the metadata leader's background work (membership ticks, the
// repair loop with its orphan inventory and garbage collection).
//
// Nouns:
//   - Leadership is what the process learns from its consensus layer: a
//     channel that says "you lead" (true) and "you no longer lead"
//     (false), and a Barrier that returns once every entry committed
//     before it is applied here. hashicorp/raft's Raft.LeaderCh and
//     Raft.Barrier have this shape. Always is the Leadership of a process
//     that is alone (one meta without raft): it leads from the start.
//   - A Task is one piece of leader-only work: it runs until its context
//     ends.
//   - A Runner follows a Leadership. Each time the process becomes leader
//     a term begins: the Runner waits for a Barrier (retrying while it
//     fails, so a leader that cannot show it is current never starts
//     work), then starts every Task. When leadership is lost the term ends:
//     the Runner cancels the tasks' context and waits for all of them to
//     return before it looks at leadership again.
//
// Invariant: within one process, the tasks of at most one term run at any
// moment, whatever the order and speed of leadership changes; two trues
// in a row (a false the channel dropped) end the term and start a new one.
// Across processes, raft allows two processes to believe they lead only
// briefly (an old leader steps down once it has not heard from a quorum
// for its lease, before a new one can be elected), and the work itself
// must tolerate that overlap: the repair loop commits with
// compare-and-swap and deletes garbage only after re-checking meta.
//
// What it does not do: elect anyone, or decide what the tasks do. It does
// not restart a task that returns early; a task that fails ends the Runner
// (Run returns its error), as a failing ticker ended the meta process
// before leadership existed.
package leader
