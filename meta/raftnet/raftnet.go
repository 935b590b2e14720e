package raftnet

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/internal/peerauth"
)

// ErrHandshake: a connection failed the handshake (wrong secret, a
// recorded handshake, a wrong target address, a malformed or truncated
// exchange). Dial wraps it; on the listening side the connection is closed.
var ErrHandshake = errors.New("raftnet: handshake refused")

// Config configures a Layer.
type Config struct {
	// Secret is the cluster secret (at least peerauth.MinSecretLen bytes).
	// Required.
	Secret []byte
	// ID is this replica's raft server id, sent in every handshake.
	// Required.
	ID string
	// Advertise is the address the other replicas dial to reach this one
	// (its raft.ServerAddress); a dialer that names another is refused.
	// Default: the listener's address, which must then not be unspecified
	// (0.0.0.0 or ::).
	Advertise string
	// ServerTLS and ClientTLS turn on TLS (both or neither): ServerTLS for
	// accepted connections, ClientTLS for dialled ones — mutual TLS with the
	// cluster CA (clustertls.ServerConfig / ClientConfig). The handshake
	// runs inside TLS.
	ServerTLS, ClientTLS *tls.Config
	// HandshakeTimeout bounds the TLS and HMAC handshakes of one
	// connection. Default 5s.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the accepted connections handshaking at once;
	// beyond it new connections are closed at once. Default 64.
	MaxHandshakes int
}

const (
	magic    = "SHRAFT01"
	nonceLen = 32
	macLen   = sha256.Size
	maxName  = 255
	accepted = 0x01
)

// Layer is an authenticated raft.StreamLayer. Safe for concurrent use.
type Layer struct {
	ln  net.Listener
	cfg Config
	key []byte

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	sem       chan struct{}
	refused   atomic.Uint64
}

var _ raft.StreamLayer = (*Layer)(nil)

// Listen listens on addr (TCP) and returns a Layer over it.
func Listen(addr string, cfg Config) (*Layer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftnet: listen %s: %w", addr, err)
	}
	l, err := New(ln, cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return l, nil
}

// New returns a Layer accepting on ln, which it owns (Close closes it).
func New(ln net.Listener, cfg Config) (*Layer, error) {
	if len(cfg.Secret) < peerauth.MinSecretLen {
		return nil, fmt.Errorf("raftnet: %w", peerauth.ErrShortSecret)
	}
	if cfg.ID == "" || len(cfg.ID) > maxName {
		return nil, errors.New("raftnet: Config.ID must be 1-255 bytes")
	}
	if (cfg.ServerTLS == nil) != (cfg.ClientTLS == nil) {
		return nil, errors.New("raftnet: set both ServerTLS and ClientTLS, or neither")
	}
	if cfg.Advertise == "" {
		ta, ok := ln.Addr().(*net.TCPAddr)
		if !ok || ta.IP == nil || ta.IP.IsUnspecified() {
			return nil, fmt.Errorf("raftnet: listener address %s is not advertisable: set Config.Advertise", ln.Addr())
		}
		cfg.Advertise = ta.String()
	}
	if len(cfg.Advertise) > maxName {
		return nil, errors.New("raftnet: Config.Advertise over 255 bytes")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = 64
	}
	if cfg.ServerTLS != nil {
		ln = tls.NewListener(ln, cfg.ServerTLS)
	}
	m := hmac.New(sha256.New, cfg.Secret)
	m.Write([]byte("shale raft handshake v1"))
	l := &Layer{
		ln:    ln,
		cfg:   cfg,
		key:   m.Sum(nil),
		conns: make(chan net.Conn),
		done:  make(chan struct{}),
		sem:   make(chan struct{}, cfg.MaxHandshakes),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr is the advertised address (net.Listener).
func (l *Layer) Addr() net.Addr { return advertised(l.cfg.Advertise) }

// Refused counts the accepted connections closed for failing the
// handshake (or for arriving while MaxHandshakes were in progress).
func (l *Layer) Refused() uint64 { return l.refused.Load() }

type advertised string

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return string(a) }

// Accept returns the next connection that completed the handshake
// (net.Listener). After Close it returns an error wrapping net.ErrClosed.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("raftnet: accept: %w", net.ErrClosed)
	}
}

// Close stops accepting, closes the listener and waits for the handshakes
// in progress to end. Connections already returned stay open.
func (l *Layer) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

func (l *Layer) acceptLoop() {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// A transient failure (out of file descriptors …): back off.
			t := time.NewTimer(backoff)
			select {
			case <-l.done:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case l.sem <- struct{}{}:
		default:
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.wg.Add(1)
		raw := c
		go func() {
			defer l.wg.Done()
			defer func() { <-l.sem }()
			c, err := l.serverHandshake(c)
			if err != nil {
				l.refused.Add(1)
				_ = raw.Close()
				return
			}
			select {
			case l.conns <- c:
			case <-l.done:
				_ = c.Close()
			}
		}()
	}
}

