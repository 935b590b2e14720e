package meta

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrCorrupt is returned when a stored value cannot be decoded: the database
// was written by an incompatible version or damaged.
var ErrCorrupt = errors.New("meta: corrupt stored value")

// manifestFormat is the first byte of every stored manifest value.
const manifestFormat = 1

// encodeManifest lays a manifest out as
//
//	byte     format (1)
//	uvarint  size
//	uvarint  len(etag), etag bytes
//	varint   created, Unix nanoseconds
//	rest     the manifest as JSON
//
// The fixed head lets List read what it shows without decoding the JSON.
func encodeManifest(m Manifest) ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s/%s: %w", m.Bucket, m.Key, err)
	}
	out := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(m.ETag)+len(js))
	out = append(out, manifestFormat)
	out = binary.AppendUvarint(out, uint64(m.Size))
	out = binary.AppendUvarint(out, uint64(len(m.ETag)))
	out = append(out, m.ETag...)
	out = binary.AppendVarint(out, m.Created.UnixNano())
	return append(out, js...), nil
}

// decodeEntryHead reads the fixed head of a stored manifest and returns the
// listing fields and the offset of the JSON.
func decodeEntryHead(v []byte) (size int64, etag string, created time.Time, rest int, err error) {
	if len(v) == 0 || v[0] != manifestFormat {
		return 0, "", time.Time{}, 0, fmt.Errorf("%w: manifest format", ErrCorrupt)
	}
	p := 1
	sz, n := binary.Uvarint(v[p:])
	if n <= 0 {
		return 0, "", time.Time{}, 0, fmt.Errorf("%w: manifest size", ErrCorrupt)
	}
	p += n
	el, n := binary.Uvarint(v[p:])
	if n <= 0 || el > uint64(len(v)-p-n) {
		return 0, "", time.Time{}, 0, fmt.Errorf("%w: manifest etag", ErrCorrupt)
	}
	p += n
	etag = string(v[p : p+int(el)])
	p += int(el)
	ns, n := binary.Varint(v[p:])
	if n <= 0 {
		return 0, "", time.Time{}, 0, fmt.Errorf("%w: manifest time", ErrCorrupt)
	}
	p += n
	return int64(sz), etag, time.Unix(0, ns).UTC(), p, nil
}

func decodeManifest(v []byte) (Manifest, error) {
	_, _, _, p, err := decodeEntryHead(v)
	if err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(v[p:], &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest json: %v", ErrCorrupt, err)
	}
	return m, nil
}

func decodeJSON(v []byte, into any, what string) error {
	if err := json.Unmarshal(v, into); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are marshalled here; they cannot fail.
		panic(fmt.Sprintf("meta: marshal %T: %v", v, err))
	}
	return b
}
