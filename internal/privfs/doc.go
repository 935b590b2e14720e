// Package privfs keeps shale's files private to the user that runs it.
//
// Nouns:
//
//   - A private file has mode 0600 and a private directory mode 0700 (less
//     whatever the process umask removes): no other local user without root
//     can read, write or traverse them.
//   - New returns a pebble vfs.FS over the operating system whose Create,
//     OpenReadWrite, ReuseForWrite, Lock and MkdirAll make private files and
//     directories. Every other operation is vfs.Default's. storage.Disk (shard
//     files and their index) and meta (its pebble store) use it by default.
//   - ReadFile reads a file that holds a secret (the cluster secret, S3
//     credentials) and refuses, with ErrNotPrivate, one that group or others
//     may read or write; WriteFile publishes such a file atomically as 0600.
//
// Invariants: a file is created private from its first byte (it is opened
// with mode 0600, never created wider and narrowed afterwards), so there is
// no window in which another user could open it. Files and directories that
// already exist keep their mode: privfs narrows nothing behind the operator's
// back, it only refuses secrets that are exposed.
//
// What it does not do: it does not encrypt, does not protect against root or
// against a user who owns the files, and is not a general-purpose vfs wrapper
// (it wraps only the operating system's file system, since only there do
// modes mean anything).
package privfs
