package meta

// CONTRACT FILE: the exported API below is what other packages build against.
// Keep names and signatures; add what you need (and tell the coordinator).

import (
	"context"
	"errors"
	"time"

	"github.com/shale-store/shale/cluster"
)

var (
	ErrNoSuchBucket   = errors.New("meta: no such bucket")
	ErrBucketExists   = errors.New("meta: bucket already exists")
	ErrBucketNotEmpty = errors.New("meta: bucket not empty")
	ErrNoSuchKey      = errors.New("meta: no such key")
	ErrNoSuchUpload   = errors.New("meta: no such upload")
	ErrNoSuchNode     = errors.New("meta: no such node")
	// ErrNodeInUse: a node cannot be removed from the map yet — it is not
	// out, still sends heartbeats, or meta still places a shard on it.
	ErrNodeInUse       = errors.New("meta: node still in use")
	ErrInvalidArgument = errors.New("meta: invalid argument")
	// ErrConflict: a compare-and-swap lost (the object's generation moved on:
	// it was overwritten or deleted meanwhile).
	ErrConflict = errors.New("meta: generation conflict")
	// ErrPreconditionFailed: a conditional commit (CommitIf,
	// CompleteUploadIf) found the key's current version not as its
	// CommitCondition required; nothing changed.
	ErrPreconditionFailed = errors.New("meta: precondition failed")
	// ErrUnavailable: the metadata service could not be reached (a remote
	// client's transport failed); the call may or may not have been applied.
	ErrUnavailable = errors.New("meta: service unavailable")
)

// Bucket is one bucket.
type Bucket struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Region  string    `json:"region,omitempty"`
}

// ShardRef locates one shard of one segment.
type ShardRef struct {
	Index    int            `json:"index"`    // 0..k+m-1
	Node     cluster.NodeID `json:"node"`     // "" when the shard was never written (degraded commit)
	ID       string         `json:"id"`       // shard id on that node
	Size     int64          `json:"size"`     // bytes of the shard stream
	Checksum uint64         `json:"checksum"` // erasure.Verifier.Summary
}

// Segment is one independently coded run of object bytes: the whole object
// for a simple PUT, one part for a multipart upload.
type Segment struct {
	Number    int        `json:"number"` // part number (1 for a simple PUT)
	Size      int64      `json:"size"`   // object bytes in this segment
	ETag      string     `json:"etag"`   // hex MD5 of the segment's bytes (quoted? no: bare hex)
	K         int        `json:"k"`
	M         int        `json:"m"`
	BlockSize int        `json:"block_size"`
	Shards    []ShardRef `json:"shards"` // len k+m, Shards[i].Index == i
}

