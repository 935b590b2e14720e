// Package durability estimates how likely a shale cluster is to lose data in
// a year, and says it in nines.
//
// Nouns:
//   - Params: a coding k+m, the cluster's nodes and failure domains, the
//     annual failure rate (AFR) of one node, and the time to repair one failed
//     node (detection delay plus rebuild time).
//   - A model turns Params into a Result: the annual probability of losing
//     any data, its nines (−log10 of it), and the mean time to data loss.
//   - Copies: shale stores a small segment (object.Config.ReplicateMax) as
//     M+1 full copies, coded 1+M. Params.Copies is that coding beside a
//     K+M; every model takes K=1 (the chain, the cluster model and the
//     binomial are the same formulas with n = M+1; the simulation places
//     1+M stripes like any other). For the same M, copies lose a stripe only
//     when all M+1 of its nodes fail, so they lose less per stripe, and
//     cost M+1 bytes per byte instead of (K+M)/K.
//
// Models:
//   - Markov: an exact continuous-time Markov chain per stripe — states are
//     the number of failed shards, absorbing at m+1 — with serial or parallel
//     repair, optionally with correlated failures of whole domains. MTTDL
//     solves the chain's linear system; the one-year loss probability comes
//     from uniformization, which only adds non-negative terms and so keeps
//     its relative accuracy even at 1e-30.
//   - Cluster: the same chain over the whole cluster's nodes, where reaching
//     m+1 concurrent failures loses data only if some stripe has all of them;
//     the chance of that comes from the number of stripes and their random
//     spread. An approximation that errs on the high (pessimistic) side.
//   - Binomial: Backblaze's discrete model — a stripe is lost when more than m
//     of its shards fail within one repair window; windows are independent.
//   - Monte Carlo: an event-driven simulation of a whole cluster, with stripes
//     placed by the real placement package, exponential or Weibull lifetimes,
//     bursts of domain failures and bandwidth-limited repair. Seeded. Further
//     classes of stripes (say copies beside K+M) share its node failures,
//     so the years in which any class loses data are one cluster's.
//   - Meta: the metadata's raft group (MetaParams: r replicas in failure
//     domains, a node's AFR, the time to rebuild a replica from a snapshot)
//     as the same kind of chain: states are replicas lost, absorbing when a
//     majority (floor(r/2)+1) is lost before a replacement is rebuilt — the
//     event that can lose acknowledged metadata, since raft acknowledges a
//     write once a majority holds it. Rebuilds run only while a majority
//     lives (a leader must add the new voter). It also reports losing all r.
//     Every object needs its metadata, so Combine(data, meta) — the chance
//     that either is lost, 1−(1−P_data)(1−P_meta) — is the cluster's figure.
//
// The package is pure computation: no I/O, no clock. Randomness comes only
// from the seed in MonteCarloConfig.
package durability
