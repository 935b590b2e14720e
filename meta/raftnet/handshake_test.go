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
	if err := dialer.clientHandshake(rec, addr); err != nil {
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
	err = dialer.clientHandshake(c, "10.9.9.9:7001")
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
