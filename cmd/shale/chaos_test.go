package main

import (
	"bytes"
	"testing"
)

// TestChaosPlanObjects: the verification set is a function of the seed,
// within the size bounds, with the multipart objects large enough for two
// parts (5 MiB and the rest), and payloads are reproducible per object.
func TestChaosPlanObjects(t *testing.T) {
	const n, mp, maxSize = 200, 3, 256 << 10
	a := chaosPlanObjects(42, n, mp, maxSize)
	b := chaosPlanObjects(42, n, mp, maxSize)
	c := chaosPlanObjects(43, n, mp, maxSize)
	if len(a) != n {
		t.Fatalf("%d objects, want %d", len(a), n)
	}
	same, keys, multipart := true, map[string]bool{}, 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 twice: object %d is %+v, then %+v", i, a[i], b[i])
		}
		same = same && a[i] == c[i]
		if keys[a[i].key] {
			t.Fatalf("key %s twice", a[i].key)
		}
		keys[a[i].key] = true
		switch {
		case a[i].multipart:
			multipart++
			if a[i].size <= 5<<20 || a[i].size > 5<<20+1+maxSize {
				t.Errorf("multipart %s: %d bytes, want more than 5 MiB and at most 5 MiB+1+max", a[i].key, a[i].size)
			}
		case a[i].size < 0 || a[i].size > maxSize:
			t.Errorf("%s: %d bytes, want 0..%d", a[i].key, a[i].size, maxSize)
		}
	}
	if same {
		t.Error("seeds 42 and 43 gave the same set")
	}
	if multipart != mp {
		t.Errorf("%d multipart objects, want %d", multipart, mp)
	}
	if p, q := chaosPayload(42, 7, 1000), chaosPayload(42, 7, 1000); !bytes.Equal(p, q) {
		t.Error("payload of object 7 differs between two calls")
	}
	if p, q := chaosPayload(42, 7, 1000), chaosPayload(42, 8, 1000); bytes.Equal(p, q) {
		t.Error("objects 7 and 8 have the same payload")
	}
}
