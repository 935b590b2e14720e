package object

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/meta"
)

// TestModel runs a seeded random sequence of puts, overwrites, deletes,
// ranged reads, listings, node state changes, bitrot, repairs and garbage
// collections over a few keys, and checks every observation against a model
// map. SHALE_SEED=<n> reruns one sequence; the seed is logged on failure.
func TestModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SHALE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SHALE_SEED: %v", err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: rerun with SHALE_SEED=%d go test -run TestModel ./object/", seed, seed)
		}
	})
	ops := 300
	if testing.Short() {
		ops = 100
	}
	runModel(t, seed, ops)
}

func runModel(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	cfg := testConfig()
	var rseed [32]byte
	for i := range rseed {
		rseed[i] = byte(rng.Uint32())
	}
	cfg.Rand = rand.NewChaCha8(rseed)
	h := newHarness(t, 7, cfg)
	const bs, k = 4096, 4
	keys := []string{"a", "b", "c/d", "c/e"}
	model := map[string][]byte{}
	corrupt := map[string]bool{} // "node/shard" with bitrot
	sizes := []int{0, 1, bs - 1, bs, bs + 1, k*bs - 1, k*bs + 1}

	downCount := func() int {
		n := 0
		for _, id := range h.ids {
			if h.state(id) != cluster.Up {
				n++
			}
		}
		return n
	}
	// healthy counts the shards of a segment that are placed, on a readable
	// node, present and not rotted.
	healthy := func(seg meta.Segment) int {
		n := 0
		for _, r := range seg.Shards {
			if r.Node == "" || !h.state(r.Node).Readable() || corrupt[string(r.Node)+"/"+r.ID] {
				continue
			}
			if _, err := h.stores[r.Node].mem.Stat(h.ctx, r.ID); err != nil {
				continue
			}
			n++
		}
		return n
	}

	for op := 0; op < ops; op++ {
		key := keys[rng.IntN(len(keys))]
		switch p := rng.IntN(100); {
		case p < 30: // put or overwrite
			size := sizes[rng.IntN(len(sizes))]
			if rng.IntN(3) == 0 {
				size = rng.IntN(3*k*bs + 100)
			}
			data := pattern(rng.Uint64(), size)
			m, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: key, Body: bytes.NewReader(data), Size: int64(size)})
			placeable := len(h.ids) - downCount()
			switch {
			case placeable < cfg.K+1:
				if !errors.Is(err, ErrNoPlacement) {
					t.Fatalf("op %d: put %s with %d placeable nodes: %v", op, key, placeable, err)
				}
			case err != nil:
				t.Fatalf("op %d: put %s (%d bytes): %v", op, key, size, err)
			default:
				if m.ETag != md5hex(data) || m.Size != int64(size) {
					t.Fatalf("op %d: put %s: manifest %+v", op, key, m)
				}
				model[key] = data
			}
		case p < 40: // delete
			if err := h.c.DeleteObject(h.ctx, testBucket, key); err != nil {
				t.Fatalf("op %d: delete %s: %v", op, key, err)
			}
			delete(model, key)
		case p < 70: // head + ranged read
			m, err := h.c.HeadObject(h.ctx, testBucket, key)
			want, ok := model[key]
			if !ok {
				if !errors.Is(err, meta.ErrNoSuchKey) {
					t.Fatalf("op %d: head of absent %s: %v", op, key, err)
				}
				continue
			}
			if err != nil || m.ETag != md5hex(want) || m.Size != int64(len(want)) {
				t.Fatalf("op %d: head %s: %v %+v", op, key, err, m)
			}
			off := rng.Int64N(int64(len(want)) + 1)
			n := rng.Int64N(int64(len(want)) - off + 1)
			if rng.IntN(3) == 0 {
				off, n = 0, int64(len(want))
			}
			got, err := h.read(m, off, n)
			readable := healthy(m.Segments[0]) >= m.Segments[0].K
			switch {
			case err == nil:
				if !bytes.Equal(got, want[off:off+n]) {
					t.Fatalf("op %d: read %s [%d,+%d): wrong bytes", op, key, off, n)
				}
			case readable:
				t.Fatalf("op %d: read %s [%d,+%d) with %d healthy shards: %v", op, key, off, n, healthy(m.Segments[0]), err)
			case !errors.Is(err, ErrUnreadable):
				t.Fatalf("op %d: unreadable %s: %v, want ErrUnreadable", op, key, err)
			}
		case p < 75: // list
			lr, err := h.c.ListObjects(h.ctx, testBucket, meta.ListOptions{Limit: 100})
			if err != nil {
				t.Fatalf("op %d: list: %v", op, err)
			}
			var want []string
			for k := range model {
				want = append(want, k)
			}
			sort.Strings(want)
			var got []string
			for _, o := range lr.Objects {
				got = append(got, o.Key)
				if o.ETag != md5hex(model[o.Key]) || o.Size != int64(len(model[o.Key])) {
					t.Fatalf("op %d: list entry %+v", op, o)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("op %d: list %v, want %v", op, got, want)
			}
		case p < 85: // a node goes down or comes back (at most two down)
			id := h.ids[rng.IntN(len(h.ids))]
			switch {
			case h.state(id) != cluster.Up:
				h.setState(id, cluster.Up)
			case downCount() < 2:
				h.setState(id, cluster.Down)
			}
		case p < 90: // bitrot in one shard of the current version
			m, err := h.c.HeadObject(h.ctx, testBucket, key)
			if err != nil {
				continue
			}
			seg := m.Segments[0]
			r := seg.Shards[rng.IntN(len(seg.Shards))]
			if r.Node == "" || r.Size <= erasure.RecordHeaderSize {
				continue
			}
			if err := h.stores[r.Node].mem.Corrupt(r.ID, erasure.RecordHeaderSize+rng.Int64N(r.Size-erasure.RecordHeaderSize)); err != nil {
				t.Fatalf("op %d: corrupt: %v", op, err)
			}
			corrupt[string(r.Node)+"/"+r.ID] = true
		case p < 95: // repair with what meta was told
			bad, err := h.store.BadReports(h.ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			var mine []meta.BadShard
			for _, b := range bad {
				if b.Key == key {
					mine = append(mine, b)
				}
			}
			res, err := h.c.RepairObject(h.ctx, testBucket, key, mine, nil)
			if _, ok := model[key]; !ok {
				if !errors.Is(err, meta.ErrNoSuchKey) {
					t.Fatalf("op %d: repair of absent %s: %v", op, key, err)
				}
				continue
			}
			if err != nil && !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrNoPlacement) {
				t.Fatalf("op %d: repair %s: %+v %v", op, key, res, err)
			}
		default: // collect everything due
			h.clock.Advance(time.Hour)
			h.collect()
		}
	}
	// Finally: every key in the model reads back once every node is up, and
	// garbage collection never took a live shard.
	for _, id := range h.ids {
		h.setState(id, cluster.Up)
	}
	h.clock.Advance(time.Hour)
	h.collect()
	for key, want := range model {
		m, err := h.c.HeadObject(h.ctx, testBucket, key)
		if err != nil {
			t.Fatalf("final head %s: %v", key, err)
		}
		for _, r := range m.Segments[0].Shards {
			if r.Node == "" {
				continue
			}
			if _, err := h.stores[r.Node].mem.Stat(h.ctx, r.ID); err != nil {
				t.Fatalf("final: live shard %s of %s gone: %v", r.ID, key, err)
			}
		}
		got, err := h.read(m, 0, m.Size)
		if healthy(m.Segments[0]) >= m.Segments[0].K && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("final read %s: %v", key, err)
		}
	}
}

