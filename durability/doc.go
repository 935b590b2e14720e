// Package durability estimates how likely a shale cluster is to lose data in
// a year, and says it in nines.
//
// Nouns:
//   - Params: a coding k+m, the cluster's nodes and failure domains, the
//     annual failure rate (AFR) of one node, and the time to repair one failed
//     node (detection delay plus rebuild time).
//   - A model turns Params into a Result: the annual probability of losing
//     any data, its nines (−log10 of it), and the mean time to data loss.
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
//     bursts of domain failures and bandwidth-limited repair. Seeded.
//
// The package is pure computation: no I/O, no clock. Randomness comes only
// from the seed in MonteCarloConfig.
package durability
