package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/shale-store/shale/meta"
)

// frontSentinels are the object sentinels that stand for meta's.
func frontSentinels() []error {
	return []error{ErrNoSuchBucket, ErrBucketExists, ErrBucketNotEmpty, ErrNoSuchKey, ErrNoSuchUpload,
		ErrInvalidArgument, ErrPreconditionFailed, ErrConflict, ErrUnavailable}
}

// checkFront fails unless err matches want and no other front sentinel,
// and still wraps meta's sentinel metaErr (when not nil).
func checkFront(t *testing.T, what string, err, want, metaErr error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want it to match %v", what, err, want)
		return
	}
	if metaErr != nil && !errors.Is(err, metaErr) {
		t.Errorf("%s: %v no longer wraps %v", what, err, metaErr)
	}
	for _, other := range frontSentinels() {
		if other != want && errors.Is(err, other) {
			t.Errorf("%s: %v also matches %v", what, err, other)
		}
	}
}

// TestFrontErr: an error wrapping one of meta's sentinels matches the
// object sentinel of that name (ErrUnavailable for an unreachable meta or
// one without a leader), still matches meta's and reads as before; other
// errors pass through unchanged.
func TestFrontErr(t *testing.T) {
	for _, tc := range []struct{ in, want error }{
		{meta.ErrNoSuchBucket, ErrNoSuchBucket},
		{meta.ErrBucketExists, ErrBucketExists},
		{meta.ErrBucketNotEmpty, ErrBucketNotEmpty},
		{meta.ErrNoSuchKey, ErrNoSuchKey},
		{meta.ErrNoSuchUpload, ErrNoSuchUpload},
		{meta.ErrInvalidArgument, ErrInvalidArgument},
		{meta.ErrPreconditionFailed, ErrPreconditionFailed},
		{meta.ErrConflict, ErrConflict},
		{meta.ErrUnavailable, ErrUnavailable},
		{meta.ErrNotLeader, ErrUnavailable},
		{&meta.NotLeaderError{LeaderID: "m1"}, ErrUnavailable},
		{fmt.Errorf("%w: gave up: %w", meta.ErrUnavailable, &meta.NotLeaderError{}), ErrUnavailable},
	} {
		in := fmt.Errorf("head b/k: %w", tc.in)
		got := frontErr(in)
		checkFront(t, tc.in.Error(), got, tc.want, tc.in)
		if got.Error() != in.Error() {
			t.Errorf("%v reads %q, want %q", tc.in, got.Error(), in.Error())
		}
	}
	// A commit error joined with the garbage queue's keeps its sentinel.
	joined := frontErr(errors.Join(fmt.Errorf("commit b/k: %w", meta.ErrNoSuchBucket), errors.New("queue garbage: disk on fire")))
	checkFront(t, "joined", joined, ErrNoSuchBucket, meta.ErrNoSuchBucket)
	// Errors of no meta sentinel the front door tells apart stay as they are.
	for _, e := range []error{nil, ErrQuorum, fmt.Errorf("put: %w", ErrBadDigest), meta.ErrNoSuchNode, context.Canceled} {
		if got := frontErr(e); got != e {
			t.Errorf("frontErr(%v) = %v, want it unchanged", e, got)
		}
	}
}

// sameInfo fails unless o presents manifest m.
func sameInfo(t *testing.T, what string, o Info, m meta.Manifest) {
	t.Helper()
	var sizes []int64
	var sum int64
	for _, seg := range m.Segments {
		sizes = append(sizes, seg.Size)
		sum += seg.Size
	}
	ok := o.Bucket == m.Bucket && o.Key == m.Key && o.VersionID == m.VersionID && o.Size == m.Size &&
		o.ETag == m.ETag && o.ContentType == m.ContentType && o.Created.Equal(m.Created) &&
		fmt.Sprint(o.Headers) == fmt.Sprint(m.Headers) && fmt.Sprint(o.UserMeta) == fmt.Sprint(m.UserMeta) &&
		fmt.Sprint(o.Checksums) == fmt.Sprint(m.Checksums) && slices.Equal(o.PartSizes, sizes) && sum == o.Size
	if !ok {
		t.Errorf("%s: Info %+v does not present manifest %+v", what, o, m)
	}
}