// TestConcurrentOverwritesNeverMix has writers overwrite one key while
// readers read whatever manifest they got: every read must be exactly one
// written version, matching its manifest's ETag.
func TestConcurrentOverwritesNeverMix(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	const writers, versions, readers = 3, 4, 3
	payloads := map[string][]byte{}
	for w := range writers {
		for v := range versions {
			data := pattern(uint64(1000+w*versions+v), 2*4*4096+w*100+v)
			payloads[md5hex(data)] = data
		}
	}
	h.put("hot", pattern(1000, 2*4*4096))
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range versions {
				data := pattern(uint64(1000+w*versions+v), 2*4*4096+w*100+v)
				if _, err := h.c.PutObject(h.ctx, PutInput{Bucket: testBucket, Key: "hot", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for range readers {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m, err := h.c.HeadObject(h.ctx, testBucket, "hot")
				if err != nil {
					errs <- err
					return
				}
				var buf bytes.Buffer
				if err := h.c.ReadObject(h.ctx, &buf, m, 0, m.Size); err != nil {
					errs <- err
					return
				}
				if want, ok := payloads[m.ETag]; ok && !bytes.Equal(buf.Bytes(), want) || md5hex(buf.Bytes()) != m.ETag {
					errs <- fmt.Errorf("read of version %s mixes versions", m.VersionID)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
