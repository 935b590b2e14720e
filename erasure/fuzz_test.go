package erasure

import (
	"bytes"
	"errors"
	"math/bits"
	"testing"
)

// FuzzRoundTrip encodes data with a small layout, drops or corrupts up to m
// shards, decodes a range and the whole object and compares with the input;
// with more than m damaged shards it accepts only ErrTooFewShards or correct
// bytes (a damaged shard the range never reads does no harm).
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello, shale"), uint8(4), uint8(2), uint8(1), uint16(0b1), uint16(0), uint32(0), uint32(0), uint32(12))
	f.Add(bytes.Repeat([]byte{7}, 3000), uint8(3), uint8(2), uint8(2), uint16(0), uint16(0b10010), uint32(77), uint32(100), uint32(2000))
	f.Add([]byte{}, uint8(1), uint8(0), uint8(1), uint16(0), uint16(0), uint32(0), uint32(0), uint32(0))
	f.Add(bytes.Repeat([]byte("abc"), 700), uint8(10), uint8(4), uint8(1), uint16(0b1111), uint16(0), uint32(5), uint32(64), uint32(1000))
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, data []byte, k, m, bsMul uint8, drop, corrupt uint16, pos, off, length uint32) {
	{
		kk, mm := 1+int(k%12), int(m%5)
		bs := 64 * (1 + int(bsMul%4))
		c, err := New(kk, mm, bs)
		if err != nil {
			t.Fatal(err)
		}
		n := kk + mm
		streams, _ := encodeAll(t, c, data)
		mask := uint16(1)<<n - 1
		drop &= mask
		corrupt &= mask &^ drop
		damaged := bits.OnesCount16(drop) + bits.OnesCount16(corrupt)
		bad := cloneShards(streams)
		for i := 0; i < n; i++ {
			switch {
			case drop&(1<<i) != 0:
				bad[i] = nil
			case corrupt&(1<<i) != 0 && len(bad[i]) > 0:
				bad[i][int(pos)%len(bad[i])] ^= 0x81
			}
		}
		size := int64(len(data))
		o := int64(off) % (size + 1)
		l := int64(length) % (size - o + 1)
		for _, r := range [][2]int64{{0, size}, {o, l}} {
			got, rep, err := decodeAll(t, c, bad, size, r[0], r[1])
			want := data[r[0] : r[0]+r[1]]
			if damaged <= mm {
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%d+%d/%d drop %b corrupt %b range %v: err %v, equal %v", kk, mm, bs, drop, corrupt, r, err, bytes.Equal(got, want))
				}
			} else if err != nil && !errors.Is(err, ErrTooFewShards) {
				t.Fatalf("%d+%d/%d drop %b corrupt %b: unexpected error %v", kk, mm, bs, drop, corrupt, err)
			} else if err == nil && !bytes.Equal(got, want) {
				t.Fatalf("%d+%d/%d drop %b corrupt %b: wrong bytes without error", kk, mm, bs, drop, corrupt)
			}
			for _, fl := range rep.Failures {
				if drop&(1<<fl.Shard) == 0 && corrupt&(1<<fl.Shard) == 0 {
					t.Fatalf("healthy shard %d reported failed: %v", fl.Shard, fl.Err)
				}
				if corrupt&(1<<fl.Shard) != 0 && !fl.Corrupt() {
					t.Fatalf("corrupt shard %d reported as %v", fl.Shard, fl.Err)
				}
			}
		}
		// Every intact stream verifies; every corrupted one does not.
		for i := 0; i < n; i++ {
			if bad[i] == nil {
				continue
			}
			v := NewVerifier(i)
			_, werr := v.Write(bad[i])
			cerr := v.Close()
			if ok := werr == nil && cerr == nil; ok != (corrupt&(1<<i) == 0 || len(bad[i]) == 0) {
				t.Fatalf("shard %d (corrupt %v): verifier %v / %v", i, corrupt&(1<<i) != 0, werr, cerr)
			}
		}
	}
}
