// Package e2e holds the end-to-end tests of shale: they build the shale
// binary once, run whole `shale dev` clusters as real processes on loopback
// (one meta, N storage nodes, one S3 gateway, each its own process with its
// own data directory), and drive them with real S3 clients — aws-sdk-go-v2,
// minio-go and, when it is installed, the AWS CLI.
//
// Nouns:
//
//   - Cluster: one running `shale dev` child process, what its cluster.json
//     says about its meta, nodes and gateway, its S3 credentials and clients
//     configured for it. A Cluster is owned by one test and stopped (SIGTERM,
//     then SIGKILL after a bounded grace) when that test ends.
//   - Killing a node or meta is SIGKILL of its process: a real crash, not a
//     polite shutdown. Restarting one re-runs the exact arguments that
//     cluster.json recorded for it, as a child of the test.
//
// Invariants the harness keeps: every wait is bounded; every process it
// starts is ended by the test that started it; data directories live under
// t.TempDir(), never in the repository; test data comes from seeded PRNG
// streams so nothing large is kept in memory and a failure can be replayed.
//
// What it does not do: measure speed (benchmarks do that, in package bench),
// mock any part of the system, or talk to anything but 127.0.0.1 — except
// the partition test, which runs three `shale meta` replicas in network
// namespaces of their own (internal/netnstest) on private links, and skips
// where namespaces cannot be made.
//
// The package has no non-test code besides this comment. Run it with
//
//	go test -count=1 -v ./e2e/
//
// and with -short to skip the heaviest parts (the 100 MiB object and the
// TLS cluster).
package e2e
