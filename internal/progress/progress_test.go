package progress

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchdogExpiresOnceWhenArmedTooLong(t *testing.T) {
	var runs atomic.Int32
	done := make(chan struct{})
	w := New(func() { runs.Add(1); close(done) })
	w.Arm(10 * time.Millisecond)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("armed watchdog never expired")
	}
	if !w.Disarm() || !w.Expired() {
		t.Fatal("Disarm after expiry reports no expiry")
	}
	w.Arm(time.Millisecond) // expired stays expired: no second run
	time.Sleep(20 * time.Millisecond)
	if n := runs.Load(); n != 1 {
		t.Fatalf("action ran %d times, want 1", n)
	}
}

func TestWatchdogDisarmedInTimeNeverFires(t *testing.T) {
	var runs atomic.Int32
	w := New(func() { runs.Add(1) })
	for range 100 {
		w.Arm(50 * time.Millisecond)
		if w.Disarm() {
			t.Fatal("expired although disarmed in time")
		}
	}
	// Time between operations does not count.
	time.Sleep(80 * time.Millisecond)
	if runs.Load() != 0 || w.Expired() {
		t.Fatal("a disarmed watchdog expired")
	}
	w.Arm(10 * time.Millisecond)
	w.Stop()
	time.Sleep(30 * time.Millisecond)
	if runs.Load() != 0 {
		t.Fatal("a stopped watchdog expired")
	}
}

func TestMinRateDeadline(t *testing.T) {
	start := time.Unix(1000, 0)
	r := MinRate{BytesPerSec: 1000, Grace: 2 * time.Second}
	if d, ok := r.Deadline(start, 0); !ok || !d.Equal(start.Add(2*time.Second)) {
		t.Fatalf("no bytes: deadline %v", d)
	}
	if d, _ := r.Deadline(start, 3000); !d.Equal(start.Add(5 * time.Second)) {
		t.Fatalf("3000 bytes at 1000 B/s: deadline %v, want start+5s", d)
	}
	if _, ok := (MinRate{}).Deadline(start, 10); ok {
		t.Fatal("zero rate is a rule")
	}
}

func TestWatchdogResetArmsAgain(t *testing.T) {
	var runs atomic.Int32
	w := New(func() { runs.Add(1) })
	for i := range 3 {
		w.Arm(time.Millisecond)
		for !w.Expired() {
			time.Sleep(time.Millisecond)
		}
		if !w.Disarm() || runs.Load() != int32(i+1) {
			t.Fatalf("round %d: %d runs", i, runs.Load())
		}
		w.Reset()
	}
}
