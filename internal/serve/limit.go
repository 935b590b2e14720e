package serve

import (
	"io"
	"net"
	"sync"
)

// limitListener serves at most cap(sem) connections at once, like
// golang.org/x/net/netutil.LimitListener, but a connection that has a
// ReadFrom (a *net.TCPConn) keeps it: net/http copies a response body
// through the connection's ReadFrom, which sends an *os.File with
// sendfile(2), and netutil's wrapper hides it (its connection embeds the
// net.Conn interface only), so every file body would go through a buffer.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

func newLimitListener(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection; the slot is freed
// when the connection is closed.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		// Closed: the listener's own Accept fails at once (a connection
		// it still hands out is closed, as netutil does).
		for {
			c, err := l.Listener.Accept()
			if err != nil {
				return nil, err
			}
			c.Close()
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	lc := &limitedConn{Conn: c, release: func() { <-l.sem }}
	if rf, ok := c.(io.ReaderFrom); ok {
		return &limitedReaderFromConn{limitedConn: lc, rf: rf}, nil
	}
	return lc, nil
}

// Close closes the listener and ends Accepts waiting for a slot.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitedConn frees its listener slot on its first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// limitedReaderFromConn is a limitedConn whose connection has a ReadFrom.
type limitedReaderFromConn struct {
	*limitedConn
	rf io.ReaderFrom
}

func (c *limitedReaderFromConn) ReadFrom(r io.Reader) (int64, error) { return c.rf.ReadFrom(r) }
