package meta

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/shale-store/shale/cluster"
)

// The keyspace. Every key starts with a short ASCII tag and a slash; the
// tags are distinct as byte strings, so no key of one family is a prefix of a
// key of another. Bucket names never contain 0x00 or '/', node ids never
// contain either (cluster.ValidateNodeID), upload ids are [A-Za-z0-9._-], so
// the first 0x00 after a bucket or node is always the separator. Object keys
// and shard ids are the last component and are stored raw, so a prefix scan
// yields them in binary (UTF-8) order. Where an object key is followed by
// another component (the upload index) it is escaped order-preservingly:
// 0x00 → 0x00 0xff, terminated by 0x00 0x01.
//
//	c/gen                                 uint64 BE: last generation handed out (global, so per key it only grows)
//	c/epoch                               uint64 BE: cluster map epoch
//	b/<bucket>                            Bucket JSON
//	o/<bucket>\x00<key>                   manifest value (see encodeManifest)
//	u/<upload>                            Upload JSON
//	ub/<bucket>\x00<esc key><upload>      empty: uploads of a bucket in key order
//	ua/<created ns BE64><upload>          empty: uploads by initiation time, oldest first
//	c/uploadage                           empty: ua/ is complete (a store written before ua/ existed is indexed once on open)
//	p/<upload>/<part %05d>                Part JSON
//	n/<node>                              nodeRecord JSON (membership)
//	s/<node>\x00<shard id>                ShardKey JSON: the node→shard index
//	c/gcnode                              empty: gn/ is complete (a store written before gn/ existed is indexed once on open)
//	c/repair                              RepairStats JSON: the repair loop's last report (its durable part)
//	g/<not-before ns BE64><node>\x00<id>  Garbage JSON, oldest first
//	gn/<node>\x00<not-before ns BE64><id> Garbage JSON: the same entries by node, oldest first per node
//	d/<bucket>\x00<key>                   DegradedEntry JSON: the repair queue
//	dt/<since ns BE64><bucket>\x00<key>   DegradedEntry JSON: the queue by age
//	x/<node>\x00<shard id>                BadShard JSON: reports not yet repaired
//	l/<node>                              liveness JSON: last heartbeat, down since, full, usage
//	c/applied                             uint64 BE: raft index of the last command applied (absent: never replicated)
//	r/<request id>                        requestRecord JSON: a client request's first result (exactly-once)
//	ra/<time ns BE64><request id>         empty: request records by time, for their bounded retention
//	mr/<replica id>                       Replica JSON: a meta replica's addresses and zone
var (
	keyGen   = []byte("c/gen")
	keyEpoch = []byte("c/epoch")
	// keyGarbageByNode marks gn/ as complete.
	keyGarbageByNode = []byte("c/gcnode")
	keyRepairStats   = []byte("c/repair")
	// keyUploadByAge marks ua/ as complete.
	keyUploadByAge = []byte("c/uploadage")
	keyApplied     = []byte("c/applied")

	pfxBucket      = []byte("b/")
	pfxObject      = []byte("o/")
	pfxUpload      = []byte("u/")
	pfxUploadIndex = []byte("ub/")
	pfxUploadAge   = []byte("ua/")
	pfxPart        = []byte("p/")
	pfxNode        = []byte("n/")
	pfxShard       = []byte("s/")
	pfxGarbage     = []byte("g/")
	pfxNodeGarbage = []byte("gn/")
	pfxDegraded    = []byte("d/")
	pfxDegradedAge = []byte("dt/")
	pfxBad         = []byte("x/")
	pfxLiveness    = []byte("l/")
	pfxRequest     = []byte("r/")
	pfxRequestAge  = []byte("ra/")
	pfxReplica     = []byte("mr/")
)

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var sep = []byte{0}

func bucketKey(bucket string) []byte { return cat(pfxBucket, []byte(bucket)) }

// objectPrefix is the prefix of every object key of bucket.
func objectPrefix(bucket string) []byte { return cat(pfxObject, []byte(bucket), sep) }

func objectKey(bucket, key string) []byte {
	return cat(pfxObject, []byte(bucket), sep, []byte(key))
}

func uploadKey(id string) []byte { return cat(pfxUpload, []byte(id)) }

