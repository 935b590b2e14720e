// Package metatest is the conformance suite for meta.Service: every
// implementation (the pebble Store on disk and in memory, the remote client
// over HTTP) must pass Run. It checks observable behaviour only, through the
// Service interface, plus the repair-queue methods when the implementation
// has them (RepairQueue).
package metatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
)

// RepairQueue is the part of *meta.Store beyond meta.Service that the suite
// also checks when an implementation offers it.
type RepairQueue interface {
	Degraded(ctx context.Context, limit int) ([]meta.DegradedEntry, error)
	ResolveDegraded(ctx context.Context, bucket, key string, gen uint64) error
	Status(ctx context.Context) (meta.Status, error)
}

// Run runs the suite; open returns a fresh, empty service for each subtest
// (and arranges its cleanup with t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) meta.Service) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s meta.Service)
	}{
		{"Buckets", testBuckets},
		{"CommitGetOverwrite", testCommitGetOverwrite},
		{"Delete", testDelete},
		{"List", testList},
		{"ListMaxKeys", testListMaxKeys},
		{"UpdateShards", testUpdateShards},
		{"Multipart", testMultipart},
		{"ListUploadsPages", testListUploadsPages},
		{"CompleteStalePart", testCompleteStalePart},
		{"ConditionalCommit", testConditionalCommit},
		{"ConditionalComplete", testConditionalComplete},
		{"Membership", testMembership},
		{"BadReports", testBadReports},
		{"DegradedCommit", testDegradedCommit},
		{"NodeShards", testNodeShards},
		{"Garbage", testGarbage},
		{"GarbagePages", testGarbagePages},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ctx = context.Background()

// manifest builds a k+m manifest of one segment whose shard i is on node
// "n<i>" with id "<tag>-<i>".
func manifest(bucket, key, tag string, k, m int) meta.Manifest {
	return meta.Manifest{
		Bucket: bucket, Key: key, VersionID: "v-" + tag, Size: int64(100 * k), ETag: "etag-" + tag,
		ContentType: "text/plain", UserMeta: map[string]string{"tag": tag},
		Created:  time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Segments: []meta.Segment{segment(1, tag, k, m)},
	}
}

func segment(number int, tag string, k, m int) meta.Segment {
	seg := meta.Segment{Number: number, Size: int64(100 * k), ETag: "e-" + tag, K: k, M: m, BlockSize: 4096}
	for i := 0; i < k+m; i++ {
		seg.Shards = append(seg.Shards, meta.ShardRef{
			Index: i, Node: cluster.NodeID(fmt.Sprintf("n%d", i)), ID: fmt.Sprintf("%s-%d", tag, i),
			Size: 100, Checksum: uint64(i + 1),
		})
	}
	return seg
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func bucket(t *testing.T, s meta.Service, name string) {
	t.Helper()
	must(t, s.CreateBucket(ctx, name, ""))
}

func commit(t *testing.T, s meta.Service, m meta.Manifest) meta.Manifest {
	t.Helper()
	out, err := s.Commit(ctx, m)
	if err != nil {
		t.Fatalf("commit %s/%s: %v", m.Bucket, m.Key, err)
	}
	return out
}

// garbageSet returns every garbage entry as "node/shard".
func garbageSet(t *testing.T, s meta.Service) map[string]meta.Garbage {
	t.Helper()
	gs, err := s.ListGarbage(ctx, 100000)
	must(t, err)
	out := map[string]meta.Garbage{}
	for _, g := range gs {
		out[string(g.Node)+"/"+g.ShardID] = g
	}
	return out
}

// nodeShards returns every indexed shard on node, paging by limit.
func nodeShards(t *testing.T, s meta.Service, node cluster.NodeID, limit int) []meta.ShardKey {
	t.Helper()
	var out []meta.ShardKey
	after := ""
	for {
		page, err := s.NodeShards(ctx, node, after, limit)
		must(t, err)
		if len(page) > limit {
			t.Fatalf("NodeShards returned %d > limit %d", len(page), limit)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		after = page[len(page)-1].ShardID
	}
}

func sameManifest(t *testing.T, got, want meta.Manifest) {
	t.Helper()
	if got.Bucket != want.Bucket || got.Key != want.Key || got.VersionID != want.VersionID ||
		got.Generation != want.Generation || got.Size != want.Size || got.ETag != want.ETag ||
		got.ContentType != want.ContentType || !got.Created.Equal(want.Created) ||
		fmt.Sprint(got.UserMeta) != fmt.Sprint(want.UserMeta) ||
		fmt.Sprint(got.Segments) != fmt.Sprint(want.Segments) {
		t.Fatalf("manifest\n got %+v\nwant %+v", got, want)
	}
}

func testBuckets(t *testing.T, s meta.Service) {
	_, err := s.HeadBucket(ctx, "b1")
	wantErr(t, err, meta.ErrNoSuchBucket)
	bucket(t, s, "b2")
	must(t, s.CreateBucket(ctx, "b1", "eu-1"))
	wantErr(t, s.CreateBucket(ctx, "b1", ""), meta.ErrBucketExists)
	b, err := s.HeadBucket(ctx, "b1")
	must(t, err)
	if b.Name != "b1" || b.Region != "eu-1" || b.Created.IsZero() {
		t.Fatalf("HeadBucket = %+v", b)
	}
	bs, err := s.ListBuckets(ctx)
	must(t, err)
	if len(bs) != 2 || bs[0].Name != "b1" || bs[1].Name != "b2" {
		t.Fatalf("ListBuckets = %+v", bs)
	}
	commit(t, s, manifest("b1", "k", "x", 2, 1))
	wantErr(t, s.DeleteBucket(ctx, "b1"), meta.ErrBucketNotEmpty)
	_, err = s.Delete(ctx, "b1", "k")
	must(t, err)
	must(t, s.DeleteBucket(ctx, "b1"))
	wantErr(t, s.DeleteBucket(ctx, "b1"), meta.ErrNoSuchBucket)
	_, err = s.HeadBucket(ctx, "b1")
	wantErr(t, err, meta.ErrNoSuchBucket)
	wantErr(t, s.CreateBucket(ctx, "bad\x00name", ""), meta.ErrInvalidArgument)
}

func testCommitGetOverwrite(t *testing.T, s meta.Service) {
	_, err := s.Commit(ctx, manifest("nob", "k", "a", 2, 1))
	wantErr(t, err, meta.ErrNoSuchBucket)
	_, err = s.Get(ctx, "nob", "k")
	wantErr(t, err, meta.ErrNoSuchBucket)
	bucket(t, s, "b")
	_, err = s.Get(ctx, "b", "k")
	wantErr(t, err, meta.ErrNoSuchKey)

	m1 := commit(t, s, manifest("b", "k", "a", 4, 2))
	if m1.Generation == 0 {
		t.Fatal("generation 0 after commit")
	}
	got, err := s.Get(ctx, "b", "k")
	must(t, err)
	want := manifest("b", "k", "a", 4, 2)
	want.Generation = m1.Generation
	sameManifest(t, got, want)
	if len(garbageSet(t, s)) != 0 {
		t.Fatal("garbage after first commit")
	}

	m2 := commit(t, s, manifest("b", "k", "b", 4, 2))
	if m2.Generation <= m1.Generation {
		t.Fatalf("generation %d after %d", m2.Generation, m1.Generation)
	}
	got, err = s.Get(ctx, "b", "k")
	must(t, err)
	if got.VersionID != "v-b" || got.Generation != m2.Generation {
		t.Fatalf("Get after overwrite = %+v", got)
	}
	gs := garbageSet(t, s)
	for i := 0; i < 6; i++ {
		g, ok := gs[fmt.Sprintf("n%d/a-%d", i, i)]
		if !ok {
			t.Fatalf("old shard %d not garbage: %v", i, gs)
		}
		if g.NotBefore.IsZero() {
			t.Fatal("garbage without NotBefore")
		}
		if _, ok := gs[fmt.Sprintf("n%d/b-%d", i, i)]; ok {
			t.Fatal("live shard is garbage")
		}
	}
	if len(gs) != 6 {
		t.Fatalf("%d garbage entries, want 6", len(gs))
	}

	// Committing again with the same shards (a retried commit) moves the
	// generation on but makes nothing garbage.
	m3 := commit(t, s, manifest("b", "k", "b", 4, 2))
	if m3.Generation <= m2.Generation {
		t.Fatalf("generation %d after %d", m3.Generation, m2.Generation)
	}
	if n := len(garbageSet(t, s)); n != 6 {
		t.Fatalf("re-commit of the same shards made garbage: %d entries", n)
	}
	sk := nodeShards(t, s, "n3", 10)
	if len(sk) != 1 || sk[0].ShardID != "b-3" || sk[0].Generation != m3.Generation || sk[0].Key != "k" || sk[0].Index != 3 {
		t.Fatalf("NodeShards(n3) = %+v", sk)
	}

	bad := manifest("b", "k2", "c", 2, 1)
	bad.Segments[0].Shards = bad.Segments[0].Shards[:2]
	_, err = s.Commit(ctx, bad)
	wantErr(t, err, meta.ErrInvalidArgument)
	_, err = s.Commit(ctx, manifest("b", "", "c", 2, 1))
	wantErr(t, err, meta.ErrInvalidArgument)
	_, err = s.Commit(ctx, manifest("b", "\xff\xfe", "c", 2, 1))
	wantErr(t, err, meta.ErrInvalidArgument)
}

func testDelete(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	_, err := s.Delete(ctx, "nob", "k")
	wantErr(t, err, meta.ErrNoSuchBucket)
	ok, err := s.Delete(ctx, "b", "k")
	must(t, err)
	if ok {
		t.Fatal("Delete of an absent key reported ok")
	}
	m1 := commit(t, s, manifest("b", "k", "a", 2, 1))
	ok, err = s.Delete(ctx, "b", "k")
	must(t, err)
	if !ok {
		t.Fatal("Delete of a present key reported !ok")
	}
	_, err = s.Get(ctx, "b", "k")
	wantErr(t, err, meta.ErrNoSuchKey)
	gs := garbageSet(t, s)
	for i := 0; i < 3; i++ {
		if _, ok := gs[fmt.Sprintf("n%d/a-%d", i, i)]; !ok {
			t.Fatalf("deleted shard %d not garbage", i)
		}
	}
	if sk := nodeShards(t, s, "n0", 10); len(sk) != 0 {
		t.Fatalf("index still holds deleted shards: %+v", sk)
	}
	m2 := commit(t, s, manifest("b", "k", "b", 2, 1))
	if m2.Generation <= m1.Generation {
		t.Fatalf("generation after delete/recreate %d ≤ %d", m2.Generation, m1.Generation)
	}
	res, err := s.List(ctx, "b", meta.ListOptions{})
	must(t, err)
	if len(res.Objects) != 1 {
		t.Fatalf("list after recreate: %+v", res)
	}
}

// listKeys are keys in no particular order; among them non-ASCII, 0x00,
// the highest code points and delimiter-heavy names.
var listKeys = []string{
	"a", "a/b", "a/c/d", "a/c/e", "a//x", "ab", "b", "b/", "é", "é/x", "日本/語", "日本",
	"k\x00", "k\x00a", "k", "k\x7f", "k/\x00", "\U0010FFFF", "\uFFFD/z", "\uFFFF", "z/z/z", "z",
	" space", "~tilde",
}

// modelList is the reference listing: entries (keys, or common prefixes
// rolled up) in binary order, those > After, the first Limit of them.
func modelList(keys []string, o meta.ListOptions) (objs, cps []string, truncated bool) {
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	type ent struct {
		s  string
		cp bool
	}
	var es []ent
	for _, k := range sorted {
		if !strings.HasPrefix(k, o.Prefix) {
			continue
		}
		if o.Delimiter != "" {
			if i := strings.Index(k[len(o.Prefix):], o.Delimiter); i >= 0 {
				cp := k[:len(o.Prefix)+i+len(o.Delimiter)]
				if len(es) == 0 || es[len(es)-1].s != cp {
					es = append(es, ent{cp, true})
				}
				continue
			}
		}
		es = append(es, ent{k, false})
	}
	n := 0
	for _, e := range es {
		if e.s <= o.After {
			continue
		}
		if n == o.Limit {
			return objs, cps, true
		}
		n++
		if e.cp {
			cps = append(cps, e.s)
		} else {
			objs = append(objs, e.s)
		}
	}
	return objs, cps, false
}

func testList(t *testing.T, s meta.Service) {
	_, err := s.List(ctx, "nob", meta.ListOptions{})
	wantErr(t, err, meta.ErrNoSuchBucket)
	bucket(t, s, "b")
	bucket(t, s, "b2") // a neighbour whose keys must never leak in
	for i, k := range listKeys {
		commit(t, s, manifest("b", k, fmt.Sprintf("t%d", i), 2, 1))
	}
	commit(t, s, manifest("b2", "a", "other", 2, 1))

	opts := []meta.ListOptions{
		{}, {Delimiter: "/"}, {Prefix: "a"}, {Prefix: "a/", Delimiter: "/"}, {Prefix: "k"},
		{Prefix: "k\x00"}, {Delimiter: "\x00"}, {Prefix: "日本"}, {Delimiter: "c/"}, {Prefix: "zz"},
		{After: "b"}, {After: "a/", Delimiter: "/"}, {After: "k\x00"}, {Delimiter: "//"},
	}
	for _, o := range opts {
		for _, limit := range []int{1, 2, 3, 1000} {
			o := o
			// One page must match the model exactly.
			o.Limit = limit
			res, err := s.List(ctx, "b", o)
			must(t, err)
			wo, wc, wt := modelList(listKeys, o)
			if fmt.Sprint(keysOf(res)) != fmt.Sprint(wo) || fmt.Sprint(res.CommonPrefixes) != fmt.Sprint(wc) || res.Truncated != wt {
				t.Fatalf("List(%#v) = %q %q %v, want %q %q %v", o, keysOf(res), res.CommonPrefixes, res.Truncated, wo, wc, wt)
			}
			// Paging through NextAfter covers every entry once, in order.
			var all []string
			page := o
			for pages := 0; ; pages++ {
				if pages > len(listKeys)+1 {
					t.Fatalf("List(%#v): paging does not end", o)
				}
				res, err := s.List(ctx, "b", page)
				must(t, err)
				if len(res.Objects)+len(res.CommonPrefixes) > limit {
					t.Fatalf("List(%#v): page of %d > limit", page, len(res.Objects)+len(res.CommonPrefixes))
				}
				all = append(all, mergeEntries(res)...)
				if !res.Truncated {
					break
				}
				if res.NextAfter == "" {
					t.Fatalf("List(%#v): truncated without NextAfter", page)
				}
				page.After = res.NextAfter
			}
			o.Limit = 1 << 20
			wo, wc, _ = modelList(listKeys, meta.ListOptions{Prefix: o.Prefix, Delimiter: o.Delimiter, After: o.After, Limit: 1 << 20})
			want := append(append([]string(nil), wo...), wc...)
			sort.Strings(want)
			if fmt.Sprint(all) != fmt.Sprint(want) {
				t.Fatalf("List(%#v) paged by %d:\n got %q\nwant %q", o, limit, all, want)
			}
		}
	}
	res, err := s.List(ctx, "b", meta.ListOptions{Prefix: "a/b", Limit: 10})
	must(t, err)
	if len(res.Objects) != 1 || res.Objects[0].Size != 200 || res.Objects[0].ETag != "etag-t1" || res.Objects[0].Created.IsZero() {
		t.Fatalf("entry = %+v", res.Objects)
	}
}

func keysOf(r meta.ListResult) []string {
	var out []string
	for _, o := range r.Objects {
		out = append(out, o.Key)
	}
	return out
}

// mergeEntries returns a page's keys and prefixes merged in order, checking
// each list is sorted.
func mergeEntries(r meta.ListResult) []string {
	out := append(keysOf(r), r.CommonPrefixes...)
	sort.Strings(out)
	return out
}

func testListMaxKeys(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	const n = meta.MaxListLimit + 5
	for i := 0; i < n; i++ {
		commit(t, s, manifest("b", fmt.Sprintf("k%05d", i), fmt.Sprintf("t%d", i), 1, 0))
	}
	for _, limit := range []int{0, 5000} {
		res, err := s.List(ctx, "b", meta.ListOptions{Limit: limit})
		must(t, err)
		if len(res.Objects) != meta.MaxListLimit || !res.Truncated || res.NextAfter != fmt.Sprintf("k%05d", meta.MaxListLimit-1) {
			t.Fatalf("limit %d: %d objects, truncated %v, next %q", limit, len(res.Objects), res.Truncated, res.NextAfter)
		}
		res, err = s.List(ctx, "b", meta.ListOptions{After: res.NextAfter, Limit: limit})
		must(t, err)
		if len(res.Objects) != 5 || res.Truncated || res.NextAfter != "" {
			t.Fatalf("second page: %d objects, truncated %v", len(res.Objects), res.Truncated)
		}
	}
	res, err := s.List(ctx, "b", meta.ListOptions{Limit: n - 1 - meta.MaxListLimit + 1, After: fmt.Sprintf("k%05d", meta.MaxListLimit-1)})
	must(t, err)
	if len(res.Objects) != 5 || res.Truncated {
		t.Fatalf("exact page: %d objects, truncated %v", len(res.Objects), res.Truncated)
	}
}

func testUpdateShards(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	m := commit(t, s, manifest("b", "k", "a", 2, 2))
	_, err := s.UpdateShards(ctx, "b", "k", m.Generation+1, nil)
	wantErr(t, err, meta.ErrConflict)
	_, err = s.UpdateShards(ctx, "b", "k", m.Generation, []meta.ShardUpdate{{Segment: 1}})
	wantErr(t, err, meta.ErrInvalidArgument)
	_, err = s.UpdateShards(ctx, "b", "k", m.Generation, []meta.ShardUpdate{{Segment: 0, Shards: []meta.ShardRef{{Index: 4, Node: "n9", ID: "r"}}}})
	wantErr(t, err, meta.ErrInvalidArgument)

	rep := meta.ShardRef{Index: 1, Node: "n9", ID: "repaired-1", Size: 100, Checksum: 7}
	m2, err := s.UpdateShards(ctx, "b", "k", m.Generation, []meta.ShardUpdate{{Segment: 0, Shards: []meta.ShardRef{rep}}})
	must(t, err)
	if m2.Generation <= m.Generation || m2.Segments[0].Shards[1] != rep || m2.Segments[0].Shards[0] != m.Segments[0].Shards[0] {
		t.Fatalf("UpdateShards = %+v", m2)
	}
	got, err := s.Get(ctx, "b", "k")
	must(t, err)
	sameManifest(t, got, m2)
	gs := garbageSet(t, s)
	if _, ok := gs["n1/a-1"]; !ok || len(gs) != 1 {
		t.Fatalf("garbage after repair = %v", gs)
	}
	if sk := nodeShards(t, s, "n1", 10); len(sk) != 0 {
		t.Fatalf("replaced shard still indexed: %+v", sk)
	}
	sk := nodeShards(t, s, "n9", 10)
	if len(sk) != 1 || sk[0].ShardID != "repaired-1" || sk[0].Generation != m2.Generation {
		t.Fatalf("NodeShards(n9) = %+v", sk)
	}
	if sk := nodeShards(t, s, "n0", 10); len(sk) != 1 || sk[0].Generation != m2.Generation {
		t.Fatalf("kept shard not re-indexed at the new generation: %+v", sk)
	}
	// The old generation lost.
	_, err = s.UpdateShards(ctx, "b", "k", m.Generation, []meta.ShardUpdate{{Segment: 0, Shards: []meta.ShardRef{rep}}})
	wantErr(t, err, meta.ErrConflict)
	// An overwrite wins over a repair that read the earlier version.
	commit(t, s, manifest("b", "k", "c", 2, 2))
	_, err = s.UpdateShards(ctx, "b", "k", m2.Generation, []meta.ShardUpdate{{Segment: 0, Shards: []meta.ShardRef{{Index: 0, Node: "n8", ID: "r0"}}}})
	wantErr(t, err, meta.ErrConflict)
	got, err = s.Get(ctx, "b", "k")
	must(t, err)
	if got.VersionID != "v-c" {
		t.Fatalf("conflicting update changed the object: %+v", got)
	}
	// So does a delete.
	_, err = s.Delete(ctx, "b", "k")
	must(t, err)
	_, err = s.UpdateShards(ctx, "b", "k", got.Generation, nil)
	wantErr(t, err, meta.ErrConflict)
}

func part(uploadID string, number int, tag string) meta.Part {
	return meta.Part{UploadID: uploadID, Segment: segment(number, tag, 2, 1)}
}

func testMultipart(t *testing.T, s meta.Service) {
	_, err := s.CreateUpload(ctx, meta.Upload{Bucket: "nob", Key: "k"})
	wantErr(t, err, meta.ErrNoSuchBucket)
	bucket(t, s, "b")
	u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "dir/k", ContentType: "a/b", UserMeta: map[string]string{"x": "y"}})
	must(t, err)
	if u.ID == "" || u.Created.IsZero() {
		t.Fatalf("CreateUpload = %+v", u)
	}
	got, err := s.GetUpload(ctx, "b", "dir/k", u.ID)
	must(t, err)
	if got.ID != u.ID || got.ContentType != "a/b" || got.UserMeta["x"] != "y" {
		t.Fatalf("GetUpload = %+v", got)
	}
	_, err = s.GetUpload(ctx, "b", "other", u.ID)
	wantErr(t, err, meta.ErrNoSuchUpload)
	_, err = s.GetUpload(ctx, "b", "dir/k", "nope")
	wantErr(t, err, meta.ErrNoSuchUpload)
	u2, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "dir/a", ID: "fixed-id"})
	must(t, err)
	if u2.ID != "fixed-id" {
		t.Fatalf("upload id %q, want fixed-id", u2.ID)
	}
	_, err = s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "other", ID: "x"})
	must(t, err)

	lr, err := s.ListUploads(ctx, "b", meta.UploadListOptions{Prefix: "dir/"})
	must(t, err)
	if ups := lr.Uploads; len(ups) != 2 || ups[0].Key != "dir/a" || ups[1].Key != "dir/k" || lr.Truncated {
		t.Fatalf("ListUploads = %+v", lr)
	}

	wantErr(t, s.PutPart(ctx, "b", "dir/k", part("nope", 1, "p")), meta.ErrNoSuchUpload)
	wantErr(t, s.PutPart(ctx, "b", "dir/k", part(u.ID, 0, "p")), meta.ErrInvalidArgument)
	must(t, s.PutPart(ctx, "b", "dir/k", part(u.ID, 2, "p2")))
	must(t, s.PutPart(ctx, "b", "dir/k", part(u.ID, 1, "p1old")))
	must(t, s.PutPart(ctx, "b", "dir/k", part(u.ID, 1, "p1")))
	must(t, s.PutPart(ctx, "b", "dir/k", part(u.ID, 3, "p3")))
	gs := garbageSet(t, s)
	if len(gs) != 3 || gs["n0/p1old-0"].ShardID == "" {
		t.Fatalf("garbage after part replace = %v", gs)
	}
	// Part shards are indexed while the upload is in progress.
	found := false
	for _, sk := range nodeShards(t, s, "n0", 10) {
		if sk.ShardID == "p3-0" && sk.UploadID == u.ID && sk.Segment == 3 {
			found = true
		}
	}
	if !found {
		t.Fatalf("part shard not indexed: %+v", nodeShards(t, s, "n0", 10))
	}
	ps, err := s.ListParts(ctx, "b", "dir/k", u.ID)
	must(t, err)
	if len(ps) != 3 || ps[0].Segment.Number != 1 || ps[0].Segment.Shards[0].ID != "p1-0" || ps[2].Segment.Number != 3 {
		t.Fatalf("ListParts = %+v", ps)
	}

	m := manifest("b", "dir/k", "mp", 2, 1)
	m.Segments = []meta.Segment{ps[0].Segment, ps[1].Segment}
	out, err := s.CompleteUpload(ctx, u.ID, m)
	must(t, err)
	if out.Generation == 0 || len(out.Segments) != 2 {
		t.Fatalf("CompleteUpload = %+v", out)
	}
	_, err = s.GetUpload(ctx, "b", "dir/k", u.ID)
	wantErr(t, err, meta.ErrNoSuchUpload)
	_, err = s.CompleteUpload(ctx, u.ID, m)
	wantErr(t, err, meta.ErrNoSuchUpload)
	gs = garbageSet(t, s)
	if len(gs) != 6 || gs["n2/p3-2"].ShardID == "" || gs["n0/p1-0"].ShardID != "" {
		t.Fatalf("garbage after complete = %v", gs)
	}
	for _, sk := range nodeShards(t, s, "n0", 10) {
		if sk.UploadID != "" || sk.ShardID == "p3-0" {
			t.Fatalf("index after complete holds %+v", sk)
		}
	}
	if sk := nodeShards(t, s, "n0", 10); len(sk) != 2 || sk[0].Generation != out.Generation || sk[1].Segment != 1 {
		t.Fatalf("index after complete = %+v", sk)
	}
	mg, err := s.Get(ctx, "b", "dir/k")
	must(t, err)
	sameManifest(t, mg, out)

	// Abort: parts become garbage, the upload is gone.
	must(t, s.PutPart(ctx, "b", "dir/a", part(u2.ID, 1, "q1")))
	must(t, s.AbortUpload(ctx, "b", "dir/a", u2.ID))
	wantErr(t, s.AbortUpload(ctx, "b", "dir/a", u2.ID), meta.ErrNoSuchUpload)
	if gs := garbageSet(t, s); gs["n1/q1-1"].ShardID == "" {
		t.Fatalf("aborted part not garbage: %v", gs)
	}
	lr, err = s.ListUploads(ctx, "b", meta.UploadListOptions{})
	must(t, err)
	if ups := lr.Uploads; len(ups) != 1 || ups[0].Key != "other" {
		t.Fatalf("ListUploads after complete and abort = %+v", lr)
	}
	_, err = s.ListParts(ctx, "b", "dir/a", u2.ID)
	wantErr(t, err, meta.ErrNoSuchUpload)
}

