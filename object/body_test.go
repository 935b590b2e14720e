package object

import (
	"bytes"
	"crypto/md5"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzBodyReader checks the PUT body wrapper: it passes exactly the body
// through and hashes it when the declared size matches (or is unknown), and
// fails with ErrIncompleteBody otherwise — however the body is chunked, and
// whether it hashes what it reads or a stagedBody below it (stripe > 0)
// hashes each stripe it stages.
func FuzzBodyReader(f *testing.F) {
	f.Add([]byte("hello"), int64(5), false, uint8(0))
	f.Add([]byte("hello"), int64(4), true, uint8(0))
	f.Add([]byte("hello"), int64(6), false, uint8(0))
	f.Add([]byte{}, int64(0), false, uint8(0))
	f.Add([]byte{}, int64(-1), true, uint8(0))
	f.Add([]byte("x"), int64(0), false, uint8(0))
	f.Add([]byte("hello, world"), int64(12), true, uint8(5))
	f.Add([]byte("hello, world"), int64(-1), false, uint8(4))
	f.Add([]byte("hello, world"), int64(11), false, uint8(3))
	f.Add([]byte("hello, world"), int64(13), true, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, size int64, oneByte bool, stripe uint8) {
		if size < -1 {
			size = -1
		}
		var r io.Reader = bytes.NewReader(data)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		h := md5.New()
		var br *bodyReader
		if stripe > 0 {
			br = newBodyReader(&stagedBody{r: r, md5: h, bufs: &sizedBufs{}, stripe: int64(stripe), remaining: size}, size, nil)
		} else {
			br = newBodyReader(r, size, h)
		}
		got, err := io.ReadAll(br)
		ok := size < 0 || size == int64(len(data))
		if ok {
			sum := md5.Sum(data)
			if err != nil || !bytes.Equal(got, data) || !bytes.Equal(h.Sum(nil), sum[:]) || br.n != int64(len(data)) {
				t.Fatalf("size %d, %d bytes, stripe %d: got %d bytes, err %v, md5 %x want %x", size, len(data), stripe, len(got), err, h.Sum(nil), sum)
			}
			return
		}
		if !errors.Is(err, ErrIncompleteBody) || !errors.Is(br.err, ErrIncompleteBody) {
			t.Fatalf("size %d, %d bytes, stripe %d: err %v, want ErrIncompleteBody", size, len(data), stripe, err)
		}
		if int64(len(got)) > size {
			t.Fatalf("passed %d bytes through with a declared size of %d", len(got), size)
		}
	})
}
