package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
)

// TestDevClusterEndToEnd runs a 6-node, 3-zone, 4+2 dev cluster and shows
// what the cluster issue asks: objects of every size round-trip whole and by
// range, multipart works, listings are right; a node killed with SIGKILL
// leaves reads and writes working and is reported down, then out; and a
// restart of the whole cluster on the same data brings every object back.
func TestDevClusterEndToEnd(t *testing.T) {
	t.Parallel()
	const (
		downAfter = 2 * time.Second
		outAfter  = 8 * time.Second
		bucket    = "e2e"
	)
	c := startDev(t, opts{nodes: 6, zones: 3, k: 4, m: 2, downAfter: downAfter, outAfter: outAfter})
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	// With the default block size a stripe holds k blocks.
	const block = erasure.DefaultBlockSize
	const stripe = 4 * block

	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	// want is every object the bucket should hold, and its content.
	want := map[string]sized{}

	sizes := []struct {
		key string
		p   payload
	}{
		{"sizes/0B", payload{seed: 1, size: 0}},
		{"sizes/1B", payload{seed: 2, size: 1}},
		{"sizes/1MiB", payload{seed: 3, size: 1 << 20}},
		{"sizes/3MiB-odd", payload{seed: 4, size: 3*stripe + 12345}},
	}
	if !testing.Short() {
		sizes = append(sizes, struct {
			key string
			p   payload
		}{"sizes/100MiB", payload{seed: 5, size: 100 << 20}})
	}

	t.Run("put-get-head", func(t *testing.T) {
		for _, o := range sizes {
			putObject(ctx, t, c, bucket, o.key, o.p)
			want[o.key] = o.p
			head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.key)})
			if err != nil {
				t.Errorf("head %s: %v", o.key, err)
			} else if aws.ToInt64(head.ContentLength) != o.p.size || aws.ToString(head.ETag) != md5ETag(o.p) {
				t.Errorf("head %s: %d bytes, ETag %s; want %d, %s", o.key, aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), o.p.size, md5ETag(o.p))
			}
			checkObject(ctx, t, c, bucket, o.key, o.p)
		}
	})

	t.Run("ranges", func(t *testing.T) {
		one := want["sizes/1B"]
		checkRange(ctx, t, c, bucket, "sizes/1B", "bytes=0-0", one, 0, 0)
		checkRange(ctx, t, c, bucket, "sizes/1B", "bytes=-5", one, 0, 0)

		odd := want["sizes/3MiB-odd"]
		n := odd.Size()
		for _, r := range []struct {
			h           string
			first, last int64
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=0-99", 0, 99},
			{fmt.Sprintf("bytes=%d-%d", block-3, block+3), block - 3, block + 3},       // across a block
			{fmt.Sprintf("bytes=%d-%d", stripe-10, stripe+9), stripe - 10, stripe + 9}, // across a stripe
			{fmt.Sprintf("bytes=%d-%d", stripe, 2*stripe), stripe, 2 * stripe},         // a stripe and one byte
			{fmt.Sprintf("bytes=%d-%d", n/2-500, n/2+499), n/2 - 500, n/2 + 499},       // the middle
			{fmt.Sprintf("bytes=%d-", 3*stripe-1), 3*stripe - 1, n - 1},                // into the short last stripe
			{"bytes=-1", n - 1, n - 1},
			{"bytes=-1000", n - 1000, n - 1},
			{fmt.Sprintf("bytes=%d-%d", n-10, n+1000), n - 10, n - 1}, // last clipped to the size
		} {
			checkRange(ctx, t, c, bucket, "sizes/3MiB-odd", r.h, odd, r.first, r.last)
		}
		if big, ok := want["sizes/100MiB"]; ok {
			mid := int64(50 * stripe)
			checkRange(ctx, t, c, bucket, "sizes/100MiB", fmt.Sprintf("bytes=%d-%d", mid-100, mid+99), big, mid-100, mid+99)
			checkRange(ctx, t, c, bucket, "sizes/100MiB", "bytes=-10", big, big.Size()-10, big.Size()-1)
		}
		// Unsatisfiable ranges.
		for _, r := range []struct{ key, h string }{{"sizes/0B", "bytes=0-0"}, {"sizes/1B", "bytes=5-"}} {
			out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(r.key), Range: aws.String(r.h)})
			if err == nil {
				out.Body.Close()
				t.Errorf("get %s %s succeeded, want 416", r.key, r.h)
			} else if httpStatus(err) != 416 || errCode(err) != "InvalidRange" {
				t.Errorf("get %s %s: %v, want InvalidRange 416", r.key, r.h, err)
			}
		}
	})

	t.Run("multipart", func(t *testing.T) {
		const key = "multi/three-parts"
		parts := concat{
			payload{seed: 11, size: 5 << 20},
			payload{seed: 12, size: 5<<20 + 1},
			payload{seed: 13, size: 5<<20 + 3},
		}
		cr, err := c.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("create upload: %v", err)
		}
		var done []types.CompletedPart
		partMD5s := md5.New()
		for i, p := range parts {
			num := int32(i + 1)
			out, err := c.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key),
				UploadId: cr.UploadId, PartNumber: aws.Int32(num),
				Body: io.NewSectionReader(p, 0, p.Size()), ContentLength: aws.Int64(p.Size())})
			if err != nil {
				t.Fatalf("upload part %d: %v", num, err)
			}
			_, md := digests(p)
			if got := aws.ToString(out.ETag); got != `"`+md+`"` {
				t.Errorf("part %d ETag %s, want %q", num, got, md)
			}
			raw, _ := hex.DecodeString(md)
			partMD5s.Write(raw)
			done = append(done, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag})
		}
		comp, err := c.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
			UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
		if err != nil {
			t.Fatalf("complete upload: %v", err)
		}
		wantETag := fmt.Sprintf(`"%s-3"`, hex.EncodeToString(partMD5s.Sum(nil)))
		if got := aws.ToString(comp.ETag); got != wantETag {
			t.Errorf("multipart ETag %s, want %s", got, wantETag)
		}
		want[key] = parts
		checkObject(ctx, t, c, bucket, key, parts)
		b := int64(5 << 20)
		checkRange(ctx, t, c, bucket, key, fmt.Sprintf("bytes=%d-%d", b-7, b+7), parts, b-7, b+7) // across parts 1|2
		checkRange(ctx, t, c, bucket, key, fmt.Sprintf("bytes=%d-%d", 2*b-100, 2*b+stripe), parts, 2*b-100, 2*b+stripe)
		checkRange(ctx, t, c, bucket, key, "bytes=-3", parts, parts.Size()-3, parts.Size()-1)
		head, err := c.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil || aws.ToString(head.ETag) != wantETag || aws.ToInt64(head.ContentLength) != parts.Size() {
			t.Errorf("head multipart object: %v; ETag %s, %d bytes", err, aws.ToString(head.ETag), aws.ToInt64(head.ContentLength))
		}
	})

	t.Run("list", func(t *testing.T) {
		for i, k := range []string{"tree/a/1", "tree/a/2", "tree/b/1", "tree/c"} {
			p := payload{seed: uint64(100 + i), size: int64(10 + i)}
			putObject(ctx, t, c, bucket, k, p)
			want[k] = p
		}
		out, err := c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("tree/"), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatalf("list tree/ /: %v", err)
		}
		if got := prefixes(out); !slices.Equal(got, []string{"tree/a/", "tree/b/"}) {
			t.Errorf("common prefixes %q, want [tree/a/ tree/b/]", got)
		}
		if got := keys(out); !slices.Equal(got, []string{"tree/c"}) {
			t.Errorf("keys %q, want [tree/c]", got)
		}
		out, err = c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("tree/a/")})
		if err != nil {
			t.Fatalf("list tree/a/: %v", err)
		}
		if got := keys(out); !slices.Equal(got, []string{"tree/a/1", "tree/a/2"}) {
			t.Errorf("keys under tree/a/ %q", got)
		}
		out, err = c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatalf("list /: %v", err)
		}
		if got := prefixes(out); !slices.Equal(got, []string{"multi/", "sizes/", "tree/"}) {
			t.Errorf("top-level prefixes %q", got)
		}
		checkListing(t, "whole bucket", listAll(ctx, t, c, bucket, ""), want)

		if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("tree/b/1")}); err != nil {
			t.Fatalf("delete tree/b/1: %v", err)
		}
		delete(want, "tree/b/1")
		checkGone(ctx, t, c, bucket, "tree/b/1")
		out, err = c.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("tree/"), Delimiter: aws.String("/")})
		if err != nil {
			t.Fatalf("list after delete: %v", err)
		}
		if got := prefixes(out); !slices.Equal(got, []string{"tree/a/"}) {
			t.Errorf("common prefixes after deleting tree/b/1: %q, want [tree/a/]", got)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("admin-weight", func(t *testing.T) {
		weighted := func(id string) int64 {
			n, _, err := c.StatusNode(id)
			if err != nil {
				t.Fatal(err)
			}
			return n.Weighted
		}
		if out, err := c.Admin("weight", "node-1", "3TiB"); err != nil || !strings.Contains(string(out), "weight 3.0 TiB") {
			t.Fatalf("admin weight: %v\n%s", err, out)
		}
		if w := weighted("node-1"); w != 3<<40 {
			t.Fatalf("node-1 weighted %d after admin weight 3TiB", w)
		}
		if _, err := c.Admin("weight", "node-1", "-5"); err == nil {
			t.Error("a negative weight was taken")
		}
		if _, err := c.Admin("weight", "node-99", "1TiB"); err == nil || !strings.Contains(err.Error(), "no such node") {
			t.Errorf("weight of an unknown node: %v", err)
		}
		if _, err := c.Admin("weight", "node-1", "0"); err != nil {
			t.Fatal(err)
		}
		if w := weighted("node-1"); w != 0 {
			t.Fatalf("node-1 weighted %d after admin weight 0", w)
		}
	})

	const victim = "node-3"
	t.Run("kill-node", func(t *testing.T) {
		if st, err := c.NodeState(victim); err != nil || st != cluster.Up {
			t.Fatalf("%s before the kill: %v %v, want up", victim, st, err)
		}
		c.KillNode(t, victim)
		t.Logf("killed %s (pid %d)", victim, c.node(t, victim).PID)
		watch := c.WatchNode(t, victim)
		seen := func(s cluster.State) func() (bool, string) {
			return func() (bool, string) {
				got := watch.Seen()
				return slices.Contains(got, s), fmt.Sprintf("states seen %v", got)
			}
		}

		// At once, before meta has noticed: reads go around the dead node
		// and a write commits without it.
		for _, k := range []string{"sizes/1B", "sizes/1MiB", "sizes/3MiB-odd"} {
			checkObject(ctx, t, c, bucket, k, want[k])
		}
		checkRange(ctx, t, c, bucket, "sizes/3MiB-odd", fmt.Sprintf("bytes=%d-%d", stripe-10, stripe+9), want["sizes/3MiB-odd"], stripe-10, stripe+9)
		p := payload{seed: 21, size: 2*stripe + 5}
		putObject(ctx, t, c, bucket, "degraded/while-dying", p)
		want["degraded/while-dying"] = p
		checkObject(ctx, t, c, bucket, "degraded/while-dying", p)

		c.WaitFor(t, victim+" down", 10*downAfter, seen(cluster.Down))

		// Down: writes and reads still work.
		p = payload{seed: 22, size: stripe + 77}
		putObject(ctx, t, c, bucket, "degraded/while-down", p)
		want["degraded/while-down"] = p
		for k, s := range want {
			checkObject(ctx, t, c, bucket, k, s)
		}
		checkListing(t, "listing with a node down", listAll(ctx, t, c, bucket, ""), want)

		c.WaitFor(t, victim+" out", outAfter+30*time.Second, seen(cluster.Out))
		watch.Stop()
		// Up (if polled before meta noticed), then down, then out: never
		// straight from up to out, never back.
		if got := slices.Compact(watch.Seen()); !slices.Equal(got, []cluster.State{cluster.Down, cluster.Out}) &&
			!slices.Equal(got, []cluster.State{cluster.Up, cluster.Down, cluster.Out}) {
			t.Errorf("%s went through states %v after SIGKILL, want [up] down out", victim, got)
		}
		st, err := c.Status()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("status with %s out: objects %d, by spare shards %v, repair queue %d, repair %+v",
			victim, st.Objects, st.ObjectsBySpareShards, st.RepairQueue, st.Repair)
		for spare, n := range st.ObjectsBySpareShards {
			if spare < c.File.M-1 && n > 0 {
				t.Errorf("%d objects have only %d spare shards (m=%d) after one node failure", n, spare, c.File.M)
			}
		}
		p = payload{seed: 23, size: 1 << 20}
		putObject(ctx, t, c, bucket, "degraded/while-out", p)
		want["degraded/while-out"] = p
		checkObject(ctx, t, c, bucket, "degraded/while-out", p)
	})
	if t.Failed() {
		t.FailNow()
	}

	if !t.Run("restart-cluster", func(t *testing.T) {
		c.Restart(t)
		checkListing(t, "listing after restart", listAll(ctx, t, c, bucket, ""), want)
		for k, s := range want {
			checkObject(ctx, t, c, bucket, k, s)
		}
		if st, err := c.Status(); err != nil {
			t.Error(err)
		} else {
			t.Logf("status after restart: %s", nodeStates(st.Nodes))
		}
	}) {
		t.FailNow()
	}

	t.Run("delete-all", func(t *testing.T) {
		for k := range want {
			if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
				t.Errorf("delete %s: %v", k, err)
			}
		}
		for k := range want {
			checkGone(ctx, t, c, bucket, k)
		}
		if got := listAll(ctx, t, c, bucket, ""); len(got) != 0 {
			t.Errorf("bucket not empty after deleting everything: %v", got)
		}
		// Deleting a key that is not there is not an error in S3.
		if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("sizes/1B")}); err != nil {
			t.Errorf("delete of an absent key: %v", err)
		}
		if _, err := c.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("delete bucket: %v", err)
		}
	})
}

func keys(out *s3.ListObjectsV2Output) []string {
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

func prefixes(out *s3.ListObjectsV2Output) []string {
	var ps []string
	for _, p := range out.CommonPrefixes {
		ps = append(ps, aws.ToString(p.Prefix))
	}
	return ps
}

func nodeStates(ns []cluster.Node) string {
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "%s=%s ", n.ID, n.State)
	}
	return strings.TrimSpace(b.String())
}
