// Package leadertest provides a Leadership (internal/leader) that a test
// controls: it says "you lead" or "you no longer lead" when told, and its
// Barrier does what the test sets.
package leadertest

import (
	"context"
	"sync"
)

// Fake is a leader.Leadership whose changes the test makes. Like
// hashicorp/raft's LeaderCh, its channel keeps only the latest value a slow
// reader has not taken yet. Safe for concurrent use.
type Fake struct {
	ch chan bool

	mu       sync.Mutex // guards barrier, barriers
	barrier  func(ctx context.Context) error
	barriers int
}

// New returns a Fake that does not lead yet and whose Barrier succeeds.
func New() *Fake { return &Fake{ch: make(chan bool, 1)} }

// LeaderCh returns the one channel Set writes to.
func (f *Fake) LeaderCh() <-chan bool { return f.ch }

// Barrier counts the call and runs the function SetBarrier set (nil:
// succeed).
func (f *Fake) Barrier(ctx context.Context) error {
	f.mu.Lock()
	b := f.barrier
	f.barriers++
	f.mu.Unlock()
	if b == nil {
		return nil
	}
	return b(ctx)
}

// SetBarrier makes Barrier call b from now on (nil: succeed at once).
func (f *Fake) SetBarrier(b func(ctx context.Context) error) {
	f.mu.Lock()
	f.barrier = b
	f.mu.Unlock()
}

// Barriers returns how many times Barrier was called.
func (f *Fake) Barriers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.barriers
}

// Set says the process leads (or not), replacing a value not yet taken.
// Only one goroutine may call it at a time.
func (f *Fake) Set(leading bool) {
	for {
		select {
		case f.ch <- leading:
			return
		default:
			select {
			case <-f.ch:
			default:
			}
		}
	}
}