// uploadPages lists every page of the bucket's uploads from opts on,
// following the next markers, and returns the entries in order ("key id"
// for an upload, "cp:prefix" for a common prefix). It checks each page's
// bound: a truncated page is full, no page exceeds the limit.
func uploadPages(t *testing.T, s meta.Service, bucket string, opts meta.UploadListOptions) []string {
	t.Helper()
	var out []string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("ListUploads %+v: no end after 100 pages", opts)
		}
		r, err := s.ListUploads(ctx, bucket, opts)
		must(t, err)
		n := len(r.Uploads) + len(r.CommonPrefixes)
		limit := opts.Limit
		if limit <= 0 {
			limit = meta.MaxListLimit
		}
		if n > limit || (r.Truncated && n != limit) {
			t.Fatalf("ListUploads %+v: %d entries (truncated %v), limit %d", opts, n, r.Truncated, limit)
		}
		// Uploads and common prefixes merge back into listing order: a
		// prefix stands where its first key would.
		ui, ci := 0, 0
		for ui < len(r.Uploads) || ci < len(r.CommonPrefixes) {
			if ci == len(r.CommonPrefixes) || ui < len(r.Uploads) && r.Uploads[ui].Key < r.CommonPrefixes[ci] {
				out = append(out, r.Uploads[ui].Key+" "+r.Uploads[ui].ID)
				ui++
			} else {
				out = append(out, "cp:"+r.CommonPrefixes[ci])
				ci++
			}
		}
		if !r.Truncated {
			if r.NextKeyMarker != "" || r.NextUploadIDMarker != "" {
				t.Fatalf("ListUploads %+v: last page has next markers %q %q", opts, r.NextKeyMarker, r.NextUploadIDMarker)
			}
			return out
		}
		opts.KeyMarker, opts.UploadIDMarker = r.NextKeyMarker, r.NextUploadIDMarker
	}
}

