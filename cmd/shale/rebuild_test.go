package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/storage"
	storageremote "github.com/shale-store/shale/storage/remote"
)

// countingDialer counts, per node, the shard Puts the coordinator streams
// and the rebuilds it asks nodes for.
type countingDialer struct {
	d rebuildingDialer

	mu                sync.Mutex
	puts              map[cluster.NodeID]int
	rebuilds, rbFails int
}

type countingStore struct {
	rebuildingClient
	id cluster.NodeID
	cd *countingDialer
}

func (d *countingDialer) Store(n cluster.Node) (object.ShardStore, error) {
	st, err := d.d.Store(n)
	if err != nil {
		return nil, err
	}
	return countingStore{rebuildingClient: st.(rebuildingClient), id: n.ID, cd: d}, nil
}

func (s countingStore) Put(ctx context.Context, id string, r io.Reader) (storage.Info, error) {
	s.cd.mu.Lock()
	s.cd.puts[s.id]++
	s.cd.mu.Unlock()
	return s.rebuildingClient.Put(ctx, id, r)
}

func (s countingStore) RebuildShard(ctx context.Context, id string, r object.ShardRebuild) (storage.Info, error) {
	info, err := s.rebuildingClient.RebuildShard(ctx, id, r)
	s.cd.mu.Lock()
	s.cd.rebuilds++
	if err != nil {
		s.cd.rbFails++
	}
	s.cd.mu.Unlock()
	return info, err
}

// Seven real nodes (runNode, as `shale node` runs them): with one marked
// out, the repair coordinator's dialer (as newRepair wires it) has each
// lost shard rebuilt by its new node, which reads the sources from its
// peers over the signed node API; the coordinator streams no shard, and
// the objects read back whole with the out node's shards gone.
func TestRepairRebuildsOnTheTargetNode(t *testing.T) {
	secret := bytes.Repeat([]byte{6}, 32)
	ctx := t.Context()
	md, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	for i := range 7 {
		id := fmt.Sprintf("node-%d", i+1)
		addr := startNodeTLS(t, id, secret, internalTLSFlags{})
		if err := md.Heartbeat(ctx, meta.NodeReport{ID: cluster.NodeID(id), Addr: addr,
			Domain:   cluster.Domain{Zone: fmt.Sprintf("z%d", i%4), Rack: "r", Host: id},
			Capacity: 1 << 40, Free: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	cd := &countingDialer{d: rebuildingDialer{newNodeDialer(secret, plainNet)}, puts: map[cluster.NodeID]int{}}
	co, err := object.New(object.Config{K: 4, M: 2, BlockSize: 64 << 10, MapRefresh: 1}, md, cd)
	if err != nil {
		t.Fatal(err)
	}
	if err := co.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	bodies := map[string][]byte{}
	for i := range 6 {
		body := make([]byte, 300_000+i*7_001)
		for j := range body {
			body[j] = byte(rng.Uint32())
		}
		key := fmt.Sprint("o", i)
		bodies[key] = body
		if _, err := co.PutObject(ctx, object.PutInput{Bucket: "b", Key: key, Body: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}
	const out = "node-2"
	if err := md.Admin(ctx, out, meta.ActionOut); err != nil {
		t.Fatal(err)
	}
	cd.mu.Lock()
	clear(cd.puts)
	cd.mu.Unlock()
	lost := 0
	for key := range bodies {
		res, err := co.RepairObject(ctx, "b", key, nil, nil)
		if err != nil || res.Remaining != 0 || res.Conflict {
			t.Fatalf("repair %s: %+v %v", key, res, err)
		}
		lost += res.Rebuilt
	}
	if lost == 0 {
		t.Fatalf("%s held no shard of the objects", out)
	}
	if cd.rebuilds != lost || cd.rbFails != 0 || len(cd.puts) != 0 {
		t.Fatalf("%d shards rebuilt: %d node-side rebuilds (%d failed), shard streams from the coordinator %v", lost, cd.rebuilds, cd.rbFails, cd.puts)
	}
	for key, body := range bodies {
		m, err := md.Get(ctx, "b", key)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Segments[0].Shards {
			if r.Node == out {
				t.Fatalf("%s still has a shard on %s", key, out)
			}
		}
		var buf bytes.Buffer
		if err := co.ReadObject(ctx, &buf, m, 0, m.Size); err != nil || !bytes.Equal(buf.Bytes(), body) {
			t.Fatalf("read %s after repair: %v (equal %v)", key, err, bytes.Equal(buf.Bytes(), body))
		}
	}
}

// A copy request is read as naming its own source only: another entry
// for the same node with another address (which Validate does not check
// for a copy) is never what the node dials.
func TestCopyRequestUsesItsOwnSource(t *testing.T) {
	req := storageremote.RebuildRequest{K: 2, M: 1, BlockSize: 4096, Size: 100, Index: 1, Copy: true,
		Sources: []storageremote.RebuildSource{
			{Node: "n1", Addr: "10.9.9.9:1", ID: "x"},
			{Node: "n1", Addr: "127.0.0.1:7001", ID: "s1", Checksum: 7},
			{},
		}}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := fromRebuildRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 1 || r.Nodes[0].Addr != "127.0.0.1:7001" || r.Segment.Shards[0].Node != "" || !r.Copy {
		t.Fatalf("copy request read as %+v", r)
	}
}