// Dial connects to a replica's advertised address and runs the handshake
// (raft.StreamLayer), both bounded by timeout (or HandshakeTimeout when
// that is zero or larger).
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 || timeout > l.cfg.HandshakeTimeout {
		timeout = l.cfg.HandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raftnet: dial %s: %w", address, err)
	}
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if l.cfg.ClientTLS != nil {
		tc := l.cfg.ClientTLS.Clone()
		if tc.ServerName == "" {
			host, _, _ := net.SplitHostPort(string(address))
			tc.ServerName = host
		}
		tlsConn := tls.Client(c, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("raftnet: dial %s: TLS: %w", address, err)
		}
		c = tlsConn
	}
	keys, err := l.clientHandshake(c, string(address))
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raftnet: dial %s: %w", address, err)
	}
	_ = c.SetDeadline(time.Time{})
	if l.cfg.ClientTLS == nil {
		return newFrameConn(c, keys.dialer, keys.listener), nil
	}
	return c, nil
}

// mac is the HMAC under the handshake key of role and the transcript.
func (l *Layer) mac(role string, nd, nl []byte, dialer, target, listener string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(role))
	m.Write([]byte{0})
	m.Write([]byte(magic))
	m.Write(nd)
	m.Write(nl)
	for _, s := range []string{dialer, target, listener} {
		var n [2]byte
		binary.BigEndian.PutUint16(n[:], uint16(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

// streamKeys are the MAC keys of a connection's two directions: what the
// dialer writes and what the listener writes.
type streamKeys struct{ dialer, listener []byte }

func (l *Layer) streamKeys(nd, nl []byte, dialer, target, listener string) streamKeys {
	return streamKeys{
		dialer:   l.mac("stream D", nd, nl, dialer, target, listener),
		listener: l.mac("stream L", nd, nl, dialer, target, listener),
	}
}

func (l *Layer) clientHandshake(c net.Conn, target string) (streamKeys, error) {
	if len(target) > maxName {
		return streamKeys{}, fmt.Errorf("%w: address over %d bytes", ErrHandshake, maxName)
	}
	nd := make([]byte, nonceLen)
	if _, err := rand.Read(nd); err != nil {
		return streamKeys{}, err
	}
	var hello bytes.Buffer
	hello.WriteString(magic)
	hello.Write(nd)
	putName(&hello, l.cfg.ID)
	putName(&hello, target)
	if _, err := c.Write(hello.Bytes()); err != nil {
		return streamKeys{}, fmt.Errorf("%w: sending hello: %v", ErrHandshake, err)
	}
	nl := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, nl); err != nil {
		return streamKeys{}, fmt.Errorf("%w: reading challenge: %v", ErrHandshake, err)
	}
	listener, err := readName(c)
	if err != nil {
		return streamKeys{}, fmt.Errorf("%w: reading challenge: %v", ErrHandshake, err)
	}
	got := make([]byte, macLen)
	if _, err := io.ReadFull(c, got); err != nil {
		return streamKeys{}, fmt.Errorf("%w: reading challenge: %v", ErrHandshake, err)
	}
	if !hmac.Equal(got, l.mac("L", nd, nl, l.cfg.ID, target, listener)) {
		return streamKeys{}, fmt.Errorf("%w: %s (%q) does not know the cluster secret", ErrHandshake, target, listener)
	}
	if _, err := c.Write(l.mac("D", nd, nl, l.cfg.ID, target, listener)); err != nil {
		return streamKeys{}, fmt.Errorf("%w: sending proof: %v", ErrHandshake, err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0] != accepted {
		return streamKeys{}, fmt.Errorf("%w: %s (%q) did not accept our proof", ErrHandshake, target, listener)
	}
	return l.streamKeys(nd, nl, l.cfg.ID, target, listener), nil
}

func (l *Layer) serverHandshake(c net.Conn) (net.Conn, error) {
	_ = c.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
	}
	head := make([]byte, len(magic)+nonceLen)
	if _, err := io.ReadFull(c, head); err != nil {
		return nil, err
	}
	if string(head[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not a shale raft handshake", ErrHandshake)
	}
	nd := head[len(magic):]
	dialer, err := readName(c)
	if err != nil {
		return nil, err
	}
	target, err := readName(c)
	if err != nil {
		return nil, err
	}
	if target != l.cfg.Advertise {
		return nil, fmt.Errorf("%w: dialer meant %q, this is %q", ErrHandshake, target, l.cfg.Advertise)
	}
	nl := make([]byte, nonceLen)
	if _, err := rand.Read(nl); err != nil {
		return nil, err
	}
	var ch bytes.Buffer
	ch.Write(nl)
	putName(&ch, l.cfg.ID)
	ch.Write(l.mac("L", nd, nl, dialer, target, l.cfg.ID))
	if _, err := c.Write(ch.Bytes()); err != nil {
		return nil, err
	}
	got := make([]byte, macLen)
	if _, err := io.ReadFull(c, got); err != nil {
		return nil, err
	}
	if !hmac.Equal(got, l.mac("D", nd, nl, dialer, target, l.cfg.ID)) {
		return nil, fmt.Errorf("%w: %q does not know the cluster secret", ErrHandshake, dialer)
	}
	if _, err := c.Write([]byte{accepted}); err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	if l.cfg.ServerTLS == nil {
		k := l.streamKeys(nd, nl, dialer, target, l.cfg.ID)
		return newFrameConn(c, k.listener, k.dialer), nil
	}
	return c, nil
}

func putName(b *bytes.Buffer, s string) {
	b.WriteByte(byte(len(s)))
	b.WriteString(s)
}

func readName(r io.Reader) (string, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", err
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}