// testListUploadsPages: ListUploads pages as S3's ListMultipartUploads
// does — by key, then by initiation time within a key; key-marker alone
// resumes after every upload of that key, with upload-id-marker after that
// upload; delimiters fold keys into common prefixes; pages are bounded.
func testListUploadsPages(t *testing.T, s meta.Service) {
	_, err := s.ListUploads(ctx, "nob", meta.UploadListOptions{})
	wantErr(t, err, meta.ErrNoSuchBucket)
	must(t, s.CreateBucket(ctx, "b", ""))
	ids := map[string][]string{} // key → upload ids in creation order
	var all []string             // "key id" in S3's order
	// Created out of key order, several per key, so that neither creation
	// order nor random IDs give S3's order by accident.
	for _, k := range []string{"e", "a", "d/2", "a/1", "e", "ab", "a", "d/3/x", "d/1", "a"} {
		u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: k})
		must(t, err)
		ids[k] = append(ids[k], u.ID)
	}
	for _, k := range []string{"a", "a/1", "ab", "d/1", "d/2", "d/3/x", "e"} {
		for _, id := range ids[k] {
			all = append(all, k+" "+id)
		}
	}
	for _, limit := range []int{0, 1, 2, 3, 7, 1001} {
		if got := uploadPages(t, s, "b", meta.UploadListOptions{Limit: limit}); !slices.Equal(got, all) {
			t.Fatalf("limit %d: listed\n%q\nwant\n%q", limit, got, all)
		}
	}
	// Markers.
	r, err := s.ListUploads(ctx, "b", meta.UploadListOptions{KeyMarker: "a", Limit: 1})
	must(t, err)
	if len(r.Uploads) != 1 || r.Uploads[0].Key != "a/1" || !r.Truncated || r.NextKeyMarker != "a/1" || r.NextUploadIDMarker != ids["a/1"][0] {
		t.Fatalf("key-marker a: %+v", r)
	}
	r, err = s.ListUploads(ctx, "b", meta.UploadListOptions{KeyMarker: "a", UploadIDMarker: ids["a"][0], Limit: 2})
	must(t, err)
	if len(r.Uploads) != 2 || r.Uploads[0].ID != ids["a"][1] || r.Uploads[1].ID != ids["a"][2] || !r.Truncated {
		t.Fatalf("key-marker a, upload-id-marker of the first: %+v", r)
	}
	r, err = s.ListUploads(ctx, "b", meta.UploadListOptions{UploadIDMarker: ids["a"][1], Limit: 1})
	must(t, err)
	if len(r.Uploads) != 1 || r.Uploads[0].ID != ids["a"][0] {
		t.Fatalf("upload-id-marker without key-marker is ignored: %+v", r)
	}
	if got := uploadPages(t, s, "b", meta.UploadListOptions{KeyMarker: "d/2", Limit: 2}); !slices.Equal(got, all[7:]) {
		t.Fatalf("from key-marker d/2: %q, want %q", got, all[7:])
	}
	// Prefix and delimiter: common prefixes count toward the page.
	want := []string{"a " + ids["a"][0], "a " + ids["a"][1], "a " + ids["a"][2], "cp:a/", "ab " + ids["ab"][0], "cp:d/", "e " + ids["e"][0], "e " + ids["e"][1]}
	for _, limit := range []int{1, 3, 4, 100} {
		if got := uploadPages(t, s, "b", meta.UploadListOptions{Delimiter: "/", Limit: limit}); !slices.Equal(got, want) {
			t.Fatalf("delimiter /, limit %d: %q, want %q", limit, got, want)
		}
	}
	want = []string{"d/1 " + ids["d/1"][0], "d/2 " + ids["d/2"][0], "cp:d/3/"}
	if got := uploadPages(t, s, "b", meta.UploadListOptions{Prefix: "d/", Delimiter: "/", Limit: 1}); !slices.Equal(got, want) {
		t.Fatalf("prefix d/, delimiter /: %q, want %q", got, want)
	}
	r, err = s.ListUploads(ctx, "b", meta.UploadListOptions{Prefix: "d/", Delimiter: "/", KeyMarker: "d/3/"})
	must(t, err)
	if len(r.Uploads)+len(r.CommonPrefixes) != 0 || r.Truncated {
		t.Fatalf("key-marker at the last common prefix: %+v", r)
	}
	// A prefix without a delimiter, and one matching nothing.
	if got := uploadPages(t, s, "b", meta.UploadListOptions{Prefix: "a", Limit: 2}); !slices.Equal(got, all[:5]) {
		t.Fatalf("prefix a: %q, want %q", got, all[:5])
	}
	if got := uploadPages(t, s, "b", meta.UploadListOptions{Prefix: "zz"}); len(got) != 0 {
		t.Fatalf("prefix zz: %q", got)
	}
	// Initiation times follow the listing within a key.
	r, err = s.ListUploads(ctx, "b", meta.UploadListOptions{Prefix: "a", Delimiter: "/"})
	must(t, err)
	for i := 1; i < 3; i++ {
		if r.Uploads[i].Created.Before(r.Uploads[i-1].Created) {
			t.Fatalf("uploads of a not in initiation order: %+v", r.Uploads[:3])
		}
	}
}

