package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/cluster"
)

// TestNodeJoinsRunningCluster: a `shale node` started by hand with the
// cluster's meta addresses, a domain and the cluster secret joins a running
// cluster by itself — it registers, admin status shows it up, and new
// objects are placed on it from the next map epoch (issue 14, "adding
// nodes"). Old objects stay where they are until a rebalancer moves them.
func TestNodeJoinsRunningCluster(t *testing.T) {
	c := startDev(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	epoch := st.Epoch

	// node-7: node-6's arguments with its own id, data dir, port and host.
	args := slices.Clone(c.node(t, "node-6").Args)
	set := func(flag, v string) {
		i := slices.Index(args, flag)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("node-6's args lack %s: %v", flag, args)
		}
		args[i+1] = v
	}
	set("--id", "node-7")
	set("--data", filepath.Join(c.Data, "nodes", "node-7"))
	set("--listen", "127.0.0.1:0")
	set("--host", "host-7")
	c.restart(t, "node-7", args)

	var used0 int64
	c.WaitFor(t, "node-7 up in admin status at a later map epoch", 30*time.Second, func() (bool, string) {
		n, e, err := c.StatusNode("node-7")
		if err != nil {
			return false, err.Error()
		}
		used0 = n.Used
		return n.State == cluster.Up && e > epoch, fmt.Sprintf("node-7 %v at epoch %d (was %d)", n.State, e, epoch)
	})

	// New objects land on it: with 7 nodes and 6 shards per object, about
	// 6 in 7 of these 40 objects have a shard there (Used counts the
	// node's own shard bytes, not the shared file system's).
	bucket := "join"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("shale"), 200_000) // 1 MB: coded 4+2
	for i := range 40 {
		if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprint(i)), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	c.WaitFor(t, "node-7 holds shards of the new objects", 30*time.Second, func() (bool, string) {
		n, _, err := c.StatusNode("node-7")
		if err != nil {
			return false, err.Error()
		}
		// 40 objects × 6/7 of them × ~250 KB: several MB.
		return n.Used >= used0+2<<20, fmt.Sprintf("node-7 used %d, was %d", n.Used, used0)
	})
}
