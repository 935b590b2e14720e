package e2e

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestSmallObjectsKillAndRepair is the kill-and-repair demonstration for
// small objects (issue 13): many objects of a few KiB PUT through the AWS
// SDK into an 8-node, 4-zone, 4+2 dev cluster; the node holding the most
// shard bytes is SIGKILLed and marked out at once; repair must bring every
// object back to whole (m spare shards: at the gateway's default
// --replicate-max these objects are m+1 copies, 1+m coded, each copy inline
// in its node's index) with an empty queue (as `shale admin status` shows
// it) and every object must read back byte for byte with
// that node gone. Its shards are re-created, not found elsewhere: the
// repair loop's counters must have grown by at least one shard per object
// hit, so a repair that did nothing fails here.
func TestSmallObjectsKillAndRepair(t *testing.T) {
	t.Parallel()
	const (
		k, m    = 4, 2
		bucket  = "small"
		objects = 240
		workers = 8
	)
	c := startDev(t, opts{nodes: 8, zones: 4, k: k, m: m})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}

	// Sizes from 1 byte to 8 KiB + 3: below one block, so each is one
	// short stripe whose shards are a few hundred bytes to 2 KiB.
	want := make(map[string]payload, objects)
	for i := range objects {
		size := int64(1 + (i*4099)%(8<<10+3))
		want[fmt.Sprintf("obj/%04d", i)] = payload{seed: uint64(5000 + i), size: size}
	}
	keys := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for key := range keys {
				putObject(ctx, t, c, bucket, key, want[key])
			}
		})
	}
	for key := range want {
		keys <- key
	}
	close(keys)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The victim: the up node holding the most shard bytes.
	before, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if before.Objects != objects || before.ObjectsBySpareShards[m] != objects {
		t.Fatalf("before the kill: %s, want all %d objects whole (%d spare shards)", chaosSummary(before), objects, m)
	}
	if man, err := chaosMetaClient(t, c).Get(ctx, bucket, "obj/0001"); err != nil || man.Segments[0].K != 1 || len(man.Segments[0].Shards) != m+1 {
		t.Fatalf("obj/0001 is not stored as %d copies: %+v, %v", m+1, man.Segments, err)
	}
	victim := ""
	var most int64 = -1
	for _, n := range before.Nodes {
		if n.Used > most {
			victim, most = string(n.ID), n.Used
		}
	}
	var repaired0 int64
	if before.Repair != nil {
		repaired0 = before.Repair.ShardsRepaired
	}
	c.KillNode(t, victim)
	if _, err := c.Admin("out", victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILLed and marked out %s (%d shard bytes)", victim, most)

	// Every object that had a shard there is now below whole (until repair
	// gets to it): count them from the manifests' view, through status.
	hit := int64(0)
	c.WaitFor(t, "status to show the victim's objects degraded", 30*time.Second, func() (bool, string) {
		st, err := c.Status()
		if err != nil {
			return false, err.Error()
		}
		hit = max(hit, st.Objects-st.ObjectsBySpareShards[m])
		if st.Repair != nil {
			// Repair may already have fixed some of them.
			hit = max(hit, st.Repair.ShardsRepaired-repaired0)
		}
		return hit > 0, chaosSummary(st)
	})

	c.WaitFor(t, "every object whole again and an empty repair queue", 90*time.Second, func() (bool, string) {
		st, err := c.Status() // `shale admin status --json`
		if err != nil {
			return false, err.Error()
		}
		return st.Objects == objects && chaosAllHealthy(st, m), chaosSummary(st)
	})
	after, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	if after.Repair == nil || after.Repair.ShardsRepaired-repaired0 < hit {
		t.Fatalf("repair re-created %v shards, but %d objects had one on %s: %s", after.Repair, hit, victim, chaosSummary(after))
	}
	t.Logf("repaired: %s; %d shards re-created for %d objects hit", chaosSummary(after), after.Repair.ShardsRepaired-repaired0, hit)

	// Every object reads back whole, with the victim still dead.
	for key, p := range want {
		out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Errorf("get %s after repair: %v", key, err)
			continue
		}
		err = compareBody(out.Body, p)
		_, _ = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		if err != nil {
			t.Errorf("get %s after repair: %v", key, err)
		}
	}
}
