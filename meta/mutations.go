package meta

import (
	"context"
	"fmt"

	"github.com/shale-store/shale/cluster"
)

// Proposer runs a command: it stamps it (Stamp), gets it applied (locally,
// or through a raft log on every replica) and returns the result. The error
// is the proposer's failure (the store failed, not the leader, no quorum,
// ctx done); a rejection comes back in Result.Code.
type Proposer func(ctx context.Context, c Command) (Result, error)

// Mutations implements every mutation of Service (and the repair-side ones
// of *Store) by building a Command and handing it to Propose. *Store embeds
// it with a local proposer; a replicated service embeds it with one that
// goes through the raft log, so both build identical commands.
type Mutations struct {
	Propose Proposer
}

// run validates c, proposes it and turns a rejection into its error.
func (m Mutations) run(ctx context.Context, c Command) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	r, err := m.Propose(ctx, c)
	if err != nil {
		return Result{}, err
	}
	return r, r.Err()
}

// CreateBucket creates a bucket. ErrBucketExists if it exists.
func (m Mutations) CreateBucket(ctx context.Context, name, region string) error {
	_, err := m.run(ctx, Command{Op: OpCreateBucket, Bucket: name, Region: region})
	return err
}

// DeleteBucket removes an empty bucket; uploads still in progress in it are
// aborted in the same batch (their parts become garbage). ErrNoSuchBucket,
// ErrBucketNotEmpty when any object remains.
func (m Mutations) DeleteBucket(ctx context.Context, name string) error {
	_, err := m.run(ctx, Command{Op: OpDeleteBucket, Bucket: name})
	return err
}

// Commit makes mf the current version of its key; see Service.
func (m Mutations) Commit(ctx context.Context, mf Manifest) (Manifest, error) {
	r, err := m.run(ctx, Command{Op: OpCommit, Manifest: &mf})
	if err != nil {
		return Manifest{}, wrapOnce(err, "commit %s/%s", mf.Bucket, mf.Key)
	}
	return *r.Manifest, nil
}

// CommitIf commits mf when the key's current version meets cond; see
// Service.
func (m Mutations) CommitIf(ctx context.Context, mf Manifest, cond CommitCondition) (Manifest, error) {
	r, err := m.run(ctx, Command{Op: OpCommit, Manifest: &mf, If: condition(cond)})
	if err != nil {
		return Manifest{}, wrapOnce(err, "commit %s/%s", mf.Bucket, mf.Key)
	}
	return *r.Manifest, nil
}

// Delete removes the key; see Service.
func (m Mutations) Delete(ctx context.Context, bucket, key string) (bool, error) {
	r, err := m.run(ctx, Command{Op: OpDelete, Bucket: bucket, Key: key})
	return r.OK, err
}

// UpdateShards is repair's compare-and-swap; see Service.
func (m Mutations) UpdateShards(ctx context.Context, bucket, key string, gen uint64, upd []ShardUpdate) (Manifest, error) {
	r, err := m.run(ctx, Command{Op: OpUpdateShards, Bucket: bucket, Key: key, Generation: gen, Updates: upd})
	if err != nil {
		return Manifest{}, err
	}
	return *r.Manifest, nil
}

// CreateUpload starts a multipart upload; the proposer assigns its ID when
// u.ID is empty. ErrNoSuchBucket; ErrInvalidArgument for a bad or used ID.
func (m Mutations) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	r, err := m.run(ctx, Command{Op: OpCreateUpload, Upload: &u})
	if err != nil {
		return Upload{}, wrapOnce(err, "create upload %s/%s", u.Bucket, u.Key)
	}
	return *r.Upload, nil
}

// PutPart records a part; see Service.
func (m Mutations) PutPart(ctx context.Context, bucket, key string, p Part) error {
	_, err := m.run(ctx, Command{Op: OpPutPart, Bucket: bucket, Key: key, Part: &p})
	return wrapOnce(err, "put part %d of %s/%s", p.Segment.Number, bucket, key)
}

// CompleteUpload commits mf and removes the upload; see Service.
func (m Mutations) CompleteUpload(ctx context.Context, uploadID string, mf Manifest) (Manifest, error) {
	r, err := m.run(ctx, Command{Op: OpCompleteUpload, UploadID: uploadID, Manifest: &mf})
	if err != nil {
		return Manifest{}, wrapOnce(err, "complete upload %s of %s/%s", uploadID, mf.Bucket, mf.Key)
	}
	return *r.Manifest, nil
}