// testCompleteStalePart: a manifest built from parts listed before one was
// re-uploaded must not commit the replaced part's shards, which are queued
// as garbage; the upload stays and completes from the current parts.
func testCompleteStalePart(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "k"})
	must(t, err)
	must(t, s.PutPart(ctx, "b", "k", part(u.ID, 1, "old")))
	stale, err := s.ListParts(ctx, "b", "k", u.ID)
	must(t, err)
	must(t, s.PutPart(ctx, "b", "k", part(u.ID, 1, "new"))) // "old-*" become garbage

	m := manifest("b", "k", "mp", 2, 1)
	m.Segments = []meta.Segment{stale[0].Segment}
	_, err = s.CompleteUpload(ctx, u.ID, m)
	wantErr(t, err, meta.ErrConflict)
	_, err = s.Get(ctx, "b", "k")
	wantErr(t, err, meta.ErrNoSuchKey)
	if _, err := s.GetUpload(ctx, "b", "k", u.ID); err != nil {
		t.Fatalf("upload gone after a refused completion: %v", err)
	}

	cur, err := s.ListParts(ctx, "b", "k", u.ID)
	must(t, err)
	m.Segments = []meta.Segment{cur[0].Segment}
	out, err := s.CompleteUpload(ctx, u.ID, m)
	must(t, err)
	gs := garbageSet(t, s)
	for _, sh := range out.Segments[0].Shards {
		if _, queued := gs[string(sh.Node)+"/"+sh.ID]; queued {
			t.Fatalf("committed shard %s/%s is queued as garbage: %v", sh.Node, sh.ID, gs)
		}
	}
	if len(gs) != 3 || gs["n0/old-0"].ShardID == "" {
		t.Fatalf("garbage = %v, want the 3 shards of the replaced part", gs)
	}
}

