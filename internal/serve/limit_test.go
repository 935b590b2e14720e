package serve

import (
	"io"
	"net"
	"testing"
)

// TestLimitedConnKeepsReadFrom: a TCP connection accepted through the
// connection limit still has the ReadFrom net/http sends files through
// (sendfile), and closing it frees its slot.
func TestLimitedConnKeepsReadFrom(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(base, 1)
	defer ln.Close()
	for i := range 2 { // the second Accept needs the first's slot back
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.(io.ReaderFrom); !ok {
			t.Fatalf("accepted connection %d is a %T, without ReadFrom", i, c)
		}
		c.Close()
		c.Close() // a second Close frees nothing more
		client.Close()
	}
	if len(ln.sem) != 0 {
		t.Fatalf("%d slots held after every connection closed", len(ln.sem))
	}
}
