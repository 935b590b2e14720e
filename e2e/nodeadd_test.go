package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/devcluster"
)

// nodeAdded is what `shale admin node add --json` prints.
type nodeAdded struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	PID   int    `json:"pid"`
	Zone  string `json:"zone"`
	Rack  string `json:"rack"`
	Host  string `json:"host"`
	Data  string `json:"data"`
	State string `json:"state"`
}

// TestAdminNodeAdd: `shale admin node add` grows a running dev cluster by
// one node per call (issue 14, "adding nodes"): 6 nodes over 3 zones get
// one more node in each zone, started by the dev as its child; each is up
// in admin status with its zone, cluster.json lists all 9 with live pids,
// objects written afterwards put shards on the new nodes, and a restarted
// dev runs all 9 again. A duplicate id is refused, and `node add` against a
// data dir no dev serves fails at once with a clear error.
func TestAdminNodeAdd(t *testing.T) {
	c := startDev(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var added []nodeAdded
	for i, zone := range []string{"zone-1", "zone-2", "zone-3"} {
		out, err := c.Admin("node", "add", "--zone", zone, "--json")
		if err != nil {
			t.Fatal(err)
		}
		var n nodeAdded
		if err := json.Unmarshal(out, &n); err != nil {
			t.Fatalf("node add --json: %v\n%s", err, out)
		}
		want := fmt.Sprintf("node-%d", 7+i)
		if n.ID != want || n.Zone != zone || n.Rack != zone+"-rack-1" || n.Host != fmt.Sprintf("host-%d", 7+i) ||
			n.State != "up" || n.PID <= 0 || n.Addr == "" || n.Data != filepath.Join(c.Data, "nodes", want) {
			t.Fatalf("node add in %s: %+v, want %s", zone, n, want)
		}
		added = append(added, n)
	}
	if _, err := c.Admin("node", "add", "--zone", "zone-1", "--id", "node-1"); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("adding node-1 again: %v", err)
	}

	// cluster.json has the 9 nodes, each a running shale node of its id;
	// the harness reaps by it from now on.
	f, err := devcluster.Read(c.Data)
	if err != nil {
		t.Fatal(err)
	}
	c.File = f
	if len(f.Nodes) != 9 {
		t.Fatalf("cluster.json lists %d nodes, want 9", len(f.Nodes))
	}
	for _, n := range f.Nodes {
		if !isShale(n.PID, n.ID) {
			t.Errorf("cluster.json: %s pid %d is not a running shale node %s", n.ID, n.PID, n.ID)
		}
	}
	used0 := map[string]int64{}
	for _, a := range added {
		n, _, err := c.StatusNode(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n.State != cluster.Up || n.Domain.Zone != a.Zone || n.Addr != a.Addr {
			t.Errorf("admin status: %s %v in %s at %s, want up in %s at %s", a.ID, n.State, n.Domain.Zone, n.Addr, a.Zone, a.Addr)
		}
		used0[a.ID] = n.Used
	}

	// New objects land on the new nodes: with 9 nodes and 6 shards per
	// object, about 2 in 3 of these 30 objects have a shard on each.
	bucket := "grow"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("added"), 200_000) // 1 MB: coded 4+2
	for i := range 30 {
		if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprint(i)), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	c.WaitFor(t, "every added node holds shards of the new objects", 30*time.Second, func() (bool, string) {
		var short []string
		for _, a := range added {
			n, _, err := c.StatusNode(a.ID)
			if err != nil {
				return false, err.Error()
			}
			// 30 objects × 2/3 × ~250 KB: about 5 MB each.
			if n.Used < used0[a.ID]+1<<20 {
				short = append(short, fmt.Sprintf("%s used %d (was %d)", a.ID, n.Used, used0[a.ID]))
			}
		}
		return len(short) == 0, strings.Join(short, "; ")
	})

	// A restarted dev runs the added nodes again, from cluster.json.
	c.Restart(t)
	if len(c.File.Nodes) != 9 {
		t.Fatalf("after restart cluster.json lists %d nodes, want 9", len(c.File.Nodes))
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	up := 0
	for _, n := range st.Nodes {
		if n.State == cluster.Up {
			up++
		}
	}
	for _, a := range added {
		n := c.node(t, a.ID)
		if n.PID == a.PID || !isShale(n.PID, a.ID) || n.Zone != a.Zone {
			t.Errorf("after restart %s: pid %d (was %d), zone %s", a.ID, n.PID, a.PID, n.Zone)
		}
	}
	if up != 9 {
		t.Errorf("after restart %d of %d nodes up, want 9", up, len(st.Nodes))
	}
	for i := range 30 {
		r, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprint(i))})
		if err != nil {
			t.Fatalf("get %d after restart: %v", i, err)
		}
		got, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("get %d after restart: %d bytes, %v", i, len(got), err)
		}
	}

	// No dev serving: the dev that wrote cluster.json is gone, or there
	// never was one. Either fails with the reason, not a hang (Admin and
	// adminNoDev are bounded by adminTimeout).
	c.Stop()
	if _, err := c.Admin("node", "add", "--zone", "zone-1"); err == nil || !strings.Contains(err.Error(), "no shale dev is serving "+c.Data) {
		t.Errorf("node add after the dev stopped: %v", err)
	}
	empty := t.TempDir()
	if err := adminNoDev(empty); err == nil || !strings.Contains(err.Error(), "no shale dev is serving "+empty) {
		t.Errorf("node add on an empty dir: %v", err)
	}
}

// adminNoDev runs `shale admin node add` on a data dir of no cluster.
func adminNoDev(data string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shaleBin, "admin", "node", "add", "--zone", "zone-1", "--data", data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}
