package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Index keys (pebble, in DIR/index):
//
//	s/<id>   → entry: one stored shard
//	d/<id>   → the shard's bytes, for a shard stored inline (entry.inline)
//	b/<id>   → bad mark: unix nanos (8 bytes LE) + the error text, set by the scrubber
//	m/clean  → present only while the store is closed cleanly
const (
	keyShard = "s/"
	keyData  = "d/"
	keyBad   = "b/"
	keyClean = "m/clean"
)

func shardKey(id string) []byte { return []byte(keyShard + id) }
func badKey(id string) []byte   { return []byte(keyBad + id) }
func dataKey(id string) []byte  { return []byte(keyData + id) }

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p string) []byte {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return b[:i+1]
		}
	}
	return nil
}

// entry is the index record of one shard.
type entry struct {
	lay     layout
	sum     uint64
	created time.Time
	ino     uint64 // inode of the shard file, 0 if unknown; detects a file replaced behind the index
	inline  bool   // the bytes are in the index under d/<id>, there is no file
}

func (e entry) info(id string) Info {
	return Info{ID: id, Size: e.lay.size, Checksum: e.sum, Created: e.created}
}

// entryVersion is the first byte of an encoded entry. Version 1 (no flags)
// is still read: every version-1 entry describes a shard file.
const (
	entryVersion  = 2
	entryVersion1 = 1
)

// flagInline marks an entry whose shard bytes are stored in the index.
const flagInline = 1

var errBadEntry = errors.New("storage: malformed index entry")

// encode: version | uvarint size | uvarint recLen | uvarint records |
// u64 checksum | varint created (unix nanos) | uvarint inode | uvarint flags.
func (e entry) encode() []byte {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen64+8)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(e.lay.size))
	b = binary.AppendUvarint(b, uint64(e.lay.recLen))
	b = binary.AppendUvarint(b, uint64(e.lay.records))
	b = binary.LittleEndian.AppendUint64(b, e.sum)
	b = binary.AppendVarint(b, e.created.UnixNano())
	b = binary.AppendUvarint(b, e.ino)
	var flags uint64
	if e.inline {
		flags |= flagInline
	}
	if flags == 0 {
		// A file shard's entry stays version 1, readable by a build
		// from before inline shards (a downgrade then loses nothing but
		// the inline shards, which it cannot read).
		b[0] = entryVersion1
		return b
	}
	b = binary.AppendUvarint(b, flags)
	return b
}

func decodeEntry(b []byte) (entry, error) {
	if len(b) == 0 || (b[0] != entryVersion && b[0] != entryVersion1) {
		return entry{}, fmt.Errorf("%w: version byte", errBadEntry)
	}
	version := b[0]
	b = b[1:]
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > 1<<62 {
			return entry{}, errBadEntry
		}
		vals[i], b = v, b[n:]
	}
	if len(b) < 8 {
		return entry{}, errBadEntry
	}
	e := entry{lay: layout{size: int64(vals[0]), recLen: int64(vals[1]), records: int64(vals[2])}}
	e.sum, b = binary.LittleEndian.Uint64(b), b[8:]
	ns, n := binary.Varint(b)
	if n <= 0 {
		return entry{}, errBadEntry
	}
	e.created, b = time.Unix(0, ns).UTC(), b[n:]
	ino, n := binary.Uvarint(b)
	if n <= 0 {
		return entry{}, errBadEntry
	}
	e.ino, b = ino, b[n:]
	if version != entryVersion1 {
		flags, n := binary.Uvarint(b)
		if n <= 0 || flags&^flagInline != 0 {
			return entry{}, errBadEntry
		}
		e.inline, b = flags&flagInline != 0, b[n:]
	}
	if len(b) != 0 {
		return entry{}, errBadEntry
	}
	if !e.lay.valid() {
		return entry{}, fmt.Errorf("%w: impossible layout %+v", errBadEntry, e.lay)
	}
	return e, nil
}
