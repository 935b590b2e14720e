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
// fails with ErrIncompleteBody otherwise — however the body is chunked.
func FuzzBodyReader(f *testing.F) {
	f.Add([]byte("hello"), int64(5), false)
	f.Add([]byte("hello"), int64(4), true)
	f.Add([]byte("hello"), int64(6), false)
	f.Add([]byte{}, int64(0), false)
	f.Add([]byte{}, int64(-1), true)
	f.Add([]byte("x"), int64(0), false)
	f.Fuzz(func(t *testing.T, data []byte, size int64, oneByte bool) {
		if size < -1 {
			size = -1
		}
		var r io.Reader = bytes.NewReader(data)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		br := newBodyReader(r, size)
		got, err := io.ReadAll(br)
		ok := size < 0 || size == int64(len(data))
		if ok {
			sum := md5.Sum(data)
			if err != nil || !bytes.Equal(got, data) || !bytes.Equal(br.md5.Sum(nil), sum[:]) || br.n != int64(len(data)) {
				t.Fatalf("size %d, %d bytes: got %d bytes, err %v", size, len(data), len(got), err)
			}
			return
		}
		if !errors.Is(err, ErrIncompleteBody) || !errors.Is(br.err, ErrIncompleteBody) {
			t.Fatalf("size %d, %d bytes: err %v, want ErrIncompleteBody", size, len(data), err)
		}
		if int64(len(got)) > size {
			t.Fatalf("passed %d bytes through with a declared size of %d", len(got), size)
		}
	})
}
