package meta

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestManifestFormatKnownAnswer pins the stored manifest layout: changing it
// needs a new format byte and a migration.
func TestManifestFormatKnownAnswer(t *testing.T) {
	m := Manifest{Bucket: "b", Key: "k", Size: 300, ETag: "ab",
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Generation: 7}
	v, err := encodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	const head = "01" + "ac02" + "02" + "6162" + "80c899efddc7e09630" // zigzag varint of 1735787045e9 ns
	if got := hex.EncodeToString(v[:len(head)/2]); got != head {
		t.Fatalf("head = %s, want %s", got, head)
	}
	const js = `{"bucket":"b","key":"k","version_id":"","generation":7,"size":300,"etag":"ab","created":"2025-01-02T03:04:05Z","segments":null}`
	if got := string(v[len(head)/2:]); got != js {
		t.Fatalf("json = %s\nwant %s", got, js)
	}
	size, etag, created, _, err := decodeEntryHead(v)
	if err != nil || size != 300 || etag != "ab" || !created.Equal(m.Created) {
		t.Fatalf("decodeEntryHead = %d %q %v %v", size, etag, created, err)
	}
	back, err := decodeManifest(v)
	if err != nil || back.Generation != 7 || back.Key != "k" {
		t.Fatalf("decodeManifest = %+v, %v", back, err)
	}
}

// TestKeyspaceKnownAnswer pins a few keys of the on-disk keyspace.
func TestKeyspaceKnownAnswer(t *testing.T) {
	cases := []struct {
		got  []byte
		want string
	}{
		{objectKey("bk", "a\x00b"), "o/bk\x00a\x00b"},
		{uploadIndexKey("bk", "a\x00b", "u1"), "ub/bk\x00a\x00\xffb\x00\x01u1"},
		{partKey("u1", 12), "p/u1/00012"},
		{shardIndexKey("n1", "s"), "s/n1\x00s"},
		{badKey("n1", "s"), "x/n1\x00s"},
		{nodeKey("n1"), "n/n1"},
		{garbageKey(Garbage{Node: "n", ShardID: "s", NotBefore: time.Unix(0, 258)}), "g/\x00\x00\x00\x00\x00\x00\x01\x02n\x00s"},
	}
	for _, c := range cases {
		if string(c.got) != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}

func FuzzDecodeManifest(f *testing.F) {
	v, _ := encodeManifest(Manifest{Bucket: "b", Key: "k", ETag: "e", Size: 1})
	f.Add(v)
	f.Add([]byte{1})
	f.Add([]byte{1, 0x80})
	f.Add([]byte{1, 5, 200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		size, etag, _, rest, err := decodeEntryHead(b)
		if err != nil {
			return
		}
		if rest > len(b) || len(etag) > len(b) {
			t.Fatalf("head read past the value: rest %d etag %d len %d", rest, len(etag), len(b))
		}
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to a value with the same head.
		v, err := encodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		if s2, e2, _, _, err := decodeEntryHead(v); err != nil || s2 != m.Size || e2 != m.ETag {
			t.Fatalf("re-encode: %d %q %v (head said %d %q)", s2, e2, err, size, etag)
		}
	})
}

// FuzzEscapeKey checks the escaped key encoding keeps order and parses back
// unambiguously when followed by the terminator and a suffix.
func FuzzEscapeKey(f *testing.F) {
	f.Add("a", "a\x00")
	f.Add("a\x00", "a\x00\x00")
	f.Add("", "\x00")
	f.Add("x\xff", "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		ea := append(escapeKey(a), 0, 1)
		eb := append(escapeKey(b), 0, 1)
		if c1, c2 := strings.Compare(a, b), bytes.Compare(ea, eb); c1 != c2 {
			t.Fatalf("order of %q, %q: %d, escaped %d", a, b, c1, c2)
		}
		// The terminator is the first 0x00 followed by 0x01.
		i := bytes.Index(ea, []byte{0, 1})
		if i != len(ea)-2 {
			t.Fatalf("terminator of %q found at %d of %d", a, i, len(ea))
		}
		if !bytes.HasPrefix(escapeKey(a+b), escapeKey(a)) {
			t.Fatalf("escape is not prefix-preserving for %q + %q", a, b)
		}
	})
}
