// Package devcluster is the format of DATA/cluster.json, the file a
// `shale dev` cluster writes so that scripts, operators, `shale admin`, the
// end-to-end tests and the benchmarks can find (and kill) every process of
// it.
//
// Nouns: a File is the whole cluster — meta, gateway and S3 endpoint, their
// pids and the arguments they were started with, the secret and credentials
// files and the coding k+m; a Node is one storage node process.
//
// Invariants: Write replaces the file atomically (a temporary file renamed
// over it), so a reader sees either the previous file or the new one, never
// a partial one. Read and Write agree on the JSON field names; they are the
// only definition of the format.
//
// The package only reads and writes the file: it starts, checks and stops
// nothing, and imports nothing of ours.
package devcluster
