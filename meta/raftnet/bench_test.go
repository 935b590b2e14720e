package raftnet_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkCommitThreeReplicas: commits on the leader of three replicas
// over loopback TCP from 1 and 32 concurrent clients, with the HMAC-framed
// stream and with mutual TLS.
func BenchmarkCommitThreeReplicas(b *testing.B) {
	for _, mode := range []string{"hmac", "tls"} {
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/c=%d", mode, clients), func(b *testing.B) {
				var pairs []tlsPair
				if mode == "tls" {
					pairs = issue(b, b.TempDir(), "m0", "m1", "m2")
				}
				c := newTCPCluster(b, 3, pairs)
				l := c.leader(b)
				if err := l.CreateBucket(ctx, "b", ""); err != nil {
					b.Fatal(err)
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for w := 0; w < clients; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								return
							}
							if _, err := l.Commit(ctx, manifest(fmt.Sprintf("k%d", i))); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			})
		}
	}
}
