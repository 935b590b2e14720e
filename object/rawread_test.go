package object

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/erasure"
	"github.com/shale-store/shale/storage"
	"github.com/shale-store/shale/storage/remote"
)

// remoteNodes is Nodes over real nodes: a storage.Disk behind the node's
// HTTP handler for each id, reached through remote.Client.
type remoteNodes struct {
	disks   map[cluster.NodeID]*storage.Disk
	clients map[cluster.NodeID]*remote.Client
}

func (r *remoteNodes) Store(n cluster.Node) (ShardStore, error) {
	c, ok := r.clients[n.ID]
	if !ok {
		return nil, fmt.Errorf("test: no node %s", n.ID)
	}
	return c, nil
}

// remoteHarness is a harness whose coordinator talks to real nodes over
// loopback HTTP; meta and the cluster map are the harness's.
func remoteHarness(t *testing.T, hcfg remote.HandlerConfig) (*harness, *remoteNodes) {
	t.Helper()
	h := newHarness(t, 6, testConfig())
	secret := bytes.Repeat([]byte{9}, 32)
	rn := &remoteNodes{disks: map[cluster.NodeID]*storage.Disk{}, clients: map[cluster.NodeID]*remote.Client{}}
	for _, id := range h.ids {
		d, err := storage.OpenDisk(storage.DiskConfig{Dir: t.TempDir(), InlineMax: -1, Now: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		cfg := hcfg
		cfg.Secret, cfg.Node = secret, string(id)
		srv := httptest.NewServer(remote.NewHandler(d, cfg))
		t.Cleanup(srv.Close)
		rn.disks[id] = d
		rn.clients[id] = remote.NewClient(srv.URL, string(id), secret, nil)
	}
	cfg := testConfig()
	cfg.Now = h.clock.Now
	c, err := New(cfg, h.md, rn)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	return h, rn
}

// TestRawReadCorruptBlockCaughtByDecode: a block rotten on a node's disk is
// sent as stored (the node does not re-verify it on the raw path); the
// gateway's decode catches it, reads around it with parity, returns the
// object intact and reports the shard corrupt. With the node verifying
// (VerifyReads) the outcome is the same.
func TestRawReadCorruptBlockCaughtByDecode(t *testing.T) {
	for _, verify := range []bool{false, true} {
		t.Run(fmt.Sprintf("VerifyReads=%v", verify), func(t *testing.T) {
			h, rn := remoteHarness(t, remote.HandlerConfig{VerifyReads: verify})
			data := pattern(21, 3*4*4096)
			m := h.put("rot", data)
			r0 := m.Segments[0].Shards[0]
			// A byte of the second record's block, in the shard file.
			files, err := filepath.Glob(filepath.Join(rn.disks[r0.Node].Dir(), "shards", "*", r0.ID))
			if err != nil || len(files) != 1 {
				t.Fatalf("shard file of %s: %v %v", r0.ID, files, err)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			b[erasure.RecordHeaderSize+4096+erasure.RecordHeaderSize+7] ^= 0x10
			if err := os.WriteFile(files[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
			if got := h.mustRead(m, 0, m.Size); !bytes.Equal(got, data) {
				t.Fatal("object read around the rotten block differs")
			}
			bad, err := h.store.BadReports(h.ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(bad) != 1 || bad[0].ShardID != r0.ID || bad[0].Reason != "corrupt" || bad[0].Node != r0.Node {
				t.Fatalf("bad-shard reports %+v; want %s on %s corrupt", bad, r0.ID, r0.Node)
			}
		})
	}
}
