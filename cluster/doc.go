// Package cluster is shale's vocabulary for the machines that hold shards:
// node ids, failure domains (zone › rack › host), node states and the
// cluster map.
//
// A Map is an immutable snapshot: every method returns copies or values, so a
// Map can be shared between goroutines without locks. A new epoch means a new
// Map. ParseTopology builds a Map from an operator's YAML or JSON topology
// document. The package does no I/O and reads no clock.
package cluster
