// Package serve builds the HTTP servers of every shale role — the S3
// gateway, meta, the storage nodes and the loopback pprof endpoint — with
// the same protections against clients that hold resources without using
// them:
//
//   - a connection limit: past Config.MaxConns, new connections wait in
//     the kernel's accept queue until one ends (a flood queues, it does not
//     grow the process's memory or goroutines);
//   - ReadHeaderTimeout: a client that sends its request headers slowly
//     (slowloris) is cut, so it cannot hold one of those connections;
//   - IdleTimeout: a kept-alive connection with no request in flight is
//     closed, so idle clients give their connection back;
//   - MaxHeaderBytes: request headers are bounded;
//   - FinishTimeout: once a handler returns, net/http's discard of an
//     unread body and its flush of the response must end within it, so a
//     client that declares a body it never sends, or pipelines requests
//     and never reads the answers, cannot keep its connection.
//
// What a request does with its body and response — deadlines per read and
// write, minimum rates — is the handler's business (httpapi does it for
// S3); this package does not set the server-wide ReadTimeout or
// WriteTimeout, which would cut long transfers that are making progress.
package serve
