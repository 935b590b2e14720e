package erasure

import "testing"

// Summer over the checksums RecordChecksum reads from a stream's headers
// gives the stream's summary, as Verifier and Encode report it.
func TestSummerMatchesVerifier(t *testing.T) {
	c, err := New(3, 2, 128)
	if err != nil {
		t.Fatal(err)
	}
	src := pattern(7, 5*3*128+70)
	streams, res := encodeAll(t, c, src)
	for i, s := range streams {
		var sm Summer
		for pos := 0; pos < len(s); pos += int(c.recordSize()) {
			sm.Add(RecordChecksum(s[pos:]))
		}
		if sm.Sum() != res.Summaries[i] {
			t.Fatalf("shard %d: summer %016x, encode %016x", i, sm.Sum(), res.Summaries[i])
		}
	}
	var empty Summer
	if empty.Sum() != SummaryOf(nil) {
		t.Fatal("empty summer differs from SummaryOf(nil)")
	}
}
