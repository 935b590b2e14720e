package replicated

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/internal/privfs"
	"github.com/shale-store/shale/meta"
)

// Config configures one replica. Zero fields take the documented defaults.
type Config struct {
	// ID is this replica's raft server id, unique in the group. Required.
	ID string
	// Dir holds the replica's state: meta/ (the state machine's pebble),
	// raft/ (the log and stable store, a pebble of its own) and snapshots/.
	// Required.
	Dir string
	// FS is the filesystem of the state machine and the raft log; nil
	// means the real one with private files and directories (privfs).
	// Tests pass vfs.NewStrictMem() to lose unsynced writes in a simulated
	// crash. Raft's snapshots always go to the real Dir/snapshots.
	FS vfs.FS
	// Meta configures the state machine; its Dir defaults to Dir/meta, its
	// FS to FS, and Replica is forced on. DownAfter, OutAfter, GarbageGrace and
	// RequestRetention must agree across the group.
	Meta meta.Config
	// Transport carries raft's messages. Required. (Tests use
	// raft.NewInmemTransport.)
	Transport raft.Transport
	// Self is this replica's record (its ID and Raft are filled in from
	// ID and the transport): the leader proposes it when it takes office,
	// so followers can name its API to clients.
	Self meta.Replica
	// Founders are the records of the founding replicas (--peer): a
	// leader proposes those of members the group has no record of, and a
	// follower names a leader's API from them until it has the record.
	Founders []meta.Replica
	// Bootstrap, when the replica has no state yet, starts the group with
	// these voters (every founding replica passes the same list). Empty:
	// wait to be added, or carry on from the state on disk.
	Bootstrap []raft.Server

	// HeartbeatTimeout and ElectionTimeout: a follower that hears nothing
	// from the leader this long starts an election. Default 1s each.
	// Shorter fails over sooner but mistakes a slow leader for a dead one
	// more often.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout: a leader that has not heard from a quorum this
	// long steps down. Default 500ms; at most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// ReadLease: for this long after a leadership confirmation began (a
	// heartbeat round answered by a quorum, raft's VerifyLeader), the
	// leader serves linearizable reads without another round. Safe
	// because no other leader can be elected within HeartbeatTimeout of
	// the moment the answering voters last heard from this leader: every
	// voter refuses votes while it has heard from a leader within
	// HeartbeatTimeout (raft's leader stickiness), a restarted voter
	// refuses every vote for its first HeartbeatTimeout (guard), and a
	// leadership transfer, the one election stickiness lets through,
	// suspends the lease until its election can no longer win. The
	// answer that confirms a round may be to a heartbeat sent shortly
	// before the round began, so the lease assumes that a heartbeat and
	// its answer take less than HeartbeatTimeout − ReadLease (750 ms at
	// the defaults) in the network, that every replica runs the same
	// HeartbeatTimeout (or longer), and that clocks advance at about the
	// same rate. Default HeartbeatTimeout/4; negative: a round for every
	// read.
	ReadLease time.Duration
	// SnapshotThreshold: snapshot after this many entries since the last
	// one. Default 8192.
	SnapshotThreshold uint64
	// SnapshotInterval: how often to check the threshold. Default 2m.
	SnapshotInterval time.Duration
	// TrailingLogs: entries kept behind a snapshot, so a follower that far
	// behind catches up from the log rather than by snapshot. Default
	// 10240.
	TrailingLogs uint64
	// ApplyTimeout bounds a proposal (and a linearizable read's wait) when
	// the caller's ctx has no deadline. Default 10s.
	ApplyTimeout time.Duration
	// Logger receives raft's log. Default: warnings and errors to stderr.
	Logger hclog.Logger
}

func (c *Config) setDefaults() error {
	if c.ID == "" || c.Dir == "" || c.Transport == nil {
		return fmt.Errorf("%w: replicated meta config: ID, Dir and Transport are required", meta.ErrInvalidArgument)
	}
	if c.FS == nil {
		c.FS = privfs.New()
	}
	if c.Meta.FS == nil {
		c.Meta.FS = c.FS
	}
	if c.Meta.Dir == "" {
		c.Meta.Dir = filepath.Join(c.Dir, "meta")
	}
	c.Meta.Replica = true
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.LeaderLeaseTimeout <= 0 {
		c.LeaderLeaseTimeout = min(500*time.Millisecond, c.HeartbeatTimeout)
	}
	if c.ReadLease == 0 {
		c.ReadLease = c.HeartbeatTimeout / 4
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.New(&hclog.LoggerOptions{Name: "meta-raft " + c.ID, Level: hclog.Warn, Output: os.Stderr})
	}
	return nil
}

