package raftnet

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
)

// ErrTampered: a frame of an authenticated stream failed its MAC (bytes
// changed, dropped, reordered or injected on the way); the connection is
// unusable from then on.
var ErrTampered = errors.New("raftnet: stream tampered with")

// maxFrame is the largest payload of one frame.
const maxFrame = 64 << 10

// frameConn protects a connection's bytes after the handshake when TLS
// does not: each Write is cut into frames of [4-byte length][payload]
// [HMAC-SHA256 of the direction's frame count, the length and the
// payload], under a key per direction derived from the handshake (so from
// both nonces). A frame whose MAC fails ends the stream with ErrTampered.
// It does not encrypt.
type frameConn struct {
	net.Conn

	wmu  sync.Mutex
	wmac hash.Hash
	wseq uint64
	wbuf []byte

	rmu  sync.Mutex
	rmac hash.Hash
	rseq uint64
	rbuf []byte // payload of the current frame not yet read
	rerr error  // sticky read error
	hdr  [4]byte
	body []byte
}

func newFrameConn(c net.Conn, writeKey, readKey []byte) *frameConn {
	return &frameConn{Conn: c, wmac: hmac.New(sha256.New, writeKey), rmac: hmac.New(sha256.New, readKey)}
}

func frameMAC(h hash.Hash, seq uint64, payload []byte) []byte {
	h.Reset()
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], seq)
	binary.BigEndian.PutUint32(b[8:], uint32(len(payload)))
	h.Write(b[:])
	h.Write(payload)
	return h.Sum(nil)
}

func (f *frameConn) Write(p []byte) (int, error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxFrame)
		chunk := p[:n]
		f.wbuf = f.wbuf[:0]
		f.wbuf = binary.BigEndian.AppendUint32(f.wbuf, uint32(n))
		f.wbuf = append(f.wbuf, chunk...)
		f.wbuf = append(f.wbuf, frameMAC(f.wmac, f.wseq, chunk)...)
		if _, err := f.Conn.Write(f.wbuf); err != nil {
			return written, err
		}
		f.wseq++
		written += n
		p = p[n:]
	}
	return written, nil
}

func (f *frameConn) Read(p []byte) (int, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(f.rbuf) == 0 {
		if f.rerr != nil {
			return 0, f.rerr
		}
		f.rerr = f.readFrame()
	}
	n := copy(p, f.rbuf)
	f.rbuf = f.rbuf[n:]
	return n, nil
}

// readFrame reads and checks the next frame into rbuf.
func (f *frameConn) readFrame() error {
	if _, err := io.ReadFull(f.Conn, f.hdr[:]); err != nil {
		return err // io.EOF at a frame boundary is a clean end
	}
	n := binary.BigEndian.Uint32(f.hdr[:])
	if n == 0 || n > maxFrame {
		return fmt.Errorf("%w: frame of %d bytes", ErrTampered, n)
	}
	if cap(f.body) < int(n)+macLen {
		f.body = make([]byte, int(n)+macLen)
	}
	body := f.body[:int(n)+macLen]
	if _, err := io.ReadFull(f.Conn, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	payload, tag := body[:n], body[n:]
	if !hmac.Equal(tag, frameMAC(f.rmac, f.rseq, payload)) {
		return fmt.Errorf("%w: frame %d", ErrTampered, f.rseq)
	}
	f.rseq++
	f.rbuf = payload
	return nil
}
