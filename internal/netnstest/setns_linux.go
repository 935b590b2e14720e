package netnstest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its named namespaces (iproute2's
// NETNS_RUN_DIR).
const netnsDir = "/var/run/netns"

// Do runs fn on an OS thread that has joined the node's namespace, and
// returns its error. Sockets fn creates (net.Listen, net.Dial) belong to
// that namespace for their whole life, whichever goroutine uses them
// later; goroutines fn starts do not run in the namespace. The thread
// returns to its own namespace after fn before the Go scheduler may use it
// for anything else; if it cannot, it is never given back (it exits with
// fn's goroutine).
func (nd *Node) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netnstest: %w", err)
			return
		}
		defer home.Close()
		f, err := os.Open(filepath.Join(netnsDir, nd.NS))
		if err != nil {
			errc <- fmt.Errorf("netnstest: %w", err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			runtime.UnlockOSThread() // setns failed: the thread did not move
			errc <- fmt.Errorf("netnstest: setns %s: %w", nd.NS, err)
			return
		}
		err = fn()
		if rerr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); rerr == nil {
			runtime.UnlockOSThread()
		} else if err == nil {
			err = fmt.Errorf("netnstest: back from %s: %w", nd.NS, rerr)
		}
		errc <- err
	}()
	return <-errc
}