// Manifest is one committed object version.
type Manifest struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id"` // unique per commit, chosen by the writer
	// Generation is assigned by meta on every commit or shard update of this
	// key; it only grows. CAS operations compare it.
	Generation  uint64            `json:"generation"`
	Size        int64             `json:"size"`
	ETag        string            `json:"etag"` // bare (unquoted) ETag as S3 shows it inside quotes
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`   // Content-Encoding, Content-Disposition, Cache-Control, Content-Language, Expires
	UserMeta    map[string]string `json:"user_meta,omitempty"` // x-amz-meta-* (lower-case names, without the prefix)
	Checksums   map[string]string `json:"checksums,omitempty"` // "CRC32" → base64, … (x-amz-checksum-*)
	Created     time.Time         `json:"created"`
	Segments    []Segment         `json:"segments"`
}

// CommitCondition is what a conditional commit requires of the key's
// current version, checked in the same apply as the commit (so two
// conditional commits of one key are decided in log order, never both on a
// stale view). The zero value requires nothing.
type CommitCondition struct {
	// Absent: the key must have no current version (S3's If-None-Match: *),
	// else ErrPreconditionFailed.
	Absent bool `json:"absent,omitempty"`
	// ETag, when set, is the bare ETag the current version must have (S3's
	// If-Match), compared exactly: ErrNoSuchKey when the key has no current
	// version, ErrPreconditionFailed when its ETag differs.
	ETag string `json:"etag,omitempty"`
}

// IsZero reports whether c requires nothing.
func (c CommitCondition) IsZero() bool { return !c.Absent && c.ETag == "" }

// ListOptions selects objects in a bucket, in UTF-8 binary key order.
type ListOptions struct {
	Prefix    string
	Delimiter string
	After     string // exclusive start key (start-after, marker or continuation)
	Limit     int    // max keys + common prefixes returned (1..1000)
}

// ObjectEntry is one listed object.
type ObjectEntry struct {
	Key     string    `json:"key"`
	Size    int64     `json:"size"`
	ETag    string    `json:"etag"`
	Created time.Time `json:"created"`
}

// ListResult is one page of a listing. Objects and CommonPrefixes are each
// sorted; together they hold at most Limit entries.
type ListResult struct {
	Objects        []ObjectEntry `json:"objects"`
	CommonPrefixes []string      `json:"common_prefixes"`
	Truncated      bool          `json:"truncated"`
	// NextAfter is the key (or common prefix) to pass as After for the next page.
	NextAfter string `json:"next_after"`
}

// Upload is an in-progress multipart upload.
type Upload struct {
	ID          string            `json:"id"`
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	UserMeta    map[string]string `json:"user_meta,omitempty"`
	Checksums   map[string]string `json:"checksums,omitempty"` // requested algorithm, if any
	Created     time.Time         `json:"created"`
}

// UploadListOptions selects one page of a bucket's uploads in progress
// (ListUploads), in S3's order: by key in UTF-8 binary order, then by upload
// ID. IDs that meta assigns start with the initiation time, so within a key
// that is initiation order, as S3 lists them.
type UploadListOptions struct {
	Prefix    string `json:"prefix,omitempty"`
	Delimiter string `json:"delimiter,omitempty"`
	// KeyMarker and UploadIDMarker say where the page starts (S3's
	// key-marker and upload-id-marker). Without UploadIDMarker the page
	// starts after every upload of KeyMarker (after everything under it
	// when KeyMarker is a common prefix); with it, after that upload of
	// KeyMarker, at the next ID. UploadIDMarker without KeyMarker is
	// ignored. A common prefix at or before KeyMarker is not listed again.
	KeyMarker      string `json:"key_marker,omitempty"`
	UploadIDMarker string `json:"upload_id_marker,omitempty"`
	// Limit bounds uploads plus common prefixes; ≤ 0 or above
	// MaxListLimit means MaxListLimit.
	Limit int `json:"limit,omitempty"`
}

// UploadListResult is one page of uploads. Uploads and CommonPrefixes are
// each in listing order; together they hold at most the limit.
type UploadListResult struct {
	Uploads        []Upload `json:"uploads"`
	CommonPrefixes []string `json:"common_prefixes"`
	Truncated      bool     `json:"truncated"`
	// NextKeyMarker and NextUploadIDMarker, set when Truncated, continue
	// the listing: the last upload listed, or the last common prefix and
	// an empty ID.
	NextKeyMarker      string `json:"next_key_marker,omitempty"`
	NextUploadIDMarker string `json:"next_upload_id_marker,omitempty"`
}

// Part is one uploaded part; the segment holds its coding and shards.
type Part struct {
	UploadID  string            `json:"upload_id"`
	Segment   Segment           `json:"segment"`
	Checksums map[string]string `json:"checksums,omitempty"`
	Created   time.Time         `json:"created"`
}

// NodeReport is what a node sends when it registers or heartbeats.
type NodeReport struct {
	ID       cluster.NodeID `json:"id"`
	Addr     string         `json:"addr"`
	Domain   cluster.Domain `json:"domain"`
	Capacity int64          `json:"capacity"`
	Used     int64          `json:"used"`
	Free     int64          `json:"free"`
	Full     bool           `json:"full"`
	// Damaged: the node's store met corruption in its index (it reports
	// Full too, so placement sends it nothing new); shown to operators.
	Damaged bool `json:"damaged,omitempty"`
	PID     int  `json:"pid,omitempty"`
}

// AdminAction is an operator's request about a node.
type AdminAction string

const (
	ActionOut   AdminAction = "out"
	ActionIn    AdminAction = "in"
	ActionDrain AdminAction = "drain"
	// ActionRemove forgets a node: only one that is out, has sent no
	// heartbeat for DownAfter (its process is stopped) and holds no shard
	// of any object or upload (drained, or repaired away). The garbage
	// collector then forgets its queued garbage (its disk is retired).
	ActionRemove AdminAction = "remove"
)

// ShardKey names one shard of one object version precisely enough for repair.
type ShardKey struct {
	Bucket     string         `json:"bucket"`
	Key        string         `json:"key"`
	Generation uint64         `json:"generation"` // manifest generation the reporter read
	Segment    int            `json:"segment"`    // index into Manifest.Segments
	Index      int            `json:"index"`      // shard index
	Node       cluster.NodeID `json:"node"`
	ShardID    string         `json:"shard_id"`
	// UploadID is set when the shard belongs to a part of a multipart upload
	// in progress; Segment then holds the part number and Generation is 0.
	UploadID string `json:"upload_id,omitempty"`
}

// BadShard is a report of a missing or corrupt shard (from a degraded read or
// a scrubber).
type BadShard struct {
	ShardKey
	Reason   string    `json:"reason"` // "corrupt", "missing"
	Reported time.Time `json:"reported"`
}

// Garbage is a shard no manifest references any more (overwritten, deleted,
// replaced by repair, or written by a PUT that never committed). It is
// deleted from its node by garbage collection once NotBefore has passed.
type Garbage struct {
	Node      cluster.NodeID `json:"node"`
	ShardID   string         `json:"shard_id"`
	NotBefore time.Time      `json:"not_before"`
}

// GarbageQuery asks ListGarbagePage for one page of the garbage queue.
type GarbageQuery struct {
	// Node, when set, lists only that node's entries, ordered by NotBefore
	// then shard id. Empty lists every node's, ordered by NotBefore, then
	// node, then shard id (ListGarbage's order).
	Node cluster.NodeID `json:"node,omitempty"`
	// After is the cursor: the page starts strictly after this entry in the
	// listing's order (pass the last entry of the previous page). Nil: from
	// the start. With Node set, After.Node is ignored.
	After *Garbage `json:"after,omitempty"`
	// DueBy, when set, leaves out the entries whose NotBefore is after it,
	// so a page holds only what a collector may delete at DueBy.
	DueBy time.Time `json:"due_by,omitzero"`
	// Limit bounds the page; ≤ 0 means 1000.
	Limit int `json:"limit,omitempty"`
}

// ShardUpdate replaces shards of one segment of a manifest (repair's commit).
type ShardUpdate struct {
	Segment int        `json:"segment"`
	Shards  []ShardRef `json:"shards"` // each replaces the shard with the same Index
}

// Service is the metadata service's contract, implemented by *Store (pebble)
// and by meta/remote's Client. Every mutation is durable (pebble sync) before
// it returns.
type Service interface {
	// Buckets.
	CreateBucket(ctx context.Context, name, region string) error // ErrBucketExists
	HeadBucket(ctx context.Context, name string) (Bucket, error) // ErrNoSuchBucket
	DeleteBucket(ctx context.Context, name string) error         // ErrNoSuchBucket, ErrBucketNotEmpty (also when uploads are in progress? no: only objects)
	ListBuckets(ctx context.Context) ([]Bucket, error)

	// Objects. Commit makes m visible (last writer wins by commit order),
	// assigns m.Generation and returns the committed manifest; the shards of
	// the manifest it replaced are queued as garbage in the same batch. A
	// manifest with any segment short of k+m shards (Node == "") is queued
	// for repair in the same batch. ErrNoSuchBucket.
	Commit(ctx context.Context, m Manifest) (Manifest, error)
	// CommitIf is Commit when the key's current version meets cond (see
	// CommitCondition), checked atomically with the commit; otherwise it
	// changes nothing and returns ErrPreconditionFailed (or ErrNoSuchKey
	// for an ETag condition on an absent key). ErrInvalidArgument for a
	// condition with both Absent and ETag.
	CommitIf(ctx context.Context, m Manifest, cond CommitCondition) (Manifest, error)
	Get(ctx context.Context, bucket, key string) (Manifest, error) // ErrNoSuchKey, ErrNoSuchBucket
	// Delete removes the key; its shards become garbage. Absent key: ok=false, nil error.
	Delete(ctx context.Context, bucket, key string) (ok bool, err error)
	List(ctx context.Context, bucket string, opts ListOptions) (ListResult, error)
	// UpdateShards is repair's compare-and-swap: it applies the update only if
	// the key's generation is still gen (else ErrConflict, and nothing
	// changes); the replaced shards become garbage; returns the new manifest.
	UpdateShards(ctx context.Context, bucket, key string, gen uint64, upd []ShardUpdate) (Manifest, error)

	// Multipart.
	CreateUpload(ctx context.Context, u Upload) (Upload, error) // assigns ID if empty; ErrNoSuchBucket
	GetUpload(ctx context.Context, bucket, key, uploadID string) (Upload, error)
	// PutPart records a part; a part with the same number is replaced and its
	// shards become garbage.
	PutPart(ctx context.Context, bucket, key string, p Part) error
	ListParts(ctx context.Context, bucket, key, uploadID string) ([]Part, error) // by part number
	// ListUploads returns one page (at most MaxListLimit) of the bucket's
	// uploads in progress; see UploadListOptions. ErrNoSuchBucket.
	ListUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadListResult, error)
	// CompleteUpload commits m (built by the caller from the chosen parts) and
	// removes the upload in one batch; parts not used become garbage.
	// ErrConflict when m references a shard no current part holds (a part
	// was replaced after the caller listed them); nothing changes then.
	CompleteUpload(ctx context.Context, uploadID string, m Manifest) (Manifest, error)
	// CompleteUploadIf is CompleteUpload when the key's current version
	// meets cond, checked as CommitIf does; a refusal changes nothing (the
	// upload and its parts stay, to be completed or aborted later).
	CompleteUploadIf(ctx context.Context, uploadID string, m Manifest, cond CommitCondition) (Manifest, error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error // parts become garbage

	// Membership.
	Heartbeat(ctx context.Context, r NodeReport) error // registers on first call
	Map(ctx context.Context) (*cluster.Map, error)
	Admin(ctx context.Context, id cluster.NodeID, a AdminAction) error // ErrNoSuchNode
	// SetWeight sets a node's placement weight in bytes, 0 for its
	// capacity (cluster.Node.Weighted). ErrNoSuchNode.
	SetWeight(ctx context.Context, id cluster.NodeID, weight int64) error

	// Repair and garbage.
	ReportBad(ctx context.Context, b BadShard) error
	// NodeShards lists shards meta believes are on node (the node→shard index),
	// after the given shard key cursor, up to limit.
	NodeShards(ctx context.Context, node cluster.NodeID, after string, limit int) ([]ShardKey, error)
	AddGarbage(ctx context.Context, g []Garbage) error
	// ListGarbage returns the first limit entries of the whole queue,
	// earliest NotBefore first (ListGarbagePage without a cursor).
	ListGarbage(ctx context.Context, limit int) ([]Garbage, error)
	// ListGarbagePage returns one page of the queue, of one node or of all,
	// after a cursor, optionally only the entries due by a time. A page
	// shorter than the limit is the last one.
	ListGarbagePage(ctx context.Context, q GarbageQuery) ([]Garbage, error)
	// GarbageNodes returns, by id, every node that has at least one queued
	// garbage entry (due or not), known to the map or not. Its cost grows
	// with the number of such nodes, not of entries.
	GarbageNodes(ctx context.Context) ([]cluster.NodeID, error)
	RemoveGarbage(ctx context.Context, g []Garbage) error
}

// DegradedEntry is one object version queued for repair.
type DegradedEntry struct {
	Bucket     string    `json:"bucket"`
	Key        string    `json:"key"`
	Generation uint64    `json:"generation"`
	Since      time.Time `json:"since"`
}

// Status is the cluster summary that `shale admin status` shows.
type Status struct {
	Nodes []cluster.Node `json:"nodes"`
	Epoch uint64         `json:"epoch"`
	// ObjectsByHealthyShards maps "the smallest number of healthy shards of
	// any segment of an object" to the count of objects.
	ObjectsByHealthyShards map[int]int64 `json:"objects_by_healthy_shards"`
	// ObjectsBySpareShards maps "the fewest healthy shards beyond k of any
	// segment of an object" — the further losses it survives: m when
	// whole, 0 at k, negative when unreadable — to the count of objects.
	// Unlike ObjectsByHealthyShards it means the same for every coding
	// (k+m segments and small objects' 1+m copies alike).
	ObjectsBySpareShards map[int]int64 `json:"objects_by_spare_shards"`
	Objects              int64         `json:"objects"`
	// RepairQueue is the number of objects waiting for repair: the larger
	// of DegradedQueue and the repair loop's current candidate count
	// (Repair.QueueObjects), which also counts the objects with shards on
	// out or draining nodes that the degraded queue does not hold.
	RepairQueue int64 `json:"repair_queue"`
	// DegradedQueue is the depth of meta's degraded queue alone (objects
	// committed short of shards or with a reported bad shard).
	DegradedQueue int64 `json:"degraded_queue"`
	Garbage       int64 `json:"garbage"`
	// Repair is the repair loop's progress, when one runs beside meta.
	Repair *RepairStats `json:"repair,omitempty"`
}

// RepairStats is what the repair loop reports about itself; meta keeps the
// latest copy so status shows it, and persists it so a restarted meta (and
// its repair loop) carry on with the counters, the current episode and the
// last time-to-repair. The fields marked transient describe the running loop
// and read zero after a restart until the loop reports again.
type RepairStats struct {
	RateBytesPerSec float64 `json:"rate_bytes_per_sec"` // over the last 30 s; transient
	// ETASeconds is the remaining QueueBytes over the rate while work
	// remains, 0 when idle or before a rate is known; transient.
	ETASeconds float64 `json:"eta_seconds"`
	// QueueBytes is what is left to re-create of the current pass's
	// candidates: their lost bytes at the start of the pass, less those of
	// each object repaired since; transient.
	QueueBytes int64 `json:"queue_bytes"`
	// QueueObjects is the current pass's candidate count, less the objects
	// repaired (or found gone) since; transient.
	QueueObjects    int64 `json:"queue_objects"`
	ShardsRepaired  int64 `json:"shards_repaired"`
	BytesRepaired   int64 `json:"bytes_repaired"`
	ObjectsRepaired int64 `json:"objects_repaired"`
	Conflicts       int64 `json:"conflicts"`
	Failures        int64 `json:"failures"`
	// LastTimeToRepairSeconds: from a node going out to every object being
	// back at k+m, for the most recent such episode.
	LastTimeToRepairSeconds float64 `json:"last_time_to_repair_seconds"`
	// EpisodeStart is when the repair episode in progress began (the
	// earliest out or draining node's cluster.Node.Since); zero when none
	// runs.
	EpisodeStart time.Time `json:"episode_start,omitzero"`
	// LastEpisodeEnd is when the last episode ended (every object whole
	// again); nodes that went out before it belong to finished episodes.
	LastEpisodeEnd time.Time `json:"last_episode_end,omitzero"`
	Updated        time.Time `json:"updated"`
	// Throttle is what the repair loop's adaptive throttle was doing when
	// the figures were published; transient. Empty: a loop without one.
	Throttle RepairThrottle `json:"throttle,omitzero"`
	// Rebalance is the rebalancer's progress (it runs in the repair
	// loop, after repair); zero when the loop has none.
	Rebalance RebalanceStats `json:"rebalance,omitzero"`
}

// RebalanceStats is what the rebalancer reports: a round starts when the
// placement changes (a node added or back in, a weight changed, a node
// gone), plans every object against the new placement and then moves the
// shards that placement puts elsewhere.
type RebalanceStats struct {
	// State is "idle" (nothing to move), "settling" (placement changed
	// moments ago: a round starts once it holds still), "planning"
	// (counting what the round will move), "moving", or "waiting" (a
	// round left objects it could not move yet — not whole, a node down —
	// and the next one starts after a pause); transient.
	State string `json:"state"`
	// ObjectsToMove and BytesToMove are what is left to move in the
	// current round: the planning scan's count less what was moved or
	// given up since; transient.
	ObjectsToMove int64 `json:"objects_to_move"`
	BytesToMove   int64 `json:"bytes_to_move"`
	// Planned is the objects examined by the round's planning scan so far
	// (all of them once State is "moving"); transient.
	Planned int64 `json:"planned"`
	// RateBytesPerSec is the bytes moved per second over the last 30 s;
	// ETASeconds is BytesToMove over it (0 before a rate is known);
	// transient.
	RateBytesPerSec float64 `json:"rate_bytes_per_sec"`
	ETASeconds      float64 `json:"eta_seconds"`
	// Counters since the cluster began.
	ObjectsMoved int64 `json:"objects_moved"`
	ShardsMoved  int64 `json:"shards_moved"`
	BytesMoved   int64 `json:"bytes_moved"`
	Conflicts    int64 `json:"conflicts"`
	Failures     int64 `json:"failures"`
	// Skipped counts objects a round left for a later one (not whole, or
	// with a shard on a node that is not up).
	Skipped int64 `json:"skipped"`
	// RoundStart is when the round in progress began (zero: none);
	// LastRoundSeconds is how long the last finished round took.
	RoundStart       time.Time `json:"round_start,omitzero"`
	LastRoundSeconds float64   `json:"last_round_seconds,omitempty"`
}

// RepairThrottle is the adaptive repair throttle's state
// (repair.ThrottleStatus).
type RepairThrottle struct {
	State    string `json:"state"`     // "off", "full" or "yield"
	Limit    int    `json:"limit"`     // objects allowed in flight
	InFlight int    `json:"in_flight"` // objects in flight
	// ForegroundRate is the foreground requests per second meta served
	// over the throttle's last window.
	ForegroundRate float64 `json:"foreground_rate"`
	PauseSeconds   float64 `json:"pause_seconds,omitempty"` // wait between objects while yielding
	Reason         string  `json:"reason,omitempty"`
}
