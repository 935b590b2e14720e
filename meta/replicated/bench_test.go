package replicated_test

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/replicated"
)

// BenchmarkCommit measures meta commit latency (a manifest of 2+1 shards,
// each commit a new key) with 1 and 3 replicas over raft (in-process
// transport: the numbers are the log's fsync and raft's pipeline, not a
// network) and with the single-process store, from 1 and 32 concurrent
// clients. It reports p50 and p99 latency and commits per second.
func BenchmarkCommit(b *testing.B) {
	for _, c := range []int{1, 32} {
		b.Run(fmt.Sprintf("local/c=%d", c), func(b *testing.B) {
			s, err := meta.Open(meta.Config{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			benchCommits(b, s, c)
		})
		for _, r := range []int{1, 3} {
			b.Run(fmt.Sprintf("raft=%d/c=%d", r, c), func(b *testing.B) {
				cl := newCluster(b, r, func(cfg *replicated.Config) {
					cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
				})
				benchCommits(b, cl.leader(), c)
			})
		}
	}
}

func benchCommits(b *testing.B, s meta.Service, workers int) {
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				key := fmt.Sprintf("k%09d", i)
				t0 := time.Now()
				if _, err := s.Commit(ctx, manifest("b", key, key)); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/el.Seconds(), "commits/s")
}

// BenchmarkLogStoreAppend measures one synced StoreLogs of 1 or 32
// entries of 512 bytes, as raft's leader and followers call it (one
// writer; raft gathers the entries proposed meanwhile into one call).
func BenchmarkLogStoreAppend(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := replicated.OpenLogStore(nil, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			data := make([]byte, 512)
			next := uint64(1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				logs := make([]*raft.Log, batch)
				for j := range logs {
					logs[j] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data}
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLinearizableRead measures Get on the leader of 3 replicas from
// 32 readers, alone and while 8 writers commit.
func BenchmarkLinearizableRead(b *testing.B) {
	for _, writers := range []int{0, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			cl := newCluster(b, 3, func(cfg *replicated.Config) {
				cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
			})
			l := cl.leader()
			if err := l.CreateBucket(ctx, "b", ""); err != nil {
				b.Fatal(err)
			}
			if _, err := l.Commit(ctx, manifest("b", "k", "k")); err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						key := fmt.Sprintf("w%d-%d", w, i)
						_, _ = l.Commit(ctx, manifest("b", key, key))
					}
				}(w)
			}
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Get(ctx, "b", "k"); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			close(stop)
			wg.Wait()
		})
	}
}
