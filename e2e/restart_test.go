package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/cluster"
)

// TestNodeAndMetaRestart covers the operator's side on a small cluster (4
// nodes, 2+1): a crashed node comes back by itself; `shale admin out`, `in`
// and `drain` move a node through its states, and after a drain every
// object is whole without the drained node; a crashed meta stops writes, and
// once it restarts on its data the cluster serves everything again.
func TestNodeAndMetaRestart(t *testing.T) {
	const downAfter = time.Second
	c := startDev(t, opts{nodes: 4, zones: 2, k: 2, m: 1, downAfter: downAfter})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const bucket = "ops"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	want := map[string]sized{}
	put := func(t *testing.T, key string, p payload) {
		t.Helper()
		putObject(ctx, t, c, bucket, key, p)
		want[key] = p
	}
	checkAll := func(t *testing.T) {
		t.Helper()
		for _, k := range slices.Sorted(maps.Keys(want)) {
			checkObject(ctx, t, c, bucket, k, want[k])
		}
	}
	for i := range 6 {
		put(t, fmt.Sprintf("before/%d", i), payload{seed: uint64(700 + i), size: int64(i)<<18 + 11})
	}

	const victim = "node-2"
	t.Run("node-crash-and-return", func(t *testing.T) {
		c.KillNode(t, victim)
		c.WaitNodeState(t, victim, cluster.Down, 20*downAfter)
		checkAll(t)
		c.RestartNode(t, victim)
		c.WaitNodeState(t, victim, cluster.Up, 30*time.Second)
		put(t, "after-return", payload{seed: 710, size: 300 << 10})
		checkAll(t)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("admin-out-in", func(t *testing.T) {
		if _, err := c.Admin("out", victim); err != nil {
			t.Fatal(err)
		}
		c.WaitNodeState(t, victim, cluster.Out, 10*time.Second)
		checkAll(t) // reads go around an out node
		// Repair re-creates the out node's shards on the others.
		c.WaitFor(t, "repair of the out node's shards", 60*time.Second, allWhole(c, len(want)))
		if _, err := c.Admin("in", victim); err != nil {
			t.Fatal(err)
		}
		c.WaitNodeState(t, victim, cluster.Up, 10*time.Second)
		if _, err := c.Admin("out", "node-404"); err == nil {
			t.Error("admin out of an unknown node succeeded")
		}
	})

	t.Run("drain", func(t *testing.T) {
		if _, err := c.Admin("drain", victim); err != nil {
			t.Fatal(err)
		}
		// Draining, then out once its shards have been copied away.
		c.WaitNodeState(t, victim, cluster.Out, 90*time.Second)
		c.WaitFor(t, "every object whole without the drained node", 60*time.Second, allWhole(c, len(want)))
		// With its shards elsewhere, losing the drained node costs nothing.
		c.KillNode(t, victim)
		checkAll(t)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("meta-crash-and-restart", func(t *testing.T) {
		c.KillMeta(t)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.S3.PutObject(wctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("while-meta-down"),
			Body: payload{seed: 720, size: 1000}.Reader()})
		wcancel()
		if err == nil {
			t.Error("a PUT succeeded while meta was down")
		}
		c.RestartMeta(t)
		c.WaitFor(t, "nodes heartbeat to the restarted meta", 30*time.Second, func() (bool, string) {
			st, err := c.Status()
			if err != nil {
				return false, err.Error()
			}
			up := 0
			for _, n := range st.Nodes {
				if n.State == cluster.Up {
					up++
				}
			}
			return up == len(c.File.Nodes)-1, nodeStates(st.Nodes)
		})
		put(t, "after-meta-restart", payload{seed: 721, size: 700 << 10})
		checkAll(t)
		checkListing(t, "listing after meta restart", listAll(ctx, t, c, bucket, ""), want)
	})
}

// allWhole is a WaitFor condition: admin status counts n objects, every one
// of them with all k+m shards healthy.
func allWhole(c *Cluster, n int) func() (bool, string) {
	return func() (bool, string) {
		st, err := c.Status()
		if err != nil {
			return false, err.Error()
		}
		whole := st.ObjectsBySpareShards[c.File.M]
		return st.Objects == int64(n) && whole == int64(n) && len(st.ObjectsBySpareShards) == 1,
			fmt.Sprintf("%d objects, by spare shards %v, repair queue %d", st.Objects, st.ObjectsBySpareShards, st.RepairQueue)
	}
}