// unchanged checks that bucket/key still holds want (or nothing, for a
// zero want) and that the garbage queue is still garbage: what a refused
// conditional commit must leave.
func unchanged(t *testing.T, s meta.Service, bucket, key string, want meta.Manifest, garbage map[string]meta.Garbage) {
	t.Helper()
	got, err := s.Get(ctx, bucket, key)
	if want.VersionID == "" {
		wantErr(t, err, meta.ErrNoSuchKey)
	} else {
		must(t, err)
		sameManifest(t, got, want)
	}
	if gs := garbageSet(t, s); fmt.Sprint(gs) != fmt.Sprint(garbage) {
		t.Fatalf("a refused commit changed the garbage:\n got %v\nwant %v", gs, garbage)
	}
}

func testConditionalCommit(t *testing.T, s meta.Service) {
	absent := meta.CommitCondition{Absent: true}
	_, err := s.CommitIf(ctx, manifest("nob", "k", "a", 2, 1), absent)
	wantErr(t, err, meta.ErrNoSuchBucket)
	bucket(t, s, "b")

	// Create if absent: once.
	a, err := s.CommitIf(ctx, manifest("b", "k", "a", 4, 2), absent)
	must(t, err)
	if a.VersionID != "v-a" || a.Generation == 0 {
		t.Fatalf("CommitIf absent = %+v", a)
	}
	_, err = s.CommitIf(ctx, manifest("b", "k", "b", 4, 2), absent)
	wantErr(t, err, meta.ErrPreconditionFailed)
	unchanged(t, s, "b", "k", a, map[string]meta.Garbage{})
	for _, sk := range nodeShards(t, s, "n0", 10) {
		if sk.ShardID != "a-0" {
			t.Fatalf("a refused commit's shard is indexed: %+v", sk)
		}
	}

	// If-Match: the wrong ETag is refused, the right one replaces.
	_, err = s.CommitIf(ctx, manifest("b", "k", "c", 4, 2), meta.CommitCondition{ETag: "etag-x"})
	wantErr(t, err, meta.ErrPreconditionFailed)
	unchanged(t, s, "b", "k", a, map[string]meta.Garbage{})
	c, err := s.CommitIf(ctx, manifest("b", "k", "c", 4, 2), meta.CommitCondition{ETag: "etag-a"})
	must(t, err)
	if c.VersionID != "v-c" || c.Generation <= a.Generation {
		t.Fatalf("CommitIf etag = %+v after %+v", c, a)
	}
	gs := garbageSet(t, s)
	if len(gs) != 6 || gs["n0/a-0"].ShardID == "" {
		t.Fatalf("garbage after a conditional replace = %v", gs)
	}
	// The ETag it matched is no longer current.
	_, err = s.CommitIf(ctx, manifest("b", "k", "d", 4, 2), meta.CommitCondition{ETag: "etag-a"})
	wantErr(t, err, meta.ErrPreconditionFailed)
	unchanged(t, s, "b", "k", c, gs)

	// An ETag condition on an absent key: no such key (S3's 404).
	_, err = s.CommitIf(ctx, manifest("b", "k2", "e", 2, 1), meta.CommitCondition{ETag: "etag-e"})
	wantErr(t, err, meta.ErrNoSuchKey)
	unchanged(t, s, "b", "k2", meta.Manifest{}, gs)

	// Both at once is not a condition.
	_, err = s.CommitIf(ctx, manifest("b", "k2", "e", 2, 1), meta.CommitCondition{Absent: true, ETag: "etag-e"})
	wantErr(t, err, meta.ErrInvalidArgument)
	unchanged(t, s, "b", "k2", meta.Manifest{}, gs)

	// No condition is Commit; once deleted, the key can be created again.
	f, err := s.CommitIf(ctx, manifest("b", "k", "f", 4, 2), meta.CommitCondition{})
	must(t, err)
	if f.VersionID != "v-f" {
		t.Fatalf("unconditional CommitIf = %+v", f)
	}
	_, err = s.Delete(ctx, "b", "k")
	must(t, err)
	g, err := s.CommitIf(ctx, manifest("b", "k", "g", 4, 2), absent)
	must(t, err)
	if g.VersionID != "v-g" {
		t.Fatalf("CommitIf absent after delete = %+v", g)
	}
}

