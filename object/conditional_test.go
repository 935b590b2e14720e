package object

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/meta"
)

// TestConditionalCreateRace races PUTs of one key that all require it to
// be absent. A barrier in front of meta's CommitIf holds each until every
// one has passed the early check and stored its shards, so only the check
// at the commit can tell them apart: exactly one commits, the others fail
// with meta.ErrPreconditionFailed and their shards are queued as garbage
// (after a collection only the winner's shards are stored).
func TestConditionalCreateRace(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	const writers = 5
	for round := range 3 {
		key := fmt.Sprintf("race-%d", round)
		var arrived sync.WaitGroup
		arrived.Add(writers)
		release := make(chan struct{})
		h.md.hookMu.Lock()
		h.md.beforeCommitIf = func() {
			arrived.Done()
			<-release
		}
		h.md.hookMu.Unlock()
		go func() {
			arrived.Wait()
			close(release)
		}()

		data := make([][]byte, writers)
		got := make([]meta.Manifest, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			data[i] = pattern(uint64(round*writers+i), 10_000+i)
			wg.Go(func() {
				got[i], errs[i] = h.c.PutObject(h.ctx, PutInput{
					Bucket: testBucket, Key: key, Body: bytes.NewReader(data[i]), Size: int64(len(data[i])),
					If: Precondition{Absent: true},
				})
			})
		}
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both created %s", round, winner, i, key)
			case err == nil:
				winner = i
			case !errors.Is(err, meta.ErrPreconditionFailed):
				t.Fatalf("round %d: writer %d: %v, want a precondition failure", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer created %s: %v", round, key, errs)
		}
		cur, err := h.c.HeadObject(h.ctx, testBucket, key)
		if err != nil {
			t.Fatal(err)
		}
		if cur.VersionID != got[winner].VersionID {
			t.Fatalf("round %d: current version %s, the winner committed %s", round, cur.VersionID, got[winner].VersionID)
		}
		if b := h.mustRead(cur, 0, cur.Size); !bytes.Equal(b, data[winner]) {
			t.Fatalf("round %d: %s does not hold the winner's bytes", round, key)
		}
	}
	h.md.hookMu.Lock()
	h.md.beforeCommitIf = nil
	h.md.hookMu.Unlock()

	// Nothing leaks: every stored shard is live or queued as garbage, and a
	// collection leaves exactly the winners' shards.
	live := map[string]bool{}
	for round := range 3 {
		m, err := h.c.HeadObject(h.ctx, testBucket, fmt.Sprintf("race-%d", round))
		if err != nil {
			t.Fatal(err)
		}
		for r := range liveRefs(m) {
			live[r] = true
		}
	}
	garbage := h.garbage()
	for s := range h.stored() {
		if !live[s] && !garbage[s] {
			t.Fatalf("shard %s of a losing write is neither live nor garbage", s)
		}
	}
	h.clock.Advance(time.Hour)
	h.collect()
	if stored := h.stored(); fmt.Sprint(sortedKeys(stored)) != fmt.Sprint(sortedKeys(live)) {
		t.Fatalf("after collection stored %d shards, live %d:\n%v\n%v", len(stored), len(live), sortedKeys(stored), sortedKeys(live))
	}
}

// TestConditionalWrites: the early refusals (nothing stored), If-Match
// replacing and refusing, and a conditional completion that leaves the
// upload completable.
func TestConditionalWrites(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	put := func(key string, data []byte, p Precondition) (meta.Manifest, error) {
		return h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), If: p})
	}
	a, err := put("k", []byte("first"), Precondition{Absent: true})
	if err != nil {
		t.Fatal(err)
	}
	before := h.stored()
	if _, err := put("k", []byte("second"), Precondition{Absent: true}); !errors.Is(err, meta.ErrPreconditionFailed) {
		t.Fatalf("create of an existing key: %v", err)
	}
	if _, err := put("k", []byte("second"), Precondition{ETag: "0123"}); !errors.Is(err, meta.ErrPreconditionFailed) {
		t.Fatalf("replace with a wrong etag: %v", err)
	}
	if _, err := put("nokey", []byte("second"), Precondition{ETag: a.ETag}); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatalf("replace of an absent key: %v", err)
	}
	if _, err := put("k", []byte("second"), Precondition{Absent: true, ETag: a.ETag}); !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("both conditions: %v", err)
	}
	if after := h.stored(); len(after) != len(before) {
		t.Fatalf("refused early, yet %d shards were stored", len(after)-len(before))
	}
	b, err := put("k", []byte("second"), Precondition{ETag: `"` + a.ETag + `"`})
	if err != nil {
		t.Fatalf("replace with the current etag (quoted): %v", err)
	}
	if got := h.mustRead(b, 0, b.Size); string(got) != "second" {
		t.Fatalf("k holds %q", got)
	}

	// A copy's destination, likewise.
	if _, err := h.c.CopyObject(h.ctx, b, PutInput{Bucket: testBucket, Key: "k", If: Precondition{Absent: true}}); !errors.Is(err, meta.ErrPreconditionFailed) {
		t.Fatalf("create-only copy onto an existing key: %v", err)
	}
	if _, err := h.c.CopyObject(h.ctx, b, PutInput{Bucket: testBucket, Key: "copy", If: Precondition{Absent: true}}); err != nil {
		t.Fatalf("create-only copy to a new key: %v", err)
	}

	// A create-only completion on an existing key is refused; the upload
	// stays, and completes once the key is gone.
	u, err := h.c.CreateUpload(h.ctx, meta.Upload{Bucket: testBucket, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.c.UploadPart(h.ctx, u.ID, 1, PutInput{Bucket: testBucket, Key: "k", Body: bytes.NewReader([]byte("part")), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	parts := []CompletePart{{Number: 1, ETag: p.Segment.ETag}}
	if _, err := h.c.CompleteUploadIf(h.ctx, testBucket, "k", u.ID, parts, Precondition{Absent: true}); !errors.Is(err, meta.ErrPreconditionFailed) {
		t.Fatalf("create-only completion over an existing key: %v", err)
	}
	if _, err := h.c.GetUpload(h.ctx, testBucket, "k", u.ID); err != nil {
		t.Fatalf("upload gone after a refused completion: %v", err)
	}
	if err := h.c.DeleteObject(h.ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
	m, err := h.c.CompleteUploadIf(h.ctx, testBucket, "k", u.ID, parts, Precondition{Absent: true})
	if err != nil {
		t.Fatalf("create-only completion of an absent key: %v", err)
	}
	if got := h.mustRead(m, 0, m.Size); string(got) != "part" {
		t.Fatalf("k holds %q", got)
	}
}
