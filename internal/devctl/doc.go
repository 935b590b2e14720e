// Package devctl is the control channel of a running `shale dev`: how
// `shale admin node add` asks the dev supervisor to start one more storage
// node under it, and the rules that decide what that node is.
//
// Nouns: the control directory is DATA/control (0700), owned by the dev
// serving DATA. A Request is one file in it, NAME.request.json, published
// atomically (internal/privfs); its Reply is NAME.reply.json, written the
// same way once the request is done. AddNode is the one request today; Plan
// turns it, with the cluster file and the node ids meta knows, into the
// devcluster.Node to start (or an error wrapping ErrInvalid or ErrTaken).
//
// Invariants: the server takes a request (removes its file) before it acts,
// and answers each request it took exactly once, in the order they came;
// it handles one request at a time, so two adds never race on the cluster
// file or on a node id. A client never waits unbounded: it gives up
// at its context's deadline, and at once when the dev it addresses is not
// alive (ErrNoDev) — a dev is alive when the pid the cluster file records
// (File.DevPID) runs `shale dev`.
//
// Plan is pure (no I/O). The package starts no process and picks no port:
// the dev supervisor in cmd/shale does that in the handler it gives Serve.
package devctl
