package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// piecesWriterTo is a body that writes itself in pieces (as the object
// layer's shard pipes do), optionally calling hook before piece i.
type piecesWriterTo struct {
	pieces [][]byte
	hook   func(i int)
	wrote  int // pieces written
}

func (p *piecesWriterTo) Read([]byte) (int, error) {
	panic("Read called: the transport should use WriteTo")
}

func (p *piecesWriterTo) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for i, b := range p.pieces {
		if p.hook != nil {
			p.hook(i)
		}
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			return n, err
		}
		p.wrote++
	}
	return n, nil
}

// TestPutBodies: a body that writes itself is sent through its WriteTo and
// one that cannot is copied; both arrive intact.
func TestPutBodies(t *testing.T) {
	fs := newFake()
	c := NewClient(serve(t, fs, HandlerConfig{}).URL, testNode, secret, nil)
	data := payload(700_000, 3)
	wt := &piecesWriterTo{pieces: [][]byte{data[:24], data[24:300_000], data[300_000:]}}
	if _, err := c.Put(t.Context(), "wt", wt); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(data[:100])
		_, _ = pw.Write(data[100:])
		pw.Close()
	}()
	if _, err := c.Put(t.Context(), "pipe", pr); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, id := range []string{"wt", "pipe"} {
		if got := fs.shards[id]; !bytes.Equal(got, data) {
			t.Fatalf("%s: node got %d bytes, want the %d sent", id, len(got), len(data))
		}
	}
}

// TestPutWriterToHonoursCancel: cancelling ctx while a self-writing body is
// being sent stops it at its next write, the Put fails and the node keeps
// nothing.
func TestPutWriterToHonoursCancel(t *testing.T) {
	fs := newFake()
	c := NewClient(serve(t, fs, HandlerConfig{}).URL, testNode, secret, nil)
	ctx, cancel := context.WithCancel(t.Context())
	data := payload(100_000, 4)
	wt := &piecesWriterTo{pieces: [][]byte{data[:50_000], data[50_000:]}}
	wt.hook = func(i int) {
		if i == 1 {
			cancel()
		}
	}
	if _, err := c.Put(ctx, "cut", wt); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v, want context.Canceled", err)
	}
	if wt.wrote != 1 {
		t.Fatalf("%d pieces written, want 1 (none after the cancel)", wt.wrote)
	}
	fs.mu.Lock()
	_, ok := fs.shards["cut"]
	fs.mu.Unlock()
	if ok {
		t.Fatal("the node kept a shard whose upload was cancelled")
	}
}
