package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shale-store/shale/cluster"
)

// Op names one kind of mutation.
type Op string

// The mutations. Each is one Command; the method of Service (or of *Store)
// with the same name builds it.
const (
	OpCreateBucket    Op = "create_bucket"
	OpDeleteBucket    Op = "delete_bucket"
	OpCommit          Op = "commit"
	OpDelete          Op = "delete"
	OpUpdateShards    Op = "update_shards"
	OpCreateUpload    Op = "create_upload"
	OpPutPart         Op = "put_part"
	OpCompleteUpload  Op = "complete_upload"
	OpAbortUpload     Op = "abort_upload"
	OpHeartbeat       Op = "heartbeat"
	OpAdmin           Op = "admin"
	OpSetWeight       Op = "set-weight"
	OpTick            Op = "tick"
	OpReportBad       Op = "report_bad"
	OpAddGarbage      Op = "add_garbage"
	OpRemoveGarbage   Op = "remove_garbage"
	OpResolveDegraded Op = "resolve_degraded"
	OpSetRepairStats  Op = "set_repair_stats"
	// OpGrace gives every node a fresh DownAfter (and a down node a fresh
	// OutAfter) from the command's time: a new meta process, or a new raft
	// leader, has not been hearing heartbeats and must not time nodes out
	// for its own silence.
	OpGrace Op = "grace"
	// OpSetReplica and OpRemoveReplica keep the meta replicas' records
	// (Replica): where each one's API is.
	OpSetReplica    Op = "set_replica"
	OpRemoveReplica Op = "remove_replica"
)

// Command is one mutation as a value: the operation's arguments plus
// everything non-deterministic, stamped once by the proposer (Stamp): the
// time, generated ids (an upload's ID) and the client's request id. Apply
// runs it on any replica with the same outcome, reading only the store and
// the command (and the replica's Config durations, which must agree across
// replicas: DownAfter, OutAfter, GarbageGrace).
type Command struct {
	Op Op `json:"op"`
	// Time is the proposer's clock when it proposed; apply uses it as "now".
	Time time.Time `json:"time"`
	// Request is the client's request id: a command whose id was applied
	// before (within RequestRetention) is not applied again and returns the
	// first result. Empty: no deduplication.
	Request string `json:"request,omitempty"`

	Bucket     string         `json:"bucket,omitempty"`
	Key        string         `json:"key,omitempty"`
	Region     string         `json:"region,omitempty"`
	UploadID   string         `json:"upload_id,omitempty"`
	Generation uint64         `json:"generation,omitempty"`
	Manifest   *Manifest      `json:"manifest,omitempty"`
	Updates    []ShardUpdate  `json:"updates,omitempty"`
	Upload     *Upload        `json:"upload,omitempty"`
	Part       *Part          `json:"part,omitempty"`
	Report     *NodeReport    `json:"report,omitempty"`
	Node       cluster.NodeID `json:"node,omitempty"`
	Action     AdminAction    `json:"action,omitempty"`
	Weight     int64          `json:"weight,omitempty"`
	Bad        *BadShard      `json:"bad,omitempty"`
	Garbage    []Garbage      `json:"garbage,omitempty"`
	Repair     *RepairStats   `json:"repair,omitempty"`
	Replica    *Replica       `json:"replica,omitempty"`
	// If is the condition of a conditional commit or complete (nil: none).
	If *CommitCondition `json:"if,omitempty"`
}

// commandFormat is the first byte of an encoded command.
const commandFormat = 1

// EncodeCommand lays c out for a log entry: a format byte, then JSON.
func EncodeCommand(c Command) ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Op, err)
	}
	return append([]byte{commandFormat}, js...), nil
}

// DecodeCommand reads what EncodeCommand wrote. ErrCorrupt.
func DecodeCommand(v []byte) (Command, error) {
	if len(v) == 0 || v[0] != commandFormat {
		return Command{}, fmt.Errorf("%w: command format", ErrCorrupt)
	}
	var c Command
	if err := json.Unmarshal(v[1:], &c); err != nil {
		return Command{}, fmt.Errorf("%w: command: %v", ErrCorrupt, err)
	}
	return c, nil
}

