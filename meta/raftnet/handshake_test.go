package raftnet

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var testSecret = bytes.Repeat([]byte("raft-s3cret-"), 4)

// recConn records what is written to it.
type recConn struct {
	net.Conn
	wrote bytes.Buffer
}

func (r *recConn) Write(p []byte) (int, error) {
	r.wrote.Write(p)
	return r.Conn.Write(p)
}

func listen(t *testing.T, id string) *Layer {
	t.Helper()
	l, err := Listen("127.0.0.1:0", Config{Secret: testSecret, ID: id, HandshakeTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	// Drain accepted connections.
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return l
}

// refusedWithoutAck reads what the server sends after the replayed proof:
// a refused connection is closed with no accept byte.
func refusedWithoutAck(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n == 1 && b[0] == accepted {
		t.Fatal("server accepted the connection")
	}
	if err == nil {
		t.Fatalf("server sent %x instead of closing", b[:n])
	}
}

// TestReplayedHandshakeRefused: the bytes a real dialer sent in a
// successful handshake, played again on a new connection, are refused (the
// listener's fresh nonce changes the MAC it wants).
func TestReplayedHandshakeRefused(t *testing.T) {
	srv := listen(t, "m0")
	dialer := listen(t, "m1")
	addr := srv.Addr().String()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recConn{Conn: raw}
	if _, err := dialer.clientHandshake(rec, addr); err != nil {
		t.Fatalf("real handshake: %v", err)
	}
	raw.Close()
	sent := rec.wrote.Bytes()
	hello, proof := sent[:len(sent)-macLen], sent[len(sent)-macLen:]

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	// The challenge: nonce, id, MAC.
	if _, err := io.ReadFull(c, make([]byte, nonceLen)); err != nil {
		t.Fatal(err)
	}
	if _, err := readName(c); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, macLen)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(proof); err != nil {
		t.Fatal(err)
	}
	refusedWithoutAck(t, c)
	waitRefused(t, srv, 1)
}

// TestHandshakeForAnotherReplicaRefused: a handshake naming another
// address than the listener's is refused before it answers.
func TestHandshakeForAnotherReplicaRefused(t *testing.T) {
	srv := listen(t, "m0")
	dialer := listen(t, "m1")
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, err = dialer.clientHandshake(c, "10.9.9.9:7001")
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("handshake for another address: %v", err)
	}
	waitRefused(t, srv, 1)
}

// TestSilentClientDoesNotBlockAccept: a connection that never speaks does
// not keep a real replica from connecting.
func TestSilentClientDoesNotBlockAccept(t *testing.T) {
	srv := listen(t, "m0")
	dialer := listen(t, "m1")
	silent, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := dialer.Dial(srvAddr(srv), time.Second)
	if err != nil {
		t.Fatalf("dial while a silent client handshakes: %v", err)
	}
	c.Close()
}

func waitRefused(t *testing.T, l *Layer, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Refused() < n {
		if time.Now().After(deadline) {
			t.Fatalf("refused %d connections, want %d", l.Refused(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func srvAddr(l *Layer) raft.ServerAddress { return raft.ServerAddress(l.Addr().String()) }

// flipProxyAt listens on addr and relays TCP connections to target, flipping one bit of the
// dialer→listener stream at byte offset at (negative: relay unchanged).
func flipProxyAt(t *testing.T, addr, target string, at int) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				return
			}
			go func() { _, _ = io.Copy(in, out); in.Close() }()
			go func() {
				buf := make([]byte, 1)
				for off := 0; ; off++ {
					if _, err := in.Read(buf); err != nil {
						out.Close()
						return
					}
					if off == at {
						buf[0] ^= 0x01
					}
					if _, err := out.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln
}

// TestTamperedStreamRefused: without TLS, a bit flipped on the path after
// a good handshake is caught (ErrTampered) instead of reaching raft; the
// control relays the same bytes unchanged and they arrive.
func TestTamperedStreamRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flip   bool
		wantOK bool
	}{{"unchanged", false, true}, {"one bit flipped", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			// The listener advertises the proxy's address: dialers reach it
			// through the proxy.
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			proxyAddr := proxyLn.Addr().String()
			proxyLn.Close()
			srv, err := New(raw, Config{Secret: testSecret, ID: "m0", Advertise: proxyAddr})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			dialer := listen(t, "m1")
			helloLen := len(magic) + nonceLen + 1 + len("m1") + 1 + len(proxyAddr)
			at := -1
			if tc.flip {
				at = helloLen + macLen + 4 + 3 // inside the first frame's payload
			}
			flipProxyAt(t, proxyAddr, raw.Addr().String(), at)
			c, err := dialer.Dial(raft.ServerAddress(proxyAddr), 2*time.Second)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("append entries, term 99")); err != nil {
				t.Fatal(err)
			}
			sc, err := srv.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			_ = sc.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, len("append entries, term 99"))
			n, err := io.ReadFull(sc, buf)
			if tc.wantOK {
				if err != nil || string(buf[:n]) != "append entries, term 99" {
					t.Fatalf("read %q, %v", buf[:n], err)
				}
				return
			}
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("tampered stream: read %q, %v; want ErrTampered", buf[:n], err)
			}
		})
	}
}
