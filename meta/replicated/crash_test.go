package replicated_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/replicated"
)

// TestCrashAllReplicas crashes every replica while clients commit — each
// replica's filesystem loses every write it had not synced, as after a
// power cut — then restarts them. Every acknowledged commit is there with
// the generation it was acknowledged with (none applied twice, although
// the state machines' unsynced applies were lost and replayed from the
// log), a commit whose reply was lost and that is retried with the same
// request id is applied once, and every replica ends with the same
// keyspace.
func TestCrashAllReplicas(t *testing.T) {
	fss := map[string]*vfs.MemFS{}
	c := newCluster(t, 3, func(cfg *replicated.Config) {
		fs := vfs.NewStrictMem()
		fss[cfg.ID] = fs
		cfg.FS = fs
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.TrailingLogs = 16
	})
	l := c.leader()
	if err := l.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		acked   = map[string]uint64{}
		unknown = map[string]bool{}
		n       atomic.Int64
		wg      sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d-%04d", w, i)
				m, err := l.Commit(meta.WithRequestID(ctx, "req-"+key), manifest("b", key, key))
				mu.Lock()
				if err != nil {
					unknown[key] = true
					mu.Unlock()
					return
				}
				acked[key] = m.Generation
				mu.Unlock()
				n.Add(1)
			}
		}(w)
	}
	for n.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	for i := range c.nodes {
		id := c.cfgs[i].ID
		fss[id].SetIgnoreSyncs(true)
		c.stop(i)
		fss[id].ResetToSyncedState()
		fss[id].SetIgnoreSyncs(false)
	}
	wg.Wait()
	for i := range c.nodes {
		c.start(i)
	}
	l = c.leader()
	checkAcked(t, l, acked)
	// The clients retry what they got no answer for, with the same ids.
	for key := range unknown {
		m, err := l.Commit(meta.WithRequestID(ctx, "req-"+key), manifest("b", key, key))
		if err != nil {
			t.Fatalf("retry %s: %v", key, err)
		}
		again, err := l.Get(ctx, "b", key)
		if err != nil || again.Generation != m.Generation {
			t.Fatalf("retried %s: %v, generation %d, retry said %d", key, err, again.Generation, m.Generation)
		}
		acked[key] = m.Generation
	}
	// Nothing was applied twice: one generation per key, all distinct,
	// and the sequence has no holes a second apply would leave.
	seen := map[uint64]string{}
	var top uint64
	for key, g := range acked {
		if other, dup := seen[g]; dup {
			t.Fatalf("%s and %s share generation %d", key, other, g)
		}
		seen[g] = key
		top = max(top, g)
	}
	if top != uint64(len(acked)) {
		t.Fatalf("%d commits reached generation %d: some were applied twice", len(acked), top)
	}
	c.waitApplied(l.AppliedIndex())
	c.sameKeyspace()
	t.Logf("%d acknowledged before the crash, %d retried after it", n.Load(), len(unknown))
	if _, err := l.Store().Get(ctx, "b", "nope"); !errors.Is(err, meta.ErrNoSuchKey) {
		t.Fatal(err)
	}
}