// escapeKey encodes an object key so it can be followed by more components
// without ambiguity and without changing the order of keys.
func escapeKey(k string) []byte {
	out := make([]byte, 0, len(k)+2)
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			out = append(out, 0, 0xff)
			continue
		}
		out = append(out, k[i])
	}
	return out
}

func uploadIndexPrefix(bucket, keyPrefix string) []byte {
	return cat(pfxUploadIndex, []byte(bucket), sep, escapeKey(keyPrefix))
}

func uploadIndexKey(bucket, key, id string) []byte {
	return cat(uploadIndexPrefix(bucket, key), []byte{0, 1}, []byte(id))
}

// parseUploadIndex splits the part of an upload index key after the
// bucket's prefix into the object key and the upload ID.
func parseUploadIndex(rest []byte) (key, id string, err error) {
	k := make([]byte, 0, len(rest))
	for i := 0; i < len(rest); i++ {
		if rest[i] != 0 {
			k = append(k, rest[i])
			continue
		}
		if i+1 >= len(rest) {
			break
		}
		switch rest[i+1] {
		case 0xff:
			k = append(k, 0)
			i++
		case 1:
			return string(k), string(rest[i+2:]), nil
		default:
			return "", "", fmt.Errorf("%w: upload index key %q", ErrCorrupt, rest)
		}
	}
	return "", "", fmt.Errorf("%w: upload index key %q", ErrCorrupt, rest)
}

func uploadAgeKey(u Upload) []byte { return cat(pfxUploadAge, timeKey(u.Created), []byte(u.ID)) }

func partPrefix(upload string) []byte { return cat(pfxPart, []byte(upload), []byte("/")) }

func partKey(upload string, number int) []byte {
	return cat(partPrefix(upload), fmt.Appendf(nil, "%05d", number))
}

func nodeKey(id cluster.NodeID) []byte { return cat(pfxNode, []byte(id)) }

func livenessKey(id cluster.NodeID) []byte { return cat(pfxLiveness, []byte(id)) }

func requestKey(id string) []byte { return cat(pfxRequest, []byte(id)) }

func requestAgeKey(t time.Time, id string) []byte {
	return cat(pfxRequestAge, timeKey(t), []byte(id))
}

func shardIndexPrefix(node cluster.NodeID) []byte { return cat(pfxShard, []byte(node), sep) }

func shardIndexKey(node cluster.NodeID, shardID string) []byte {
	return cat(shardIndexPrefix(node), []byte(shardID))
}

func badKey(node cluster.NodeID, shardID string) []byte {
	return cat(pfxBad, []byte(node), sep, []byte(shardID))
}

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// timeKey orders times as unsigned nanoseconds since the Unix epoch; times
// before 1970 sort as 1970.
func timeKey(t time.Time) []byte {
	ns := t.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return be64(uint64(ns))
}

func garbageKey(g Garbage) []byte {
	return cat(pfxGarbage, timeKey(g.NotBefore), []byte(g.Node), sep, []byte(g.ShardID))
}

// nodeGarbagePrefix is the prefix of every garbage entry of node in gn/.
func nodeGarbagePrefix(node cluster.NodeID) []byte { return cat(pfxNodeGarbage, []byte(node), sep) }

func nodeGarbageKey(g Garbage) []byte {
	return cat(nodeGarbagePrefix(g.Node), timeKey(g.NotBefore), []byte(g.ShardID))
}

// dueBound is the smallest key under p (a garbage prefix followed by the
// not-before time) past every entry whose NotBefore is at or before t.
func dueBound(p []byte, t time.Time) []byte {
	return cat(p, timeKey(t.Add(time.Nanosecond)))
}

func degradedKey(bucket, key string) []byte {
	return cat(pfxDegraded, []byte(bucket), sep, []byte(key))
}

func degradedAgeKey(e DegradedEntry) []byte {
	return cat(pfxDegradedAge, timeKey(e.Since), []byte(e.Bucket), sep, []byte(e.Key))
}

// prefixEnd returns the smallest key greater than every key that starts with
// p, or nil when there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// keySuccessor is the smallest key greater than k.
func keySuccessor(k []byte) []byte { return append(append([]byte(nil), k...), 0) }