// Node is one replica of the metadata service: a meta.Store driven by a
// raft group. It implements meta.Service (and the repair-side calls of
// *meta.Store): mutations are proposed on the leader, reads are
// linearizable on the leader; a follower answers both with a
// *meta.NotLeaderError naming the leader. Safe for concurrent use.
type Node struct {
	// Mutations builds each mutation as a meta.Command and proposes it.
	meta.Mutations

	cfg   Config
	store *meta.Store
	fsm   *fsm
	logs  *LogStore
	snaps raft.SnapshotStore
	raft  *raft.Raft
	trans *guardedTransport

	// readyTerm is a term in which this replica, as leader, has seen an
	// entry of its own commit (0: none yet). From then on its commit index
	// covers every entry committed before, so it may serve reads at it.
	readyTerm atomic.Uint64

	// lease: reads in term leaseTerm before leaseUntil need no heartbeat
	// round (Config.ReadLease). transfers counts leadership transfers in
	// progress, which suspend it; transferEpoch moves when one begins or
	// ends, so a confirmation that overlapped one grants no lease.
	leaseMu       sync.Mutex
	leaseTerm     uint64
	leaseUntil    time.Time
	transfers     atomic.Int32
	transferEpoch atomic.Uint64
	noLeaseUntil  time.Time     // after a transfer: its election may still win until then (leaseMu)
	confirmations atomic.Uint64 // heartbeat rounds run for reads

	watch    leaderWatch
	observer *raft.Observer
	stopObs  chan struct{}
}

var _ meta.Service = (*Node)(nil)

// Open opens (or creates) the replica in cfg.Dir and starts its raft.
func Open(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open meta replica %s: %w", cfg.ID, err)
	}
	if err := cfg.FS.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open meta replica %s: %w", cfg.ID, err)
	}
	if IsLegacyDir(cfg.FS, cfg.Dir) && !aloneIn(cfg.Bootstrap, cfg.ID) {
		return nil, fmt.Errorf("open meta replica %s: %w", cfg.ID, ErrAdoptAlone)
	}
	if _, err := moveLegacyStore(cfg.FS, cfg.Dir, cfg.Meta.Dir); err != nil {
		return nil, fmt.Errorf("open meta replica %s: %w", cfg.ID, err)
	}
	store, err := meta.Open(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("open meta replica %s: %w", cfg.ID, err)
	}
	n := &Node{cfg: cfg, store: store}
	n.Mutations = meta.Mutations{Propose: n.propose}
	fail := func(err error) (*Node, error) {
		n.closeStores()
		return nil, fmt.Errorf("open meta replica %s: %w", cfg.ID, err)
	}
	if n.logs, err = OpenLogStore(cfg.FS, filepath.Join(cfg.Dir, "raft")); err != nil {
		return fail(err)
	}
	// raft makes its snapshot directory world-readable; the snapshots are
	// the whole metadata, so it is made private first (and kept so).
	snapDir := filepath.Join(cfg.Dir, "snapshots")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.Chmod(snapDir, 0o700); err != nil {
		return fail(err)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, cfg.Logger); err != nil {
		return fail(err)
	}
	// pebble syncs its own directory, not the entry that names it: sync
	// Dir and its ancestors, or a crash soon after the first start could
	// lose a whole directory — and a replica that comes back with an
	// empty log would bootstrap again.
	if err := meta.SyncAncestors(cfg.FS, cfg.Meta.Dir); err != nil {
		return fail(err)
	}
	// The store is durable on its own and carries its applied index, so
	// raft does not restore the last snapshot on start (it replays the log
	// after it, which Apply skips up to the applied index) — unless the
	// store is behind that snapshot (its directory was lost).
	if err := n.finishAdoption(); err != nil {
		return fail(err)
	}
	if err := n.catchUpFromSnapshot(); err != nil {
		return fail(err)
	}
	n.fsm = newFSM(store)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = cfg.Logger
	has, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return fail(err)
	}
	if !has && store.AppliedIndex() > 0 {
		// The store applied entries of a log raft no longer has: a new log
		// (bootstrapped or received) would reuse their indexes, which the
		// store skips, and the replica would diverge in silence.
		return fail(fmt.Errorf("%w: its store has applied up to raft index %d but the raft log in %s is gone; move %s away and add the replica again (it catches up by snapshot)",
			ErrStateLost, store.AppliedIndex(), filepath.Join(cfg.Dir, "raft"), cfg.Dir))
	}
	if len(cfg.Bootstrap) > 0 {
		if !has {
			if err := raft.BootstrapCluster(rc, n.logs, n.logs, n.snaps, cfg.Transport, raft.Configuration{Servers: cfg.Bootstrap}); err != nil {
				return fail(err)
			}
		}
	}
	var trans raft.Transport
	var quiet time.Duration
	if cfg.ReadLease > 0 {
		quiet = cfg.HeartbeatTimeout
	}
	trans, n.trans = guard(cfg.Transport, quiet)
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.logs, n.snaps, trans); err != nil {
		n.trans.stop() // its forwarding goroutine
		return fail(err)
	}
	obs := make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.stopObs = make(chan struct{})
	go n.watch.observe(obs, n.stopObs)
	return n, nil
}

