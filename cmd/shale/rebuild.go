package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
	"github.com/shale-store/shale/storage"
	storageremote "github.com/shale-store/shale/storage/remote"
)

// Node-side rebuilds (issue 13): the repair loop's coordinator asks a lost
// shard's new node to re-create it from its peers (object.ShardRebuilder
// over storage/remote's POST /v1/rebuild/{id}); the node serves that with
// an object.LocalRebuilder over its own disk, reading the sources through
// the same signed node clients a gateway uses. The two adapters below only
// translate between object's and storage/remote's descriptions of the
// request.

// repairOnNodesEnv names the environment variable that sets meta's
// --repair-on-nodes default (`shale dev` passes its environment to every
// child, so it switches a whole dev cluster, and `shale bench repair`'s).
const repairOnNodesEnv = "SHALE_REPAIR_ON_NODES"

// repairOnNodesDefault is $SHALE_REPAIR_ON_NODES as a bool (1, 0, true,
// false, …), else true: the meta leader, which answers every request's
// metadata, then carries no shard bytes for repair (docs/bench/repair.md
// has what it did to speed, CPU and foreground latency).
func repairOnNodesDefault() bool {
	v, err := strconv.ParseBool(os.Getenv(repairOnNodesEnv))
	return err != nil || v
}

// rebuildingDialer is a nodeDialer whose stores can rebuild shards on their
// node.
type rebuildingDialer struct{ *nodeDialer }

func (d rebuildingDialer) Store(n cluster.Node) (object.ShardStore, error) {
	st, err := d.nodeDialer.Store(n)
	if err != nil {
		return nil, err
	}
	c, ok := st.(*storageremote.Client)
	if !ok {
		return st, nil
	}
	return rebuildingClient{c}, nil
}

// rebuildingClient is a node's remote store that is also an
// object.ShardRebuilder.
type rebuildingClient struct{ *storageremote.Client }

func (c rebuildingClient) RebuildShard(ctx context.Context, id string, r object.ShardRebuild) (storage.Info, error) {
	return c.Rebuild(ctx, id, toRebuildRequest(r))
}

func toRebuildRequest(r object.ShardRebuild) storageremote.RebuildRequest {
	seg := r.Segment
	addrs := make(map[cluster.NodeID]string, len(r.Nodes))
	for _, n := range r.Nodes {
		addrs[n.ID] = n.Addr
	}
	req := storageremote.RebuildRequest{K: seg.K, M: seg.M, BlockSize: seg.BlockSize, Size: seg.Size, Index: r.Index,
		Sources: make([]storageremote.RebuildSource, len(seg.Shards)), Copy: r.Copy}
	for i, ref := range seg.Shards {
		if a, ok := addrs[ref.Node]; ok && ref.Node != "" {
			req.Sources[i] = storageremote.RebuildSource{Node: string(ref.Node), Addr: a, ID: ref.ID, Checksum: ref.Checksum}
		}
	}
	return req
}

// nodeRebuilder serves a node's rebuild requests with an
// object.LocalRebuilder.
type nodeRebuilder struct{ lr *object.LocalRebuilder }

func newNodeRebuilder(secret []byte, inet *internalNet, disk object.ShardStore) (nodeRebuilder, error) {
	lr, err := object.NewLocalRebuilder(object.Config{}, newNodeDialer(secret, inet), disk)
	if err != nil {
		return nodeRebuilder{}, fmt.Errorf("rebuilder: %w", err)
	}
	return nodeRebuilder{lr}, nil
}

func (n nodeRebuilder) Rebuild(ctx context.Context, id string, req storageremote.RebuildRequest) (storage.Info, error) {
	r, err := fromRebuildRequest(req)
	if err != nil {
		return storage.Info{}, err
	}
	return n.lr.RebuildShard(ctx, id, r)
}

func fromRebuildRequest(req storageremote.RebuildRequest) (object.ShardRebuild, error) {
	r := object.ShardRebuild{Index: req.Index, Copy: req.Copy, Segment: meta.Segment{K: req.K, M: req.M, BlockSize: req.BlockSize, Size: req.Size,
		Shards: make([]meta.ShardRef, len(req.Sources))}}
	seen := map[cluster.NodeID]bool{}
	for i, s := range req.Sources {
		if req.Copy && i != req.Index {
			continue // a copy reads its own source only: the one Validate checked
		}
		r.Segment.Shards[i] = meta.ShardRef{Index: i, Node: cluster.NodeID(s.Node), ID: s.ID, Checksum: s.Checksum}
		if s.Node == "" || seen[cluster.NodeID(s.Node)] {
			continue
		}
		id := cluster.NodeID(s.Node)
		if err := cluster.ValidateNodeID(id); err != nil {
			return object.ShardRebuild{}, fmt.Errorf("%w: source %d: %w", storageremote.ErrInvalidRebuild, i, err)
		}
		seen[id] = true
		r.Nodes = append(r.Nodes, cluster.Node{ID: id, Addr: s.Addr})
	}
	return r, nil
}
