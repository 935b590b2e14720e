package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// FuzzIngest: ingest (the parser of untrusted uploads) never panics; what it
// accepts has a valid layout, and reading it back — whole, or from any
// record boundary — returns exactly the bytes, verified.
func FuzzIngest(f *testing.F) {
	f.Add(stripes(f, 1, 2))
	f.Add(shardStream(f, 2, 3*tStripeObj+70))
	f.Add(shardStream(f, 3, 1))
	f.Add([]byte{})
	f.Add([]byte("not a shard stream at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		in, err := ingest(context.Background(), "f", bytes.NewReader(b), &out, make([]byte, 97), -1)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("ingest error %v is not a *CorruptError", err)
			}
			return
		}
		if !bytes.Equal(out.Bytes(), b) || !in.lay.valid() || in.lay.size != int64(len(b)) {
			t.Fatalf("accepted %d bytes with layout %+v, copied %d", len(b), in.lay, out.Len())
		}
		for rec := int64(0); rec <= in.lay.records; rec++ {
			off := min(rec*in.lay.recLen, in.lay.size)
			first, end, n, err := in.lay.span(off, -1)
			if err != nil {
				t.Fatalf("span(%d): %v", off, err)
			}
			rs := newRecordStream(context.Background(), "f", bytes.NewReader(b[off:]), nil, in.lay, first, end, n, nil)
			got, err := io.ReadAll(rs)
			if err != nil || !bytes.Equal(got, b[off:]) {
				t.Fatalf("read back from record %d: %v", rec, err)
			}
		}
	})
}
