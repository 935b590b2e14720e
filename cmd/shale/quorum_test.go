package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestGatewayRefusesWriteQuorumBelowKPlus1: a quorum of k would acknowledge
// PUTs that one node failure loses, so the gateway refuses to start with
// it, saying why.
func TestGatewayRefusesWriteQuorumBelowKPlus1(t *testing.T) {
	for _, q := range []int{1, 4} {
		err := runGateway(context.Background(), io.Discard, gatewayFlags{k: 4, m: 2, quorum: q})
		if err == nil || !strings.Contains(err.Error(), "--write-quorum") || !strings.Contains(err.Error(), "k+1 = 5") {
			t.Errorf("--write-quorum %d with 4+2: err = %v, want the k+1 refusal", q, err)
		}
	}
	for _, f := range []gatewayFlags{{k: 4, m: 2}, {k: 4, m: 2, quorum: 5}, {k: 4, m: 2, quorum: 6}, {k: 3, m: 0, quorum: 3}} {
		if err := f.validate(); err != nil {
			t.Errorf("k=%d m=%d --write-quorum %d: %v", f.k, f.m, f.quorum, err)
		}
	}
}