// catchUpFromSnapshot restores the newest snapshot into the store when the
// store is behind it.
func (n *Node) catchUpFromSnapshot() error {
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	if n.store.AppliedIndex() >= list[0].Index {
		return nil
	}
	_, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	return n.store.Restore(rc)
}

func (n *Node) closeStores() {
	if n.logs != nil {
		_ = n.logs.Close()
	}
	_ = n.store.Close()
}

// Close stops raft and closes the stores. No method may be called after.
func (n *Node) Close() error {
	n.raft.DeregisterObserver(n.observer)
	close(n.stopObs)
	err := n.raft.Shutdown().Error()
	n.trans.stop()
	n.closeStores()
	return err
}

// Raft is the replica's raft, for membership changes, leadership transfer
// and observation.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Store is the replica's state machine. Reading it directly gives this
// replica's view, which may be behind the leader's; writing it directly
// would make the replica diverge.
func (n *Node) Store() *meta.Store { return n.store }

// AppliedIndex is the raft index of the last entry this replica's store
// holds.
func (n *Node) AppliedIndex() uint64 {
	n.fsm.mu.Lock()
	defer n.fsm.mu.Unlock()
	return n.fsm.applied
}

// IsLeader reports whether this replica believes it leads.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

func (n *Node) notLeader() *meta.NotLeaderError {
	addr, id := n.raft.LeaderWithID()
	return &meta.NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

func (n *Node) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}

// propose stamps c with the leader's clock, appends it to the raft log and
// waits for this replica to apply it. Errors: *meta.NotLeaderError (never
// appended: follow the leader and retry); meta.ErrUnavailable when the
// outcome is unknown (leadership lost after the append, or ctx ended
// first): retry with the same request id, which applies it at most once.
func (n *Node) propose(ctx context.Context, c meta.Command) (meta.Result, error) {
	if n.raft.State() != raft.Leader {
		return meta.Result{}, n.notLeader()
	}
	meta.Stamp(ctx, &c, n.now())
	data, err := meta.EncodeCommand(c)
	if err != nil {
		return meta.Result{}, err
	}
	ctx, cancel := n.timeout(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	term := n.raft.CurrentTerm()
	f := n.raft.Apply(data, time.Until(deadline))
	if err = waitFuture(ctx, f); err != nil && ctx.Err() != nil {
		return meta.Result{}, fmt.Errorf("%s: %w: %v (outcome unknown)", c.Op, meta.ErrUnavailable, ctx.Err())
	}
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return meta.Result{}, n.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		return meta.Result{}, fmt.Errorf("%s: %w (outcome unknown): %w", c.Op, meta.ErrUnavailable, n.notLeader())
	default:
		return meta.Result{}, fmt.Errorf("%s: %w: %v", c.Op, meta.ErrUnavailable, err)
	}
	n.noteCommitted(term)
	r, ok := f.Response().(response)
	if !ok {
		return meta.Result{}, fmt.Errorf("%s: unexpected raft response %T", c.Op, f.Response())
	}
	if r.err != nil {
		return meta.Result{}, fmt.Errorf("%s: %w", c.Op, r.err)
	}
	return r.res, nil
}