func testConditionalComplete(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	old := commit(t, s, manifest("b", "k", "old", 2, 1))
	u, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "k"})
	must(t, err)
	must(t, s.PutPart(ctx, "b", "k", part(u.ID, 1, "p1")))
	ps, err := s.ListParts(ctx, "b", "k", u.ID)
	must(t, err)
	m := manifest("b", "k", "mp", 2, 1)
	m.Segments = []meta.Segment{ps[0].Segment}
	gs := garbageSet(t, s)

	// The key exists: create-only completion is refused, and the upload
	// stays with its parts, completable and abortable.
	_, err = s.CompleteUploadIf(ctx, u.ID, m, meta.CommitCondition{Absent: true})
	wantErr(t, err, meta.ErrPreconditionFailed)
	unchanged(t, s, "b", "k", old, gs)
	_, err = s.CompleteUploadIf(ctx, u.ID, m, meta.CommitCondition{ETag: "etag-other"})
	wantErr(t, err, meta.ErrPreconditionFailed)
	unchanged(t, s, "b", "k", old, gs)
	if _, err := s.GetUpload(ctx, "b", "k", u.ID); err != nil {
		t.Fatalf("upload gone after a refused conditional completion: %v", err)
	}
	if ps2, err := s.ListParts(ctx, "b", "k", u.ID); err != nil || len(ps2) != 1 || ps2[0].Segment.Shards[0].ID != "p1-0" {
		t.Fatalf("parts after a refused completion = %+v, %v", ps2, err)
	}
	found := false
	for _, sk := range nodeShards(t, s, "n0", 10) {
		found = found || (sk.ShardID == "p1-0" && sk.UploadID == u.ID)
	}
	if !found {
		t.Fatalf("part shard no longer indexed after a refused completion: %+v", nodeShards(t, s, "n0", 10))
	}

	// Once the key is gone, the same upload completes create-only.
	_, err = s.Delete(ctx, "b", "k")
	must(t, err)
	out, err := s.CompleteUploadIf(ctx, u.ID, m, meta.CommitCondition{Absent: true})
	must(t, err)
	if out.VersionID != "v-mp" {
		t.Fatalf("CompleteUploadIf = %+v", out)
	}
	_, err = s.GetUpload(ctx, "b", "k", u.ID)
	wantErr(t, err, meta.ErrNoSuchUpload)

	// If-Match on completion: the current ETag replaces.
	u2, err := s.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: "k"})
	must(t, err)
	must(t, s.PutPart(ctx, "b", "k", part(u2.ID, 1, "q1")))
	ps, err = s.ListParts(ctx, "b", "k", u2.ID)
	must(t, err)
	m2 := manifest("b", "k", "mp2", 2, 1)
	m2.Segments = []meta.Segment{ps[0].Segment}
	out2, err := s.CompleteUploadIf(ctx, u2.ID, m2, meta.CommitCondition{ETag: out.ETag})
	must(t, err)
	if out2.VersionID != "v-mp2" {
		t.Fatalf("CompleteUploadIf etag = %+v", out2)
	}
}

func testMembership(t *testing.T, s meta.Service) {
	m0, err := s.Map(ctx)
	must(t, err)
	if m0.Len() != 0 {
		t.Fatalf("fresh map has %d nodes", m0.Len())
	}
	wantErr(t, s.Heartbeat(ctx, meta.NodeReport{ID: "bad id"}), meta.ErrInvalidArgument)
	rep := meta.NodeReport{ID: "n1", Addr: "127.0.0.1:1", Domain: cluster.Domain{Zone: "z1", Rack: "r1", Host: "h1"}, Capacity: 1 << 30, Used: 10, Free: 100}
	must(t, s.Heartbeat(ctx, rep))
	state := func(id cluster.NodeID) (cluster.Node, uint64) {
		t.Helper()
		m, err := s.Map(ctx)
		must(t, err)
		n, ok := m.Node(id)
		if !ok {
			t.Fatalf("node %s not in map", id)
		}
		return n, m.Epoch()
	}
	n, e1 := state("n1")
	if n.State != cluster.Up || n.Addr != rep.Addr || n.Domain != rep.Domain || n.Capacity != rep.Capacity || e1 <= m0.Epoch() {
		t.Fatalf("after register: %+v epoch %d (was %d)", n, e1, m0.Epoch())
	}
	rep.Used = 20
	must(t, s.Heartbeat(ctx, rep))
	if n, e := state("n1"); e != e1 || n.Used != 20 {
		t.Fatalf("usage-only heartbeat: %+v epoch %d, want used 20 epoch %d", n, e, e1)
	}
	rep.Full = true
	must(t, s.Heartbeat(ctx, rep))
	n, e2 := state("n1")
	if n.State != cluster.Full || e2 <= e1 {
		t.Fatalf("full heartbeat: %v epoch %d", n.State, e2)
	}
	rep.Full, rep.Damaged = false, true // damaged without saying full: full all the same
	must(t, s.Heartbeat(ctx, rep))
	n, e2d := state("n1")
	if n.State != cluster.Full || !n.Damaged || e2d <= e2 {
		t.Fatalf("damaged heartbeat: %+v epoch %d (was %d)", n, e2d, e2)
	}
	rep.Full, rep.Damaged = false, false
	must(t, s.Heartbeat(ctx, rep))
	if n, e := state("n1"); n.State != cluster.Up || n.Damaged || e <= e2d {
		t.Fatalf("not-full heartbeat: %+v epoch %d", n, e)
	}
	rep.Addr = "127.0.0.1:2"
	_, e3 := state("n1")
	must(t, s.Heartbeat(ctx, rep))
	if n, e := state("n1"); n.Addr != rep.Addr || e <= e3 {
		t.Fatalf("address change: %+v epoch %d", n, e)
	}

	// An operator's weight: set, kept by heartbeats, cleared; each change
	// bumps the epoch, setting the same weight again does not.
	wantErr(t, s.SetWeight(ctx, "nope", 1<<40), meta.ErrNoSuchNode)
	wantErr(t, s.SetWeight(ctx, "n1", -1), meta.ErrInvalidArgument)
	_, ew := state("n1")
	must(t, s.SetWeight(ctx, "n1", 3<<40))
	n, ew2 := state("n1")
	if n.Weighted != 3<<40 || n.Weight() != float64(3<<40) || ew2 <= ew {
		t.Fatalf("set weight: %+v (weight %g) epoch %d (was %d)", n, n.Weight(), ew2, ew)
	}
	must(t, s.SetWeight(ctx, "n1", 3<<40))
	must(t, s.Heartbeat(ctx, rep))
	if n, e := state("n1"); n.Weighted != 3<<40 || e != ew2 {
		t.Fatalf("same weight again, then a heartbeat: %+v epoch %d, want weight kept at epoch %d", n, e, ew2)
	}
	must(t, s.SetWeight(ctx, "n1", 0))
	if n, e := state("n1"); n.Weighted != 0 || n.Weight() != float64(rep.Capacity) || e <= ew2 {
		t.Fatalf("weight cleared: %+v (weight %g) epoch %d", n, n.Weight(), e)
	}

	wantErr(t, s.Admin(ctx, "nope", meta.ActionOut), meta.ErrNoSuchNode)
	wantErr(t, s.Admin(ctx, "n1", "explode"), meta.ErrInvalidArgument)
	_, e4 := state("n1")
	must(t, s.Admin(ctx, "n1", meta.ActionOut))
	n, e5 := state("n1")
	if n.State != cluster.Out || e5 <= e4 {
		t.Fatalf("admin out: %v epoch %d", n.State, e5)
	}
	outSince := n.Since
	if outSince.IsZero() {
		t.Fatalf("admin out left Since zero: %+v", n)
	}
	must(t, s.Heartbeat(ctx, rep))
	if n, _ := state("n1"); n.State != cluster.Out || !n.Since.Equal(outSince) {
		t.Fatalf("heartbeat brought an out node back or moved its Since: %v since %v (was %v)", n.State, n.Since, outSince)
	}
	must(t, s.Admin(ctx, "n1", meta.ActionIn))
	if n, e := state("n1"); n.State != cluster.Up || e <= e5 || !n.Since.IsZero() {
		t.Fatalf("admin in: %v epoch %d since %v", n.State, e, n.Since)
	}
	// Removing a node that is up (or out but heartbeating) is refused, as
	// a decision every replica makes alike.
	wantErr(t, s.Admin(ctx, "n1", meta.ActionRemove), meta.ErrNodeInUse)
	if _, e := state("n1"); e <= e5 {
		t.Fatal("a refused remove changed the map")
	}
	must(t, s.Admin(ctx, "n1", meta.ActionDrain))
	must(t, s.Heartbeat(ctx, rep))
	n, _ = state("n1")
	if n.State != cluster.Draining || !n.State.Readable() || n.Since.IsZero() {
		t.Fatalf("drain: %v since %v", n.State, n.Since)
	}
	// Draining then out is one departure: Since stays.
	drainSince := n.Since
	must(t, s.Admin(ctx, "n1", meta.ActionOut))
	if n, _ := state("n1"); n.State != cluster.Out || !n.Since.Equal(drainSince) {
		t.Fatalf("drain then out: %v since %v, want %v", n.State, n.Since, drainSince)
	}
	must(t, s.Admin(ctx, "n1", meta.ActionDrain))
	must(t, s.Heartbeat(ctx, meta.NodeReport{ID: "n0", Addr: "127.0.0.1:3"}))
	m, err := s.Map(ctx)
	must(t, err)
	if m.Len() != 2 || m.At(0).ID != "n0" {
		t.Fatalf("map nodes = %+v", m.Nodes())
	}
}

