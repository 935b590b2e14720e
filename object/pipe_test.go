package object

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
)

// writeAll writes pieces to w in order and closes it.
func writeAll(w *pipeWriter, pieces [][]byte) error {
	for _, p := range pieces {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return w.Close()
}

// TestShardPipeRead: bytes arrive whole and in order through small Reads,
// then io.EOF.
func TestShardPipeRead(t *testing.T) {
	pr, pw := newShardPipe()
	src := pattern(3, 100_000)
	pieces := [][]byte{src[:1], src[1:50_000], {}, src[50_000:]}
	errc := make(chan error, 1)
	go func() { errc <- writeAll(pw, pieces) }()
	got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{pr}, 1<<20)) // hides WriteTo: Read only
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("read %d bytes (equal %v), err %v", len(got), bytes.Equal(got, src), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n, err := pr.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v", n, err)
	}
}

// aliasWriter records whether each Write it got is the writer's own memory.
type aliasWriter struct {
	buf     bytes.Buffer
	aliased []bool
	want    [][]byte
}

func (a *aliasWriter) Write(p []byte) (int, error) {
	i := len(a.aliased)
	a.aliased = append(a.aliased, len(p) > 0 && i < len(a.want) && &p[0] == &a.want[i][0])
	return a.buf.Write(p)
}

// TestShardPipeWriteToNoCopy: WriteTo hands the writer's own slices to its
// destination (no copy), whole and in order, and returns nil at Close.
func TestShardPipeWriteToNoCopy(t *testing.T) {
	pr, pw := newShardPipe()
	pieces := [][]byte{pattern(1, 4000), pattern(2, 70_000), pattern(3, 1)}
	dst := &aliasWriter{want: pieces}
	errc := make(chan error, 1)
	go func() { errc <- writeAll(pw, pieces) }()
	n, err := pr.WriteTo(dst)
	if err != nil || n != 74_001 {
		t.Fatalf("WriteTo: %d, %v", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.buf.Bytes(), bytes.Join(pieces, nil)) {
		t.Fatal("WriteTo delivered other bytes")
	}
	for i, a := range dst.aliased {
		if !a {
			t.Fatalf("write %d reached the destination as a copy", i)
		}
	}
}

// TestShardPipeClose: each end's close error reaches the other end.
func TestShardPipeClose(t *testing.T) {
	boom := errors.New("boom")

	pr, pw := newShardPipe()
	go pw.CloseWithError(boom)
	if _, err := pr.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Fatalf("reader after CloseWithError: %v", err)
	}
	if _, err := pr.WriteTo(io.Discard); !errors.Is(err, boom) {
		t.Fatalf("WriteTo after CloseWithError: %v", err)
	}

	pr, pw = newShardPipe()
	pr.CloseWithError(boom)
	if _, err := pw.Write([]byte("x")); !errors.Is(err, boom) {
		t.Fatalf("writer after the reader's CloseWithError: %v", err)
	}
	pr, pw = newShardPipe()
	pr.CloseWithError(nil)
	if _, err := pw.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("writer after the reader's Close: %v", err)
	}

	// A Write blocked for want of a reader fails when the reader closes.
	pr, pw = newShardPipe()
	errc := make(chan error, 1)
	go func() { _, err := pw.Write([]byte("waiting")); errc <- err }()
	runtime.Gosched()
	pr.CloseWithError(boom)
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("blocked writer: %v", err)
	}
}

// failAfterWriter fails every write after the first.
type failAfterWriter struct {
	n   int
	err error
}

func (f *failAfterWriter) Write(p []byte) (int, error) {
	f.n++
	if f.n > 1 {
		return 0, f.err
	}
	return len(p), nil
}

// TestShardPipeDestinationFails: when WriteTo's destination fails, WriteTo
// returns that error and the writer's Write fails with it too.
func TestShardPipeDestinationFails(t *testing.T) {
	boom := errors.New("connection reset")
	pr, pw := newShardPipe()
	errc := make(chan error, 1)
	go func() { errc <- writeAll(pw, [][]byte{[]byte("one"), []byte("two"), []byte("three")}) }()
	if _, err := pr.WriteTo(&failAfterWriter{err: boom}); !errors.Is(err, boom) {
		t.Fatalf("WriteTo: %v", err)
	}
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("writer: %v", err)
	}
}

// gateWriter blocks its first Write until released, recording that it
// started.
type gateWriter struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.started) })
	<-g.release
	return len(p), nil
}

// TestShardPipeWriteHeldUntilConsumed: a Write whose bytes the reader is
// still writing out does not return, even when the pipe is closed
// meanwhile — the writer's buffer must stay untouched until then.
func TestShardPipeWriteHeldUntilConsumed(t *testing.T) {
	pr, pw := newShardPipe()
	g := &gateWriter{started: make(chan struct{}), release: make(chan struct{})}
	var returned sync.WaitGroup
	returned.Add(1)
	var done bool
	var mu sync.Mutex
	go func() {
		defer returned.Done()
		_, _ = pw.Write([]byte("held"))
		mu.Lock()
		done = true
		mu.Unlock()
	}()
	wtDone := make(chan struct{})
	go func() { _, _ = pr.WriteTo(g); close(wtDone) }()
	<-g.started
	pr.CloseWithError(errors.New("closed while writing"))
	pw.CloseWithError(errors.New("closed while writing"))
	for range 100 {
		runtime.Gosched()
	}
	mu.Lock()
	early := done
	mu.Unlock()
	if early {
		t.Fatal("Write returned while the reader still held its bytes")
	}
	close(g.release)
	returned.Wait()
	<-wtDone
}