func (n *Node) now() time.Time {
	if n.cfg.Meta.Now != nil {
		return n.cfg.Meta.Now()
	}
	return time.Now()
}

// noteCommitted records that an entry this replica appended as leader in
// term has committed, if it still is term.
func (n *Node) noteCommitted(term uint64) {
	if n.raft.CurrentTerm() == term {
		n.readyTerm.Store(term)
	}
}

// linearize makes a read on this replica linearizable (raft's read index):
// it takes a read index, confirms that the replica still leads (a quorum
// answered after the read began) in the same term, and waits until its
// store holds every command up to the read index, which covers every write
// acknowledged before the read began. The read index is the commit index
// once an entry of the leader's own term has committed (before that the
// commit index may lag what earlier leaders committed), else the last
// index of its log, which holds every committed entry.
// *meta.NotLeaderError on a follower or a deposed leader.
func (n *Node) linearize(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	term := n.raft.CurrentTerm()
	last := n.raft.LastIndex()
	if n.readyTerm.Load() == term {
		last = n.raft.CommitIndex()
	}
	if !n.leased(term) {
		epoch, start := n.transferEpoch.Load(), time.Now()
		n.confirmations.Add(1)
		if err := n.raft.VerifyLeader().Error(); err != nil || n.raft.CurrentTerm() != term {
			return n.notLeader()
		}
		n.extendLease(term, start, epoch)
	}
	// The store counts only commands; entries raft keeps to itself (no-op,
	// barrier, configuration) never reach it, so wait for the last command
	// at or below last.
	target := last
	for target > 0 {
		var l raft.Log
		if err := n.logs.GetLog(target, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				break // compacted: below the snapshot, which the store holds
			}
			return fmt.Errorf("linearizable read: %w", err)
		}
		if l.Type == raft.LogCommand {
			break
		}
		target--
	}
	ctx, cancel := n.timeout(ctx)
	defer cancel()
	if err := n.fsm.wait(ctx, target); err != nil {
		if n.raft.State() != raft.Leader {
			return n.notLeader()
		}
		return fmt.Errorf("%w: linearizable read: %v", meta.ErrUnavailable, err)
	}
	return nil
}

// ReadConfirmations counts the leadership confirmations (heartbeat rounds)
// this replica's reads have run; reads under the lease run none.
func (n *Node) ReadConfirmations() uint64 { return n.confirmations.Load() }

// leased reports whether a read in term may skip the heartbeat round.
func (n *Node) leased(term uint64) bool {
	if n.cfg.ReadLease <= 0 || n.transfers.Load() > 0 {
		return false
	}
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	now := time.Now()
	return n.leaseTerm == term && now.Before(n.leaseUntil) && !now.Before(n.noLeaseUntil)
}

// extendLease records a confirmation of leadership in term that began at
// start, in transfer epoch epoch.
func (n *Node) extendLease(term uint64, start time.Time, epoch uint64) {
	if n.cfg.ReadLease <= 0 {
		return
	}
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	if n.transfers.Load() > 0 || n.transferEpoch.Load() != epoch {
		return
	}
	until := start.Add(n.cfg.ReadLease)
	if n.leaseTerm != term || until.After(n.leaseUntil) {
		n.leaseTerm, n.leaseUntil = term, until
	}
}

// beginTransfer suspends the lease for a leadership transfer; the
// returned func ends the suspension.
func (n *Node) beginTransfer() (end func()) {
	n.leaseMu.Lock()
	n.transfers.Add(1)
	n.transferEpoch.Add(1)
	n.leaseTerm, n.leaseUntil = 0, time.Time{}
	n.leaseMu.Unlock()
	return func() {
		n.leaseMu.Lock()
		n.transferEpoch.Add(1)
		n.transfers.Add(-1)
		// A transfer that returned (even with an error) may have started
		// the target's election, which voters grant despite stickiness
		// for up to two election timeouts: no lease before that is over.
		n.noLeaseUntil = time.Now().Add(2*n.cfg.ElectionTimeout + n.cfg.HeartbeatTimeout)
		n.leaseMu.Unlock()
	}
}

