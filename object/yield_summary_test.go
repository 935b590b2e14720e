package object

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// slowTailWriter takes bytes at once until it has `after` of them, then
// stalls once for longer than ClientYield, as a client whose link slows
// down would.
type slowTailWriter struct {
	buf   bytes.Buffer
	after int
	slept bool
	delay time.Duration
}

func (w *slowTailWriter) Write(p []byte) (int, error) {
	if !w.slept && w.buf.Len() >= w.after {
		w.slept = true
		time.Sleep(w.delay)
	}
	return w.buf.Write(p)
}

// TestLateSummaryMismatchSurvivesAYield: a shard whose summary fails after
// its records were used fails the read even when the decode that found it
// paused for a slow client at that moment (the mismatch used to be dropped
// with the pause, and the read went on to succeed with substituted bytes).
func TestLateSummaryMismatchSurvivesAYield(t *testing.T) {
	for _, after := range []int{2 * 4 * 4096, 2*4*4096 + 2*4096, 2*4*4096 + 3*4096} {
		h := newHarness(t, 6, testConfig())
		data := pattern(23, 3*4*4096)
		m := h.put("three", data)
		ref := m.Segments[0].Shards[0]
		replaceShard(t, h, ref, 0) // the first record of data shard 0
		w := &slowTailWriter{after: after, delay: 300 * time.Millisecond}
		err := h.c.ReadObject(h.ctx, w, m, 0, m.Size)
		if !errors.Is(err, ErrUnreadable) {
			t.Errorf("client slow after %d bytes: err = %v (wrote %d bytes, equal to the object: %v), want ErrUnreadable",
				after, err, w.buf.Len(), bytes.Equal(w.buf.Bytes(), data))
		}
	}
}
