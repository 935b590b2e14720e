package object

import (
	"bytes"
	"errors"
	"io"
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

// TestGuardTakesBudgetBackAtEndOfBody: a PUT whose client was slow gives its
// reservation back, and takes it again when the body ends even if less
// than a stripe came after the pause, so its last, partial stripe is not
// coded outside the budget.
func TestGuardTakesBudgetBackAtEndOfBody(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	c := h.c
	c.mem = newBudget(1 << 20)
	c.cfg.ClientYield = 20 * time.Millisecond
	l, err := c.lease(h.ctx, 1000, ownMemory)
	if err != nil {
		t.Fatal(err)
	}
	defer l.end()
	g := c.guard(h.ctx, l, ownMemory, 1<<20)
	defer g.stop()
	if _, err := g.do(func() (int, error) { time.Sleep(100 * time.Millisecond); return 10, nil }); err != nil {
		t.Fatal(err)
	}
	if used, _, _ := c.mem.state(); used != 0 {
		t.Fatalf("after a slow read %d bytes are still reserved, want 0 (suspended)", used)
	}
	if _, err := g.do(func() (int, error) { return 5, io.EOF }); err != io.EOF {
		t.Fatalf("end of body: %v", err)
	}
	if used, _, _ := c.mem.state(); used != 1000 {
		t.Fatalf("at the end of the body %d bytes are reserved, want 1000: the last stripe would be coded outside the budget", used)
	}
}