func testBadReports(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	m := commit(t, s, manifest("b", "k", "a", 2, 1))
	for i := 0; i < 3; i++ {
		must(t, s.Heartbeat(ctx, meta.NodeReport{ID: cluster.NodeID(fmt.Sprintf("n%d", i))}))
	}
	wantErr(t, s.ReportBad(ctx, meta.BadShard{}), meta.ErrInvalidArgument)
	// Unknown shard: ignored.
	must(t, s.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: "n1", ShardID: "gone"}, Reason: "missing"}))
	rq, ok := s.(RepairQueue)
	if ok {
		q, err := rq.Degraded(ctx, 10)
		must(t, err)
		if len(q) != 0 {
			t.Fatalf("report of an unknown shard queued %+v", q)
		}
	}
	// A scrubber knows only node and shard id.
	must(t, s.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: "n1", ShardID: "a-1"}, Reason: "corrupt"}))
	must(t, s.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: "n1", ShardID: "a-1"}, Reason: "corrupt"}))
	if !ok {
		return
	}
	q, err := rq.Degraded(ctx, 10)
	must(t, err)
	if len(q) != 1 || q[0].Bucket != "b" || q[0].Key != "k" || q[0].Generation != m.Generation || q[0].Since.IsZero() {
		t.Fatalf("Degraded = %+v", q)
	}
	st, err := rq.Status(ctx)
	must(t, err)
	if st.Objects != 1 || st.ObjectsByHealthyShards[2] != 1 || st.ObjectsBySpareShards[0] != 1 || st.RepairQueue != 1 || len(st.Nodes) != 3 {
		t.Fatalf("Status = %+v", st)
	}
	// Repair replaces the shard: the report goes with it.
	m2, err := s.UpdateShards(ctx, "b", "k", m.Generation, []meta.ShardUpdate{{Segment: 0, Shards: []meta.ShardRef{{Index: 1, Node: "n2", ID: "fixed"}}}})
	must(t, err)
	q, err = rq.Degraded(ctx, 10)
	must(t, err)
	if len(q) != 0 {
		t.Fatalf("queue after repair = %+v", q)
	}
	st, err = rq.Status(ctx)
	must(t, err)
	if st.ObjectsByHealthyShards[3] != 1 || st.ObjectsBySpareShards[1] != 1 || st.RepairQueue != 0 || st.Garbage != 1 {
		t.Fatalf("Status after repair = %+v", st)
	}
	// A node out makes its shards unhealthy.
	must(t, s.Admin(ctx, "n0", meta.ActionOut))
	st, err = rq.Status(ctx)
	must(t, err)
	if st.ObjectsByHealthyShards[2] != 1 {
		t.Fatalf("Status with n0 out = %+v", st)
	}
	// A report then resolved without replacement (the shard checked out).
	must(t, s.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: "n2", ShardID: "a-2"}, Reason: "corrupt"}))
	must(t, rq.ResolveDegraded(ctx, "b", "k", m2.Generation-1))
	if q, _ := rq.Degraded(ctx, 10); len(q) != 1 {
		t.Fatalf("resolving an older generation removed the entry: %+v", q)
	}
	must(t, rq.ResolveDegraded(ctx, "b", "k", m2.Generation))
	if q, _ := rq.Degraded(ctx, 10); len(q) != 0 {
		t.Fatalf("queue after resolve = %+v", q)
	}
	must(t, s.Admin(ctx, "n0", meta.ActionIn))
	st, err = rq.Status(ctx)
	must(t, err)
	if st.ObjectsByHealthyShards[3] != 1 {
		t.Fatalf("resolve kept the bad report: %+v", st)
	}
}

func testDegradedCommit(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	m := manifest("b", "k", "a", 2, 2)
	m.Segments[0].Shards[3].Node = ""
	m.Segments[0].Shards[3].ID = ""
	c := commit(t, s, m)
	commit(t, s, manifest("b", "k2", "h", 2, 2))
	m3 := manifest("b", "k3", "c", 2, 2)
	m3.Segments[0].Shards[0] = meta.ShardRef{Index: 0}
	c3 := commit(t, s, m3)
	rq, ok := s.(RepairQueue)
	if !ok {
		return
	}
	q, err := rq.Degraded(ctx, 10)
	must(t, err)
	if len(q) != 2 || q[0].Key != "k" || q[0].Generation != c.Generation || q[1].Key != "k3" || q[1].Generation != c3.Generation {
		t.Fatalf("Degraded = %+v", q)
	}
	if q1, _ := rq.Degraded(ctx, 1); len(q1) != 1 || q1[0].Key != "k" {
		t.Fatalf("Degraded(1) = %+v", q1)
	}
	// Repair fills the hole: the entry goes.
	_, err = s.UpdateShards(ctx, "b", "k", c.Generation, []meta.ShardUpdate{{Segment: 0, Shards: []meta.ShardRef{{Index: 3, Node: "n7", ID: "new"}}}})
	must(t, err)
	// An overwrite with all shards clears the other.
	commit(t, s, manifest("b", "k3", "d", 2, 2))
	if q, _ := rq.Degraded(ctx, 10); len(q) != 0 {
		t.Fatalf("queue = %+v", q)
	}
	// Deleting a queued object takes it off the queue.
	commit(t, s, m3)
	_, err = s.Delete(ctx, "b", "k3")
	must(t, err)
	if q, _ := rq.Degraded(ctx, 10); len(q) != 0 {
		t.Fatalf("queue after delete = %+v", q)
	}
}

