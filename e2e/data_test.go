package e2e

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"
)

// payloadBlock is the unit of payload generation: block i is the ChaCha8
// stream seeded by (seed, i), so any byte range can be made without making
// what comes before it.
const payloadBlock = 64 << 10

// payload is deterministic test content: size bytes that depend only on seed.
// It is an io.ReaderAt; Reader gives a fresh io.ReadSeeker over it, so
// clients that need to rewind (the SDK hashes a body before sending it) can,
// and nothing is ever held in memory whole.
type payload struct {
	seed uint64
	size int64
}

func (p payload) Size() int64 { return p.size }

func (p payload) block(i int64, dst []byte) {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], p.seed)
	binary.LittleEndian.PutUint64(s[8:], uint64(i))
	copy(s[16:], "shale-e2e-data\x00\x00")
	_, _ = rand.NewChaCha8(s).Read(dst) // ChaCha8.Read never fails
}

func (p payload) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("payload: negative offset")
	}
	if off >= p.size {
		return 0, io.EOF
	}
	var buf [payloadBlock]byte
	n := 0
	for n < len(b) && off < p.size {
		bi, within := off/payloadBlock, off%payloadBlock
		p.block(bi, buf[:])
		end := min(int64(payloadBlock), p.size-bi*payloadBlock)
		c := copy(b[n:], buf[within:end])
		n += c
		off += int64(c)
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// Reader returns a new io.ReadSeeker over the whole payload.
func (p payload) Reader() *io.SectionReader { return io.NewSectionReader(p, 0, p.size) }

// Bytes returns n bytes at off (small ranges only).
func (p payload) Bytes(off, n int64) []byte {
	b := make([]byte, n)
	m, _ := p.ReadAt(b, off)
	return b[:m]
}

// sized is content a test compares a response against.
type sized interface {
	io.ReaderAt
	Size() int64
}

// concat is the concatenation of several contents (a multipart object).
type concat []sized

func (c concat) Size() int64 {
	var n int64
	for _, s := range c {
		n += s.Size()
	}
	return n
}

func (c concat) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for _, s := range c {
		if n == len(b) {
			break
		}
		if off >= s.Size() {
			off -= s.Size()
			continue
		}
		m, err := s.ReadAt(b[n:min(len(b), n+int(s.Size()-off))], off)
		n += m
		if err != nil && !errors.Is(err, io.EOF) {
			return n, err
		}
		off = 0
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// section is bytes [off, off+n) of a content.
func section(s sized, off, n int64) sized { return io.NewSectionReader(s, off, n) }

// digests returns hex SHA-256 and MD5 of a content, streaming.
func digests(s sized) (sha, md string) {
	h, m := sha256.New(), md5.New()
	_, _ = io.Copy(io.MultiWriter(h, m), io.NewSectionReader(s, 0, s.Size()))
	return hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(m.Sum(nil))
}

// compareBody reads r to its end and checks it is exactly want: same length,
// same SHA-256; on a difference it names the first differing offset.
func compareBody(r io.Reader, want sized) error {
	const chunk = 1 << 20
	got, exp := make([]byte, chunk), make([]byte, chunk)
	h := sha256.New()
	var off int64
	var firstDiff int64 = -1
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			h.Write(got[:n])
			if firstDiff < 0 && off < want.Size() {
				m, _ := want.ReadAt(exp[:min(int64(n), want.Size()-off)], off)
				if i := firstMismatch(got[:m], exp[:m]); i >= 0 {
					firstDiff = off + int64(i)
				}
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read body at %d: %w", off, err)
		}
	}
	if off != want.Size() {
		return fmt.Errorf("body is %d bytes, want %d (first difference at %d)", off, want.Size(), firstDiff)
	}
	wantSHA, _ := digests(want)
	if gotSHA := hex.EncodeToString(h.Sum(nil)); gotSHA != wantSHA || firstDiff >= 0 {
		return fmt.Errorf("body sha256 %s, want %s (first difference at byte %d)", gotSHA, wantSHA, firstDiff)
	}
	return nil
}

func firstMismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

// writeFile writes a content to a new file.
func writeFile(t testing.TB, path string, s sized) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(s, 0, s.Size())); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// compareFile checks a file holds exactly want.
func compareFile(path string, want sized) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := compareBody(f, want); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// TestPayload checks the generator the other tests rely on: deterministic,
// seekable, seed-dependent, and consistent between ReadAt and streaming.
func TestPayload(t *testing.T) {
	p := payload{seed: 7, size: 3*payloadBlock + 123}
	all, err := io.ReadAll(p.Reader())
	if err != nil || int64(len(all)) != p.size {
		t.Fatalf("read %d bytes, %v; want %d", len(all), err, p.size)
	}
	for _, r := range [][2]int64{{0, 1}, {payloadBlock - 3, 7}, {2*payloadBlock + 5, payloadBlock + 100}, {p.size - 1, 1}} {
		if got := p.Bytes(r[0], r[1]); !bytes.Equal(got, all[r[0]:r[0]+int64(len(got))]) || int64(len(got)) != min(r[1], p.size-r[0]) {
			t.Errorf("Bytes(%d, %d) differs from the stream", r[0], r[1])
		}
	}
	if bytes.Equal(payload{seed: 8, size: 64}.Bytes(0, 64), p.Bytes(0, 64)) {
		t.Error("different seeds gave the same bytes")
	}
	c := concat{payload{1, 10}, payload{2, 0}, payload{3, 5}}
	want := append(payload{1, 10}.Bytes(0, 10), payload{3, 5}.Bytes(0, 5)...)
	got := make([]byte, 15)
	if n, err := c.ReadAt(got, 0); n != 15 || err != nil || !bytes.Equal(got, want) {
		t.Errorf("concat ReadAt = %d, %v", n, err)
	}
	if err := compareBody(bytes.NewReader(want), c); err != nil {
		t.Errorf("compareBody of equal content: %v", err)
	}
	bad := bytes.Clone(want)
	bad[11] ^= 1
	if err := compareBody(bytes.NewReader(bad), c); err == nil {
		t.Error("compareBody accepted a flipped bit")
	}
	if err := compareBody(bytes.NewReader(want[:14]), c); err == nil {
		t.Error("compareBody accepted a short body")
	}
}