// TestService runs the front door's operations over a real coordinator
// and meta store: each result presents meta's record, and an Info reads
// the version it was returned for.
func TestService(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	s := NewService(h.c)
	ctx := h.ctx
	stored := func(key string) meta.Manifest {
		t.Helper()
		m, err := h.store.Get(ctx, testBucket, key)
		if err != nil {
			t.Fatalf("meta get %s: %v", key, err)
		}
		return m
	}
	read := func(o Info, off, n int64) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := s.ReadObject(ctx, &buf, o, off, n); err != nil {
			t.Fatalf("read %s [%d,+%d): %v", o.Key, off, n, err)
		}
		return buf.Bytes()
	}

	// Buckets.
	mb, err := h.store.HeadBucket(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	sameBucket := func(b Bucket) bool {
		return b.Name == mb.Name && b.Region == mb.Region && b.Created.Equal(mb.Created) && !b.Created.IsZero()
	}
	if b, err := s.HeadBucket(ctx, testBucket); err != nil || !sameBucket(b) {
		t.Fatalf("HeadBucket = %+v, %v; meta has %+v", b, err, mb)
	}
	if bs, err := s.ListBuckets(ctx); err != nil || len(bs) != 1 || !sameBucket(bs[0]) {
		t.Fatalf("ListBuckets = %+v, %v; meta has %+v", bs, err, mb)
	}

	// Put, head, read.
	data := pattern(1, 10_000)
	put, err := s.PutObject(ctx, PutInput{
		Bucket: testBucket, Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)),
		ContentType: "text/plain", Headers: map[string]string{"Cache-Control": "no-cache"},
		UserMeta: map[string]string{"colour": "blue"}, Checksums: map[string]string{"CRC32": "AAAAAA=="},
	})
	if err != nil {
		t.Fatal(err)
	}
	sameInfo(t, "PutObject", put, stored("k"))
	head, err := s.HeadObject(ctx, testBucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	sameInfo(t, "HeadObject", head, stored("k"))
	if got := read(head, 100, 5000); !bytes.Equal(got, data[100:5100]) {
		t.Fatalf("read back %d bytes, not the ones written", len(got))
	}
	var sink bytes.Buffer
	if err := s.ReadObject(ctx, &sink, Info{Bucket: testBucket, Key: "k", Size: 10_000}, 0, 1); !errors.Is(err, errForeignInfo) || sink.Len() != 0 {
		t.Fatalf("ReadObject of an Info made by hand: %v, %d bytes", err, sink.Len())
	}

	// An Info reads the version it names, not the key's current one.
	if _, err := s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Body: bytes.NewReader([]byte("new")), Size: 3}); err != nil {
		t.Fatal(err)
	}
	if got := read(head, 0, head.Size); !bytes.Equal(got, data) {
		t.Fatalf("the overwritten version's Info read %d other bytes", len(got))
	}

	// Copy from that version.
	cp, err := s.CopyObject(ctx, head, PutInput{Bucket: testBucket, Key: "copy", ContentType: head.ContentType, Checksums: head.Checksums})
	if err != nil {
		t.Fatal(err)
	}
	sameInfo(t, "CopyObject", cp, stored("copy"))
	if cp.ETag != head.ETag || !bytes.Equal(read(cp, 0, cp.Size), data) {
		t.Fatalf("copy has ETag %s (source %s) or other bytes", cp.ETag, head.ETag)
	}

	// Listing.
	ml, err := h.store.List(ctx, testBucket, meta.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListObjects(ctx, testBucket, ListOptions{Limit: 1})
	if err != nil || len(l.Objects) != 1 || !l.Truncated || l.NextAfter != ml.NextAfter || l.NextAfter != "copy" || len(ml.Objects) != 1 {
		t.Fatalf("ListObjects = %+v, %v; meta lists %+v", l, err, ml)
	}
	if e, me := l.Objects[0], ml.Objects[0]; e.Key != me.Key || e.Size != me.Size || e.ETag != me.ETag || !e.Created.Equal(me.Created) {
		t.Fatalf("listed %+v; meta lists %+v", e, me)
	}
	l, err = s.ListObjects(ctx, testBucket, ListOptions{After: "copy", Delimiter: "/", Limit: 10})
	if err != nil || len(l.Objects) != 1 || l.Objects[0].Key != "k" || l.Objects[0].Size != 3 || l.Truncated {
		t.Fatalf("ListObjects after copy = %+v, %v", l, err)
	}

	// Multipart: a 5 MiB part and a part copied from a version.
	u, err := s.CreateUpload(ctx, Upload{Bucket: testBucket, Key: "mp", ContentType: "x/y", Checksums: map[string]string{"CRC32": ""}})
	if err != nil || u.ID == "" || u.Created.IsZero() || u.Key != "mp" || u.ContentType != "x/y" {
		t.Fatalf("CreateUpload = %+v, %v", u, err)
	}
	if got, err := s.GetUpload(ctx, testBucket, "mp", u.ID); err != nil || got.ID != u.ID || got.ContentType != "x/y" || fmt.Sprint(got.Checksums) != fmt.Sprint(u.Checksums) {
		t.Fatalf("GetUpload = %+v, %v", got, err)
	}
	part1 := pattern(2, MinPartSize)
	p1, err := s.UploadPart(ctx, u.ID, 1, PutInput{Bucket: testBucket, Key: "mp", Body: bytes.NewReader(part1), Size: MinPartSize,
		Checksums: map[string]string{"CRC32": "BBBBBB=="}})
	if err != nil || p1.Number != 1 || p1.Size != MinPartSize || p1.ETag == "" || p1.Checksums["CRC32"] != "BBBBBB==" {
		t.Fatalf("UploadPart = %+v, %v", p1, err)
	}
	p2, err := s.UploadPartCopy(ctx, u.ID, 2, testBucket, "mp", head, 0, 3000)
	if err != nil || p2.Number != 2 || p2.Size != 3000 {
		t.Fatalf("UploadPartCopy = %+v, %v", p2, err)
	}
	mps, err := h.store.ListParts(ctx, testBucket, "mp", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := s.ListParts(ctx, testBucket, "mp", u.ID)
	if err != nil || len(ps) != 2 || len(mps) != 2 {
		t.Fatalf("ListParts = %+v, %v", ps, err)
	}
	for i, p := range ps {
		mp := mps[i]
		if p.Number != mp.Segment.Number || p.Size != mp.Segment.Size || p.ETag != mp.Segment.ETag || !p.Created.Equal(mp.Created) ||
			fmt.Sprint(p.Checksums) != fmt.Sprint(mp.Checksums) {
			t.Errorf("part %d = %+v; meta has %+v", i, p, mp)
		}
	}
	if p := ps[0]; p.ETag != p1.ETag || ps[1].ETag != p2.ETag {
		t.Errorf("listed ETags %s %s, uploaded %s %s", ps[0].ETag, ps[1].ETag, p1.ETag, p2.ETag)
	}
	lu, err := s.ListUploads(ctx, testBucket, UploadListOptions{Limit: 10})
	if err != nil || len(lu.Uploads) != 1 || lu.Uploads[0].ID != u.ID || lu.Uploads[0].Key != "mp" || lu.Truncated {
		t.Fatalf("ListUploads = %+v, %v", lu, err)
	}
	done, err := s.CompleteUploadIf(ctx, testBucket, "mp", u.ID, []CompletePart{{Number: 1, ETag: p1.ETag}, {Number: 2, ETag: p2.ETag}}, Precondition{Absent: true})
	if err != nil {
		t.Fatal(err)
	}
	sameInfo(t, "CompleteUploadIf", done, stored("mp"))
	if !slices.Equal(done.PartSizes, []int64{MinPartSize, 3000}) || done.ContentType != "x/y" {
		t.Fatalf("completed upload: parts %v, content type %q", done.PartSizes, done.ContentType)
	}
	if got := read(done, 0, done.Size); !bytes.Equal(got, append(part1, data[:3000]...)) {
		t.Fatal("the completed upload reads back other bytes")
	}

	// Abort, delete.
	u2, err := s.CreateUpload(ctx, Upload{Bucket: testBucket, Key: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AbortUpload(ctx, testBucket, "gone", u2.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteObject(ctx, testBucket, "copy"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HeadObject(ctx, testBucket, "copy"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("HeadObject after delete: %v", err)
	}
}

// leaderless answers, for the calls it overrides, as a meta replica that
// knows no leader.
type leaderless struct{ *testMeta }

func (leaderless) HeadBucket(context.Context, string) (meta.Bucket, error) {
	return meta.Bucket{}, &meta.NotLeaderError{}
}

func (leaderless) Get(context.Context, string, string) (meta.Manifest, error) {
	return meta.Manifest{}, fmt.Errorf("%w: gave up: %w", meta.ErrUnavailable, &meta.NotLeaderError{})
}

// TestServiceErrors: on every path the front door tells apart, Service's
// error matches the object sentinel (and still meta's).
func TestServiceErrors(t *testing.T) {
	h := newHarness(t, 6, testConfig())
	s := NewService(h.c)
	ctx := h.ctx
	body := func(b string) PutInput {
		return PutInput{Bucket: testBucket, Key: "k", Body: bytes.NewReader([]byte(b)), Size: int64(len(b))}
	}
	cur, err := s.PutObject(ctx, body("hello"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUpload(ctx, Upload{Bucket: testBucket, Key: "mp"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.UploadPart(ctx, u.ID, 1, PutInput{Bucket: testBucket, Key: "mp", Body: bytes.NewReader([]byte("part")), Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	withIf := func(in PutInput, p Precondition) PutInput { in.If = p; return in }
	other := func(in PutInput, bucket, key string) PutInput { in.Bucket, in.Key = bucket, key; return in }
	_, headLeaderless := NewService(mustNew(t, h, leaderless{h.md})).HeadBucket(ctx, testBucket)
	_, getLeaderless := NewService(mustNew(t, h, leaderless{h.md})).HeadObject(ctx, testBucket, "k")

	for _, tc := range []struct {
		what          string
		err           error
		want, metaErr error
	}{
		{"CreateBucket of an existing bucket", s.CreateBucket(ctx, testBucket, ""), ErrBucketExists, meta.ErrBucketExists},
		{"HeadBucket of a missing bucket", second(s.HeadBucket(ctx, "nope")), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"DeleteBucket of a missing bucket", s.DeleteBucket(ctx, "nope"), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"DeleteBucket of a bucket with objects", s.DeleteBucket(ctx, testBucket), ErrBucketNotEmpty, meta.ErrBucketNotEmpty},
		{"PutObject into a missing bucket", second(s.PutObject(ctx, other(body("x"), "nope", "k"))), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"PutObject If-None-Match * over a key", second(s.PutObject(ctx, withIf(body("x"), Precondition{Absent: true}))), ErrPreconditionFailed, meta.ErrPreconditionFailed},
		{"PutObject If-Match another ETag", second(s.PutObject(ctx, withIf(body("x"), Precondition{ETag: "0123"}))), ErrPreconditionFailed, meta.ErrPreconditionFailed},
		{"PutObject If-Match on a missing key", second(s.PutObject(ctx, withIf(other(body("x"), testBucket, "none"), Precondition{ETag: cur.ETag}))), ErrNoSuchKey, meta.ErrNoSuchKey},
		{"PutObject with both conditions", second(s.PutObject(ctx, withIf(body("x"), Precondition{Absent: true, ETag: cur.ETag}))), ErrInvalidArgument, meta.ErrInvalidArgument},
		{"HeadObject of a missing key", second(s.HeadObject(ctx, testBucket, "none")), ErrNoSuchKey, meta.ErrNoSuchKey},
		{"HeadObject in a missing bucket", second(s.HeadObject(ctx, "nope", "k")), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"DeleteObject in a missing bucket", s.DeleteObject(ctx, "nope", "k"), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"ListObjects of a missing bucket", second(s.ListObjects(ctx, "nope", ListOptions{Limit: 10})), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"CopyObject If-None-Match * over a key", second(s.CopyObject(ctx, cur, withIf(PutInput{Bucket: testBucket, Key: "k"}, Precondition{Absent: true}))), ErrPreconditionFailed, meta.ErrPreconditionFailed},
		{"CreateUpload in a missing bucket", second(s.CreateUpload(ctx, Upload{Bucket: "nope", Key: "k"})), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"GetUpload of a missing upload", second(s.GetUpload(ctx, testBucket, "mp", "nope")), ErrNoSuchUpload, meta.ErrNoSuchUpload},
		{"UploadPart to a missing upload", second(s.UploadPart(ctx, "nope", 1, other(body("x"), testBucket, "mp"))), ErrNoSuchUpload, meta.ErrNoSuchUpload},
		{"UploadPart number 0", second(s.UploadPart(ctx, u.ID, 0, other(body("x"), testBucket, "mp"))), ErrInvalidArgument, meta.ErrInvalidArgument},
		{"ListParts of a missing upload", second(s.ListParts(ctx, testBucket, "mp", "nope")), ErrNoSuchUpload, meta.ErrNoSuchUpload},
		{"ListUploads of a missing bucket", second(s.ListUploads(ctx, "nope", UploadListOptions{})), ErrNoSuchBucket, meta.ErrNoSuchBucket},
		{"CompleteUploadIf of a missing upload", second(s.CompleteUploadIf(ctx, testBucket, "mp", "nope", []CompletePart{{Number: 1, ETag: p.ETag}}, Precondition{})), ErrNoSuchUpload, meta.ErrNoSuchUpload},
		{"AbortUpload of a missing upload", s.AbortUpload(ctx, testBucket, "mp", "nope"), ErrNoSuchUpload, meta.ErrNoSuchUpload},
		{"HeadBucket without a meta leader", headLeaderless, ErrUnavailable, meta.ErrNotLeader},
		{"HeadObject with meta unreachable", getLeaderless, ErrUnavailable, meta.ErrUnavailable},
	} {
		checkFront(t, tc.what, tc.err, tc.want, tc.metaErr)
	}

	// A refused conditional completion leaves the upload to complete.
	_, err = s.PutObject(ctx, other(body("there"), testBucket, "mp"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CompleteUploadIf(ctx, testBucket, "mp", u.ID, []CompletePart{{Number: 1, ETag: p.ETag}}, Precondition{Absent: true})
	checkFront(t, "CompleteUploadIf If-None-Match * over a key", err, ErrPreconditionFailed, meta.ErrPreconditionFailed)
	if _, err := s.CompleteUploadIf(ctx, testBucket, "mp", u.ID, []CompletePart{{Number: 1, ETag: p.ETag}}, Precondition{}); err != nil {
		t.Fatalf("complete after a refusal: %v", err)
	}
}

// second is the error of a call's two results.
func second[T any](_ T, err error) error { return err }

// mustNew is a coordinator over md and h's nodes.
func mustNew(t *testing.T, h *harness, md Meta) *Coordinator {
	t.Helper()
	cfg := testConfig()
	cfg.Now = h.clock.Now
	c, err := New(cfg, md, h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