// Result is what applying a command returned, as a value that can be
// recorded (for exactly-once) and carried back to the proposer. A rejection
// (a sentinel error: no such bucket, conflict, …) is a result too: every
// replica rejects alike.
type Result struct {
	Manifest *Manifest `json:"manifest,omitempty"`
	Upload   *Upload   `json:"upload,omitempty"`
	OK       bool      `json:"ok,omitempty"`
	// Code names the sentinel error (see errorCodes); Msg is the full
	// message. Empty Code: success.
	Code string `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

// errorCodes are the sentinel errors an apply may reject with. Any other
// error of apply is the store failing (I/O), not a decision.
var errorCodes = map[string]error{
	"no_such_bucket":   ErrNoSuchBucket,
	"bucket_exists":    ErrBucketExists,
	"bucket_not_empty": ErrBucketNotEmpty,
	"no_such_key":      ErrNoSuchKey,
	"no_such_upload":   ErrNoSuchUpload,
	"no_such_node":     ErrNoSuchNode,
	"node_in_use":      ErrNodeInUse,
	"invalid_argument": ErrInvalidArgument,
	"conflict":         ErrConflict,
	"precondition":     ErrPreconditionFailed,
	"corrupt":          ErrCorrupt,
}

// rejection returns the Result of a deterministic rejection, or ok=false
// when err is not one (the store failed).
func rejection(err error) (Result, bool) {
	for code, sentinel := range errorCodes {
		if errors.Is(err, sentinel) {
			return Result{Code: code, Msg: err.Error()}, true
		}
	}
	return Result{}, false
}

// Err returns the rejection as an error that errors.Is matches against its
// sentinel, or nil.
func (r Result) Err() error {
	if r.Code == "" {
		return nil
	}
	sentinel, ok := errorCodes[r.Code]
	if !ok {
		sentinel = ErrCorrupt
	}
	return &appliedError{msg: r.Msg, sentinel: sentinel}
}

type appliedError struct {
	msg      string
	sentinel error
}

func (e *appliedError) Error() string { return e.msg }
func (e *appliedError) Unwrap() error { return e.sentinel }

// ErrNotLeader: a replica that is not the raft leader was asked to mutate
// (or to serve a linearizable read). errors.As with *NotLeaderError gives
// the leader's address when the replica knows it.
var ErrNotLeader = errors.New("meta: not the leader")

// NotLeaderError says which replica leads, as far as the answering one
// knows (empty while no leader is known: an election is under way).
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderAddr == "" {
		return "meta: not the leader (no leader known)"
	}
	return fmt.Sprintf("meta: not the leader; leader %s at %s", e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

type requestIDKey struct{}

// WithRequestID returns ctx carrying a client request id: the mutation
// made with it is applied at most once however often it is retried with
// the same id (within RequestRetention).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewRequestID returns a fresh random request id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// Stamp fills in what the proposer decides: the time (now, unless set),
// the request id from ctx (unless set) and an upload's ID. It is the only
// place a command picks up anything non-deterministic.
func Stamp(ctx context.Context, c *Command, now time.Time) {
	if c.Time.IsZero() {
		c.Time = now.UTC().Round(0)
	}
	if c.Request == "" {
		c.Request = RequestID(ctx)
	}
	if c.Op == OpCreateUpload && c.Upload != nil && c.Upload.ID == "" {
		u := *c.Upload
		u.ID = newUploadID(c.Time)
		c.Upload = &u
	}
}

// Validate checks what can be checked without the store: a proposer
// rejects such a command before it reaches the log, and apply checks it
// again. ErrInvalidArgument (or ErrNoSuchBucket/ErrNoSuchUpload for names
// that cannot exist, as the read methods answer).
func (c *Command) Validate() error {
	if c.If != nil {
		if c.Op != OpCommit && c.Op != OpCompleteUpload {
			return fmt.Errorf("%w: %s takes no condition", ErrInvalidArgument, c.Op)
		}
		if c.If.Absent && c.If.ETag != "" {
			return fmt.Errorf("%w: a condition is either absent or an ETag, not both", ErrInvalidArgument)
		}
	}
	switch c.Op {
	case OpCreateBucket:
		if err := validBucket(c.Bucket); err != nil {
			return err
		}
	case OpCommit, OpCompleteUpload:
		if c.Manifest == nil {
			return fmt.Errorf("%w: %s without a manifest", ErrInvalidArgument, c.Op)
		}
		if err := validateManifest(c.Manifest); err != nil {
			return err
		}
	case OpCreateUpload:
		if c.Upload == nil {
			return fmt.Errorf("%w: %s without an upload", ErrInvalidArgument, c.Op)
		}
		if err := validKey(c.Upload.Key); err != nil {
			return err
		}
		if c.Upload.ID != "" {
			if err := validUploadID(c.Upload.ID); err != nil {
				return err
			}
		}
	case OpPutPart:
		if c.Part == nil {
			return fmt.Errorf("%w: %s without a part", ErrInvalidArgument, c.Op)
		}
		num := c.Part.Segment.Number
		if num < 1 || num > MaxPartNumber {
			return fmt.Errorf("%w: part number %d", ErrInvalidArgument, num)
		}
		if err := validateSegment(c.Part.Segment); err != nil {
			return err
		}
	case OpHeartbeat:
		if c.Report == nil {
			return fmt.Errorf("%w: %s without a report", ErrInvalidArgument, c.Op)
		}
		if err := cluster.ValidateNodeID(c.Report.ID); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
	case OpSetWeight:
		if err := cluster.ValidateNodeID(c.Node); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
		if c.Weight < 0 {
			return fmt.Errorf("%w: weight %d of %s: want bytes > 0, or 0 for its capacity", ErrInvalidArgument, c.Weight, c.Node)
		}
	case OpReportBad:
		if c.Bad == nil || cluster.ValidateNodeID(c.Bad.Node) != nil || c.Bad.ShardID == "" {
			return fmt.Errorf("%w: bad-shard report needs a node and a shard id", ErrInvalidArgument)
		}
	case OpSetRepairStats:
		if c.Repair == nil {
			return fmt.Errorf("%w: %s without stats", ErrInvalidArgument, c.Op)
		}
	case OpSetReplica:
		if c.Replica == nil {
			return fmt.Errorf("%w: %s without a replica", ErrInvalidArgument, c.Op)
		}
		if err := c.Replica.Validate(); err != nil {
			return err
		}
	case OpRemoveReplica:
		if c.Replica == nil || cluster.ValidateNodeID(cluster.NodeID(c.Replica.ID)) != nil {
			return fmt.Errorf("%w: %s needs a replica id", ErrInvalidArgument, c.Op)
		}
	case OpDeleteBucket, OpDelete, OpUpdateShards, OpAbortUpload, OpAdmin, OpTick,
		OpAddGarbage, OpRemoveGarbage, OpResolveDegraded, OpGrace:
	default:
		return fmt.Errorf("%w: unknown command %q", ErrInvalidArgument, c.Op)
	}
	return nil
}
