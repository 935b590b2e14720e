// Package progress is shale's one mechanism for "this I/O must make
// progress": a Watchdog that runs an action (cancel a context, close a pipe,
// set a connection's deadline to the past) when an operation it was armed
// for has not finished by its deadline, and MinRate, the deadline of a
// stream that must keep an average rate after a grace period.
//
// It serves every place where a peer can stall shale by not reading or not
// writing: S3 request bodies and response writes (httpapi), shard writes to
// nodes and shard reads from nodes (object). Each of those arms a Watchdog
// before a blocking call and disarms it after; only time spent inside the
// call counts, never time between calls (a slow consumer on the other side
// of the caller is not the peer's fault).
//
// It does not interrupt anything itself: the action must make the blocked
// call return (context cancellation, a closed pipe, a past deadline on a
// net.Conn). It reads the wall clock (time.Now, time.AfterFunc); callers
// test it with short durations.
package progress
