package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// fakeRebalanceCluster fills like fakeRepairCluster (its nodes' usage grows
// with the bytes fakeS3 received) and, once nodes are added, moves
// movePerStatus bytes at every Status call until moveTotal are moved.
type fakeRebalanceCluster struct {
	s3                       *fakeS3
	url                      string
	movePerStatus, moveTotal int64

	mu    sync.Mutex
	added []string // zones of the added nodes, in order
	rb    meta.RebalanceStats
}

func (f *fakeRebalanceCluster) S3() (string, string, string) { return f.url, "AK", "SK" }

func (f *fakeRebalanceCluster) Status(ctx context.Context) (meta.Status, error) {
	if err := ctx.Err(); err != nil {
		return meta.Status{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := meta.Status{Objects: int64(f.s3.objectCount())}
	for i := 1; i <= 6+len(f.added); i++ {
		z := fmt.Sprintf("zone-%d", (i-1)%3+1)
		if i > 6 {
			z = f.added[i-7]
		}
		st.Nodes = append(st.Nodes, cluster.Node{ID: cluster.NodeID(fmt.Sprintf("node-%d", i)), State: cluster.Up,
			Domain: cluster.Domain{Zone: z}, Used: f.s3.putBytes.Load() * 3 / 2 / 6})
	}
	if len(f.added) > 0 && f.rb.BytesMoved < f.moveTotal {
		f.rb.State = "moving"
		f.rb.BytesMoved = min(f.moveTotal, f.rb.BytesMoved+f.movePerStatus)
		f.rb.ShardsMoved, f.rb.ObjectsMoved = f.rb.BytesMoved/1000, f.rb.BytesMoved/2000
		if f.rb.BytesMoved == f.moveTotal {
			f.rb.State = "idle"
		}
	}
	st.Repair = &meta.RepairStats{Rebalance: f.rb}
	return st, nil
}

func (f *fakeRebalanceCluster) AddNode(_ context.Context, zone string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, zone)
	return nil
}

func newFakeRebalance(t *testing.T, perStatus int64) *fakeRebalanceCluster {
	t.Helper()
	fs := newFakeS3()
	srv := httptest.NewServer(fs)
	t.Cleanup(srv.Close)
	return &fakeRebalanceCluster{s3: fs, url: srv.URL, movePerStatus: perStatus, moveTotal: 100_000}
}

func TestRunRebalanceFake(t *testing.T) {
	f := newFakeRebalance(t, 7000)
	cfg, err := RebalanceConfig{RepairConfig: smallRepairConfig()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes != 6 || cfg.Add != 3 {
		t.Fatalf("defaults: %d nodes, add %d; want 6 and one per zone (3)", cfg.Nodes, cfg.Add)
	}
	var moved []int64
	cfg.MoveProgress = func(p RebalanceProgress) { moved = append(moved, p.Moved) }
	res, err := runRebalance(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.added, ",") != "zone-1,zone-2,zone-3" {
		t.Errorf("added nodes in %v, want one per zone", f.added)
	}
	if res.BytesMoved != f.moveTotal || res.ShardsMoved != f.moveTotal/1000 || res.ObjectsMoved != f.moveTotal/2000 {
		t.Errorf("moved %d bytes, %d shards, %d objects", res.BytesMoved, res.ShardsMoved, res.ObjectsMoved)
	}
	if len(moved) < 2 || moved[len(moved)-1] != f.moveTotal {
		t.Errorf("progress saw %v", moved)
	}
	if res.RebalanceS <= 0 || res.TotalS < res.RebalanceS+res.SettleS-1e-9 || res.RebalanceMBps != float64(res.BytesMoved)/res.RebalanceS/1e6 {
		t.Errorf("rebalance %v s, %v MB/s", res.RebalanceS, res.RebalanceMBps)
	}
	if res.FGBaseline.Ops == 0 || res.FGRebalance.Ops == 0 || res.FillBytes <= 0 {
		t.Errorf("foreground %+v / %+v, fill %d", res.FGBaseline, res.FGRebalance, res.FillBytes)
	}
	var sb strings.Builder
	if err := WriteRebalanceTable(&sb, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 nodes added", "rebalance throughput", "during rebalance", "load average"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
}

// A rebalance that never finishes ends at Timeout with what was measured.
func TestRunRebalanceTimeout(t *testing.T) {
	f := newFakeRebalance(t, 0)
	cfg, err := RebalanceConfig{RepairConfig: smallRepairConfig()}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 200 * time.Millisecond
	res, err := runRebalance(context.Background(), cfg, f)
	if !errors.Is(err, ErrRebalanceTimeout) || res.RebalanceS < 0.2 {
		t.Fatalf("%v after %v s, want a timeout", err, res.RebalanceS)
	}
}