// CompleteUploadIf completes the upload when the key's current version
// meets cond; see Service.
func (m Mutations) CompleteUploadIf(ctx context.Context, uploadID string, mf Manifest, cond CommitCondition) (Manifest, error) {
	r, err := m.run(ctx, Command{Op: OpCompleteUpload, UploadID: uploadID, Manifest: &mf, If: condition(cond)})
	if err != nil {
		return Manifest{}, wrapOnce(err, "complete upload %s of %s/%s", uploadID, mf.Bucket, mf.Key)
	}
	return *r.Manifest, nil
}

// AbortUpload removes the upload; its parts' shards become garbage.
func (m Mutations) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	_, err := m.run(ctx, Command{Op: OpAbortUpload, Bucket: bucket, Key: key, UploadID: uploadID})
	return err
}

// Heartbeat registers or refreshes a node; see (*Store).applyHeartbeat.
func (m Mutations) Heartbeat(ctx context.Context, r NodeReport) error {
	_, err := m.run(ctx, Command{Op: OpHeartbeat, Report: &r})
	return wrapOnce(err, "heartbeat")
}

// Admin applies an operator's action on a node. ErrNoSuchNode.
func (m Mutations) Admin(ctx context.Context, id cluster.NodeID, a AdminAction) error {
	_, err := m.run(ctx, Command{Op: OpAdmin, Node: id, Action: a})
	return err
}

// SetWeight sets a node's placement weight in bytes (0: back to its
// capacity). ErrNoSuchNode; ErrInvalidArgument for a negative weight.
func (m Mutations) SetWeight(ctx context.Context, id cluster.NodeID, weight int64) error {
	_, err := m.run(ctx, Command{Op: OpSetWeight, Node: id, Weight: weight})
	return err
}

// Tick applies the time-based membership transitions at the proposer's
// time.
func (m Mutations) Tick(ctx context.Context) error {
	_, err := m.run(ctx, Command{Op: OpTick})
	return err
}

// Grace gives every node a fresh DownAfter (and a down node a fresh
// OutAfter) from now; see OpGrace.
func (m Mutations) Grace(ctx context.Context) error {
	_, err := m.run(ctx, Command{Op: OpGrace})
	return err
}

// ReportBad records a missing or corrupt shard; see (*Store).applyReportBad.
func (m Mutations) ReportBad(ctx context.Context, b BadShard) error {
	_, err := m.run(ctx, Command{Op: OpReportBad, Bad: &b})
	return wrapOnce(err, "report bad shard %s on %s", b.ShardID, b.Node)
}

// AddGarbage queues shards for deletion; see (*Store).applyAddGarbage.
func (m Mutations) AddGarbage(ctx context.Context, g []Garbage) error {
	_, err := m.run(ctx, Command{Op: OpAddGarbage, Garbage: g})
	return err
}

// RemoveGarbage forgets entries the collector deleted.
func (m Mutations) RemoveGarbage(ctx context.Context, g []Garbage) error {
	_, err := m.run(ctx, Command{Op: OpRemoveGarbage, Garbage: g})
	return err
}

// ResolveDegraded tells meta that repair made generation gen whole.
func (m Mutations) ResolveDegraded(ctx context.Context, bucket, key string, gen uint64) error {
	_, err := m.run(ctx, Command{Op: OpResolveDegraded, Bucket: bucket, Key: key, Generation: gen})
	return err
}

// SetRepairStats records the repair loop's latest figures. A failure is
// dropped: the next report retries.
func (m Mutations) SetRepairStats(rs RepairStats) {
	_, _ = m.run(context.Background(), Command{Op: OpSetRepairStats, Repair: &rs})
}

// condition is c as a command carries it: nil when it requires nothing, so
// an unconditional CommitIf is the very command Commit builds.
func condition(c CommitCondition) *CommitCondition {
	if c.IsZero() {
		return nil
	}
	return &c
}

// wrapOnce prefixes err with the operation unless it is a rejection that
// apply already described.
func wrapOnce(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*appliedError); ok {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
