package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/internal/devcluster"
)

// TestDevAdoptsSingleMeta: `shale dev` restarted on the data dir of a
// cluster from before meta replication (one meta, its pebble store at
// DATA/meta, cluster.json without metas) adopts it: the old store becomes
// meta-1's, two more replicas join and catch up from its snapshot, every
// object reads back byte-identical, and writes go on. Then `shale admin
// meta` moves leadership and the group survives losing the adopted
// replica.
func TestDevAdoptsSingleMeta(t *testing.T) {
	c := startDev(t, opts{nodes: 3, zones: 3, k: 2, m: 1, extra: []string{"--meta-replicas", "1"}})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const bucket = "adopt"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	want := map[string]payload{}
	for i := range 4 {
		p := payload{seed: uint64(900 + i), size: int64(i)<<17 + 5}
		putObject(ctx, t, c, bucket, fmt.Sprintf("old/%d", i), p)
		want[fmt.Sprintf("old/%d", i)] = p
	}
	c.Stop()

	// Lay the data dir out as a single meta left it.
	one := c.File.Metas[0]
	legacy := filepath.Join(c.Data, "meta")
	if err := os.Rename(filepath.Join(one.Data, "meta"), legacy); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(c.Data, "metas")); err != nil {
		t.Fatal(err)
	}
	old := c.File
	old.Meta, old.MetaPID, old.MetaArgs, old.MetaMetrics, old.Metas = one.Addr, one.PID, one.Args, one.Metrics, nil
	if err := devcluster.Write(c.Data, old); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(c.Data, devcluster.FileName))
	if strings.Contains(string(b), `"metas": [`) {
		t.Fatalf("the legacy cluster file still lists replicas:\n%s", b)
	}

	c.Opts.extra = nil // dev's default: 3 replicas
	c.start(t)
	if len(c.File.Metas) != 3 {
		t.Fatalf("after adoption cluster.json lists %d meta replicas, want 3", len(c.File.Metas))
	}
	if c.File.Metas[0].Data != legacy || c.File.Metas[0].Addr != one.Addr {
		t.Errorf("meta-1 is %+v; want the adopted store %s at the old address %s", c.File.Metas[0], legacy, one.Addr)
	}
	for k, p := range want {
		checkObject(ctx, t, c, bucket, k, p)
	}
	putObject(ctx, t, c, bucket, "new", payload{seed: 950, size: 70 << 10})
	want["new"] = payload{seed: 950, size: 70 << 10}
	c.waitReplicasAgree(t)

	// Leadership moves by `shale admin meta transfer-leader`, then the
	// adopted replica dies and the other two carry on with everything.
	lead := c.MetaLeader(t, 20*time.Second)
	out, err := c.Admin("meta", "transfer-leader")
	if err != nil {
		t.Fatal(err)
	}
	next := c.MetaLeader(t, 20*time.Second)
	if next.ID == lead.ID {
		t.Fatalf("transfer-leader left %s leading:\n%s", lead.ID, out)
	}
	c.KillMetaReplica(t, "meta-1")
	for k, p := range want {
		checkObject(ctx, t, c, bucket, k, p)
	}
	js, err := c.Admin("status", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		MetaReplicas []struct {
			ID, State string
		} `json:"meta_replicas"`
	}
	if err := json.Unmarshal(js, &st); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range st.MetaReplicas {
		states[r.ID] = r.State
	}
	if states["meta-1"] != "down" || len(states) != 3 {
		t.Errorf("admin status shows the replicas as %v; want meta-1 down among 3", states)
	}
}

// waitReplicasAgree waits (bounded) until every replica reports the same
// applied index and keyspace hash.
func (c *Cluster) waitReplicasAgree(t testing.TB) {
	t.Helper()
	c.WaitFor(t, "meta replicas at one applied index with one keyspace hash", 30*time.Second, func() (bool, string) {
		seen := map[string]bool{}
		var why []string
		for _, m := range c.File.Metas {
			h, err := c.replicaHash(m.ID)
			if err != nil {
				return false, err.Error()
			}
			seen[fmt.Sprintf("%d/%s", h.AppliedIndex, h.Hash)] = true
			why = append(why, fmt.Sprintf("%s at %d: %.12s", m.ID, h.AppliedIndex, h.Hash))
		}
		return len(seen) == 1, strings.Join(why, "; ")
	})
}
