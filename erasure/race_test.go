//go:build race

package erasure

// raceEnabled: the race detector is on, and sync.Pool drops a quarter of
// the buffers put back at random, so pooling cannot be measured.
const raceEnabled = true
