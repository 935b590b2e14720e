package replicated

import (
	"testing"
	"time"
)

// TestLeaseBookkeeping: a confirmation grants a lease for its term only; a
// leadership transfer suspends it, and a confirmation that overlapped a
// transfer grants none, even once the transfer is over.
func TestLeaseBookkeeping(t *testing.T) {
	n := &Node{cfg: Config{ReadLease: time.Hour, HeartbeatTimeout: time.Second, ElectionTimeout: time.Second}}
	if n.leased(1) {
		t.Fatal("leased before any confirmation")
	}
	n.extendLease(1, time.Now(), n.transferEpoch.Load())
	if !n.leased(1) || n.leased(2) {
		t.Fatal("a confirmation in term 1 must lease term 1 only")
	}
	end := n.beginTransfer()
	if n.leased(1) {
		t.Fatal("leased during a transfer")
	}
	n.extendLease(1, time.Now(), n.transferEpoch.Load())
	if n.leased(1) {
		t.Fatal("a confirmation during a transfer granted a lease")
	}
	before := n.transferEpoch.Load()
	end()
	n.extendLease(1, time.Now(), before)
	if n.leased(1) {
		t.Fatal("a confirmation that began during a transfer granted a lease after it")
	}
	n.extendLease(1, time.Now(), n.transferEpoch.Load())
	if n.leased(1) {
		t.Fatal("a lease right after a transfer ended, while its election may still win")
	}
	n.noLeaseUntil = time.Now().Add(-time.Millisecond) // the cool-down is over
	n.extendLease(1, time.Now(), n.transferEpoch.Load())
	if !n.leased(1) {
		t.Fatal("no lease after the transfer's cool-down")
	}
	off := &Node{cfg: Config{ReadLease: -1}}
	off.extendLease(1, time.Now(), 0)
	if off.leased(1) {
		t.Fatal("leased with ReadLease < 0")
	}
	old := &Node{cfg: Config{ReadLease: time.Millisecond}}
	old.extendLease(1, time.Now().Add(-time.Second), 0)
	if old.leased(1) {
		t.Fatal("a lease outlived ReadLease from the confirmation's start")
	}
}
