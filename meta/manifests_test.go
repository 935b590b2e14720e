package meta_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/meta"
)

// TestScanManifestsPagesEveryObject: the scan of every object visits each
// manifest of every bucket once, in (bucket, key) order, page by page —
// also keys that extend another key and buckets whose name extends
// another's — and ends with a short page.
func TestScanManifestsPagesEveryObject(t *testing.T) {
	s := openT(t, meta.Config{FS: vfs.NewMem()})
	var want []string
	for _, b := range []string{"a", "a-b", "b"} {
		if err := s.CreateBucket(ctx, b, ""); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"k", "k\x01", "k/x", "z"} {
			m := meta.Manifest{Bucket: b, Key: k, VersionID: "v-" + b + k, Size: 200, ETag: "x", Created: time.Now(), Segments: []meta.Segment{oneSegment(1, b+k)}}
			if _, err := s.Commit(ctx, m); err != nil {
				t.Fatal(err)
			}
			want = append(want, fmt.Sprintf("%s/%q", b, k))
		}
	}
	if err := s.CreateBucket(ctx, "empty", ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	var afterBucket, afterKey string
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("the scan does not end")
		}
		ms, err := s.ScanManifests(ctx, afterBucket, afterKey, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if len(m.Segments) != 1 || m.Segments[0].Shards[0].ID != m.Bucket+m.Key+"-0" {
				t.Fatalf("manifest %s/%q: %+v", m.Bucket, m.Key, m.Segments)
			}
			got = append(got, fmt.Sprintf("%s/%q", m.Bucket, m.Key))
		}
		if len(ms) < 5 {
			break
		}
		afterBucket, afterKey = ms[len(ms)-1].Bucket, ms[len(ms)-1].Key
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scanned\n%v\nwant\n%v", got, want)
	}
}