// Barrier waits until every entry before it is applied on this replica
// (the leader's readiness after an election). ErrNotLeader on a follower.
func (n *Node) Barrier(ctx context.Context) error {
	ctx, cancel := n.timeout(ctx)
	defer cancel()
	deadline, _ := ctx.Deadline()
	term := n.raft.CurrentTerm()
	if err := n.raft.Barrier(time.Until(deadline)).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return n.notLeader()
		}
		return fmt.Errorf("%w: barrier: %v", meta.ErrUnavailable, err)
	}
	n.noteCommitted(term)
	return nil
}

// ---- reads: linearizable on the leader ----

func (n *Node) HeadBucket(ctx context.Context, name string) (meta.Bucket, error) {
	if err := n.linearize(ctx); err != nil {
		return meta.Bucket{}, err
	}
	return n.store.HeadBucket(ctx, name)
}

func (n *Node) ListBuckets(ctx context.Context) ([]meta.Bucket, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.ListBuckets(ctx)
}

func (n *Node) Get(ctx context.Context, bucket, key string) (meta.Manifest, error) {
	if err := n.linearize(ctx); err != nil {
		return meta.Manifest{}, err
	}
	return n.store.Get(ctx, bucket, key)
}

func (n *Node) List(ctx context.Context, bucket string, opts meta.ListOptions) (meta.ListResult, error) {
	if err := n.linearize(ctx); err != nil {
		return meta.ListResult{}, err
	}
	return n.store.List(ctx, bucket, opts)
}

func (n *Node) GetUpload(ctx context.Context, bucket, key, uploadID string) (meta.Upload, error) {
	if err := n.linearize(ctx); err != nil {
		return meta.Upload{}, err
	}
	return n.store.GetUpload(ctx, bucket, key, uploadID)
}

func (n *Node) ListParts(ctx context.Context, bucket, key, uploadID string) ([]meta.Part, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.ListParts(ctx, bucket, key, uploadID)
}

func (n *Node) ListUploads(ctx context.Context, bucket string, opts meta.UploadListOptions) (meta.UploadListResult, error) {
	if err := n.linearize(ctx); err != nil {
		return meta.UploadListResult{}, err
	}
	return n.store.ListUploads(ctx, bucket, opts)
}

func (n *Node) StaleUploads(ctx context.Context, before time.Time, limit int) ([]meta.Upload, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.StaleUploads(ctx, before, limit)
}

func (n *Node) Map(ctx context.Context) (*cluster.Map, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.Map(ctx)
}

func (n *Node) NodeShards(ctx context.Context, node cluster.NodeID, after string, limit int) ([]meta.ShardKey, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.NodeShards(ctx, node, after, limit)
}

func (n *Node) HasShard(ctx context.Context, node cluster.NodeID, shardID string) (bool, error) {
	if err := n.linearize(ctx); err != nil {
		return false, err
	}
	return n.store.HasShard(ctx, node, shardID)
}

func (n *Node) ListGarbage(ctx context.Context, limit int) ([]meta.Garbage, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.ListGarbage(ctx, limit)
}

func (n *Node) ListGarbagePage(ctx context.Context, q meta.GarbageQuery) ([]meta.Garbage, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.ListGarbagePage(ctx, q)
}

func (n *Node) GarbageNodes(ctx context.Context) ([]cluster.NodeID, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.GarbageNodes(ctx)
}

func (n *Node) Degraded(ctx context.Context, limit int) ([]meta.DegradedEntry, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.Degraded(ctx, limit)
}

func (n *Node) Status(ctx context.Context) (meta.Status, error) {
	if err := n.linearize(ctx); err != nil {
		return meta.Status{}, err
	}
	return n.store.Status(ctx)
}

func (n *Node) ScanManifests(ctx context.Context, afterBucket, afterKey string, limit int) ([]meta.Manifest, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.ScanManifests(ctx, afterBucket, afterKey, limit)
}

func (n *Node) BadReports(ctx context.Context, limit int) ([]meta.BadShard, error) {
	if err := n.linearize(ctx); err != nil {
		return nil, err
	}
	return n.store.BadReports(ctx, limit)
}

// RepairStats is this replica's copy of the repair loop's last report
// (not linearized: it is for status display).
func (n *Node) RepairStats() (meta.RepairStats, bool) { return n.store.RepairStats() }

var _ io.Closer = (*Node)(nil)