func testNodeShards(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	var want []string
	for i := 0; i < 7; i++ {
		m := commit(t, s, manifest("b", fmt.Sprintf("k%d", i), fmt.Sprintf("s%d", i), 1, 1))
		want = append(want, m.Segments[0].Shards[0].ID)
	}
	sort.Strings(want)
	for _, limit := range []int{1, 2, 3, 100} {
		var got []string
		for _, sk := range nodeShards(t, s, "n0", limit) {
			if sk.Node != "n0" || sk.Bucket != "b" || sk.Index != 0 {
				t.Fatalf("shard key %+v", sk)
			}
			got = append(got, sk.ShardID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("NodeShards by %d = %v, want %v", limit, got, want)
		}
	}
	if sk := nodeShards(t, s, "n5", 10); len(sk) != 0 {
		t.Fatalf("NodeShards(n5) = %+v", sk)
	}
	_, err := s.NodeShards(ctx, "bad/node", "", 10)
	wantErr(t, err, meta.ErrInvalidArgument)
}

func testGarbage(t *testing.T, s meta.Service) {
	bucket(t, s, "b")
	commit(t, s, manifest("b", "k", "live", 1, 1))
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	must(t, s.AddGarbage(ctx, []meta.Garbage{
		{Node: "n2", ShardID: "orphan-b", NotBefore: t0.Add(time.Minute)},
		{Node: "n1", ShardID: "orphan-a", NotBefore: t0},
		{Node: "n0", ShardID: "live-0"}, // still referenced: refused
		{Node: "", ShardID: "x"},
	}))
	gs, err := s.ListGarbage(ctx, 10)
	must(t, err)
	if len(gs) != 2 || gs[0].ShardID != "orphan-a" || !gs[0].NotBefore.Equal(t0) || gs[1].ShardID != "orphan-b" {
		t.Fatalf("ListGarbage = %+v", gs)
	}
	if g1, _ := s.ListGarbage(ctx, 1); len(g1) != 1 {
		t.Fatalf("ListGarbage(1) = %+v", g1)
	}
	must(t, s.RemoveGarbage(ctx, gs[:1]))
	gs, err = s.ListGarbage(ctx, 10)
	must(t, err)
	if len(gs) != 1 || gs[0].ShardID != "orphan-b" {
		t.Fatalf("after RemoveGarbage = %+v", gs)
	}
	must(t, s.AddGarbage(ctx, []meta.Garbage{{Node: "n3", ShardID: "soon"}}))
	gs, err = s.ListGarbage(ctx, 10)
	must(t, err)
	if len(gs) != 2 || gs[0].ShardID != "soon" || gs[0].NotBefore.IsZero() {
		t.Fatalf("default NotBefore: %+v", gs)
	}
}

// testGarbagePages checks the cursor, per-node and due-by listings and the
// list of nodes with garbage.
func testGarbagePages(t *testing.T, s meta.Service) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []meta.Garbage
	for i := 0; i < 12; i++ {
		// n0 holds the 6 earliest entries, n1 and n2 the later ones, so a
		// listing of the whole queue meets all of n0's first.
		node := cluster.NodeID("n0")
		if i >= 6 {
			node = cluster.NodeID(fmt.Sprintf("n%d", 1+i%2))
		}
		all = append(all, meta.Garbage{Node: node, ShardID: fmt.Sprintf("s%02d", i), NotBefore: t0.Add(time.Duration(i) * time.Minute)})
	}
	// Two entries with one NotBefore order by node, then id.
	all = append(all, meta.Garbage{Node: "n1", ShardID: "tie", NotBefore: t0.Add(11 * time.Minute)})
	must(t, s.AddGarbage(ctx, all))
	key := func(g meta.Garbage) string { return fmt.Sprintf("%s/%s", g.Node, g.ShardID) }

	pages := func(q meta.GarbageQuery) []string {
		t.Helper()
		var out []string
		for n := 0; ; n++ {
			page, err := s.ListGarbagePage(ctx, q)
			must(t, err)
			if len(page) > q.Limit || n > 100 {
				t.Fatalf("page of %d > limit %d (or endless)", len(page), q.Limit)
			}
			for _, g := range page {
				if q.Node != "" && g.Node != q.Node {
					t.Fatalf("listing of %s returned %+v", q.Node, g)
				}
				if !q.DueBy.IsZero() && g.NotBefore.After(q.DueBy) {
					t.Fatalf("entry not due by %v: %+v", q.DueBy, g)
				}
				out = append(out, key(g))
			}
			if len(page) < q.Limit {
				return out
			}
			q.After = &page[len(page)-1]
		}
	}
	var wantAll []string
	for _, g := range all[:11] {
		wantAll = append(wantAll, key(g))
	}
	wantAll = append(wantAll, "n1/tie", "n2/s11")
	for _, limit := range []int{1, 2, 5, 100} {
		if got := pages(meta.GarbageQuery{Limit: limit}); fmt.Sprint(got) != fmt.Sprint(wantAll) {
			t.Fatalf("all by %d = %v, want %v", limit, got, wantAll)
		}
	}
	if got := pages(meta.GarbageQuery{Node: "n1", Limit: 2}); fmt.Sprint(got) != "[n1/s06 n1/s08 n1/s10 n1/tie]" {
		t.Fatalf("n1 = %v", got)
	}
	if got := pages(meta.GarbageQuery{Node: "n2", Limit: 2, DueBy: t0.Add(9 * time.Minute)}); fmt.Sprint(got) != "[n2/s07 n2/s09]" {
		t.Fatalf("n2 due by +9m = %v", got)
	}
	if got := pages(meta.GarbageQuery{Node: "n0", Limit: 3, DueBy: t0.Add(-time.Second)}); len(got) != 0 {
		t.Fatalf("n0 due before any = %v", got)
	}
	if got := pages(meta.GarbageQuery{Limit: 4, DueBy: t0.Add(2 * time.Minute)}); fmt.Sprint(got) != "[n0/s00 n0/s01 n0/s02]" {
		t.Fatalf("all due by +2m = %v", got)
	}
	if got := pages(meta.GarbageQuery{Node: "n9", Limit: 3}); len(got) != 0 {
		t.Fatalf("node without garbage = %v", got)
	}
	_, err := s.ListGarbagePage(ctx, meta.GarbageQuery{Node: "bad/node"})
	wantErr(t, err, meta.ErrInvalidArgument)

	nodes, err := s.GarbageNodes(ctx)
	must(t, err)
	if fmt.Sprint(nodes) != "[n0 n1 n2]" {
		t.Fatalf("GarbageNodes = %v", nodes)
	}
	// Removing an entry removes it from every listing; a node without
	// entries drops out of GarbageNodes.
	var n2 []meta.Garbage
	for _, g := range all {
		if g.Node == "n2" {
			n2 = append(n2, g)
		}
	}
	page, err := s.ListGarbagePage(ctx, meta.GarbageQuery{Node: "n2"})
	must(t, err)
	must(t, s.RemoveGarbage(ctx, page))
	if got := pages(meta.GarbageQuery{Node: "n2", Limit: 10}); len(got) != 0 {
		t.Fatalf("n2 after removal = %v", got)
	}
	if got := pages(meta.GarbageQuery{Limit: 100}); len(got) != len(wantAll)-len(n2) {
		t.Fatalf("all after removing n2's = %v", got)
	}
	nodes, err = s.GarbageNodes(ctx)
	must(t, err)
	if fmt.Sprint(nodes) != "[n0 n1]" {
		t.Fatalf("GarbageNodes after removal = %v", nodes)
	}
	// Garbage queued by a commit (the replaced shards) is listed by node too.
	bucket(t, s, "b")
	commit(t, s, manifest("b", "k", "old", 1, 1))
	commit(t, s, manifest("b", "k", "new", 1, 1))
	if got := pages(meta.GarbageQuery{Node: "n1", Limit: 10}); len(got) != 5 || !slices.Contains(got, "n1/old-1") {
		t.Fatalf("n1 after an overwrite = %v", got)
	}
}
