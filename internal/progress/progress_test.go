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

func TestMinRateAllowance(t *testing.T) {
	r := MinRate{BytesPerSec: 1000, Grace: 2 * time.Second}
	if d, ok := r.Allowance(0, 0); !ok || d != 2*time.Second {
		t.Fatalf("no bytes, no wait: allowance %v", d)
	}
	if d, _ := r.Allowance(3000, time.Second); d != 4*time.Second {
		t.Fatalf("3000 bytes at 1000 B/s after 1s: allowance %v, want 4s", d)
	}
	if d, _ := r.Allowance(10, 10*time.Second); d > 0 {
		t.Fatalf("a trickle of 10 bytes in 10s still has %v", d)
	}
	if _, ok := (MinRate{}).Allowance(10, 0); ok {
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
