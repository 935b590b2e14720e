package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// TestMinio drives the API with minio-go over HTTP and TLS.
func TestMinio(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) { testMinio(t, tls) })
	}
}

func testMinio(t *testing.T, tls bool) {
	e := newEnv(t, tls, nil)
	c, ctx := e.minio(), context.Background()

	must(t, c.MakeBucket(ctx, "minio-bucket", minio.MakeBucketOptions{Region: testRegion}))
	wantCode(t, c.MakeBucket(ctx, "minio-bucket", minio.MakeBucketOptions{}), "BucketAlreadyOwnedByYou")
	ok, err := c.BucketExists(ctx, "minio-bucket")
	must(t, err)
	if !ok {
		t.Fatal("BucketExists = false")
	}
	if ok, _ := c.BucketExists(ctx, "missing-bucket"); ok {
		t.Fatal("BucketExists(missing) = true")
	}
	bs, err := c.ListBuckets(ctx)
	must(t, err)
	if len(bs) != 1 || bs[0].Name != "minio-bucket" {
		t.Fatalf("ListBuckets %+v", bs)
	}

	// Single PUT, known size (minio-go signs it as a streaming body over HTTP).
	data := pattern(300_000, 9)
	info, err := c.PutObject(ctx, "minio-bucket", "a/one", bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "text/x-minio", UserMetadata: map[string]string{"Origin": "minio"}})
	must(t, err)
	if info.Size != int64(len(data)) || info.ETag == "" {
		t.Fatalf("PutObject info %+v", info)
	}
	obj, err := c.GetObject(ctx, "minio-bucket", "a/one", minio.GetObjectOptions{})
	must(t, err)
	got, err := io.ReadAll(obj)
	must(t, err)
	if !bytes.Equal(got, data) {
		t.Fatal("GetObject body differs")
	}
	st, err := c.StatObject(ctx, "minio-bucket", "a/one", minio.StatObjectOptions{})
	must(t, err)
	if st.ContentType != "text/x-minio" || st.UserMetadata["Origin"] != "minio" || st.Size != int64(len(data)) || st.ETag != info.ETag {
		t.Errorf("StatObject %+v", st)
	}
	opts := minio.GetObjectOptions{}
	must(t, opts.SetRange(10, 19))
	obj, err = c.GetObject(ctx, "minio-bucket", "a/one", opts)
	must(t, err)
	if got, err := io.ReadAll(obj); err != nil || !bytes.Equal(got, data[10:20]) {
		t.Errorf("ranged GetObject: %d bytes, %v", len(got), err)
	}
	_, err = c.StatObject(ctx, "minio-bucket", "nope", minio.StatObjectOptions{})
	wantCode(t, err, "NoSuchKey") // minio-go names HEAD 404s itself

	// Unknown size: minio-go streams a multipart upload of 5 MiB parts.
	big := pattern(11<<20, 3)
	info, err = c.PutObject(ctx, "minio-bucket", "b/big", io.NopCloser(bytes.NewReader(big)), -1,
		minio.PutObjectOptions{PartSize: 5 << 20})
	must(t, err)
	if !strings.HasSuffix(info.ETag, "-3") {
		t.Errorf("multipart ETag %q, want a -3 suffix", info.ETag)
	}
	obj, err = c.GetObject(ctx, "minio-bucket", "b/big", minio.GetObjectOptions{})
	must(t, err)
	if got, err := io.ReadAll(obj); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("multipart object: %d bytes, %v", len(got), err)
	}

	// Copy.
	_, err = c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "minio-bucket", Object: "c/copy"},
		minio.CopySrcOptions{Bucket: "minio-bucket", Object: "a/one"})
	must(t, err)
	st, err = c.StatObject(ctx, "minio-bucket", "c/copy", minio.StatObjectOptions{})
	must(t, err)
	if st.Size != int64(len(data)) || st.UserMetadata["Origin"] != "minio" {
		t.Errorf("copy %+v", st)
	}

	// Listing, recursive and by prefix.
	var keys []string
	for o := range c.ListObjects(ctx, "minio-bucket", minio.ListObjectsOptions{Recursive: true}) {
		must(t, o.Err)
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, " ") != "a/one b/big c/copy" {
		t.Errorf("recursive list %q", keys)
	}
	keys = nil
	for o := range c.ListObjects(ctx, "minio-bucket", minio.ListObjectsOptions{UseV1: true}) {
		must(t, o.Err)
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, " ") != "a/ b/ c/" {
		t.Errorf("V1 delimited list %q", keys)
	}

	// An incomplete upload is listed, then aborted.
	core := minio.Core{Client: c}
	id, err := core.NewMultipartUpload(ctx, "minio-bucket", "d/pending", minio.PutObjectOptions{})
	must(t, err)
	_, err = core.PutObjectPart(ctx, "minio-bucket", "d/pending", id, 1, bytes.NewReader([]byte("part")), 4, minio.PutObjectPartOptions{})
	must(t, err)
	var pending []string
	for u := range c.ListIncompleteUploads(ctx, "minio-bucket", "d/", true) {
		must(t, u.Err)
		pending = append(pending, u.Key+"@"+u.UploadID)
	}
	if len(pending) != 1 || pending[0] != "d/pending@"+id {
		t.Errorf("incomplete uploads %q", pending)
	}
	lp, err := core.ListObjectParts(ctx, "minio-bucket", "d/pending", id, 0, 100)
	must(t, err)
	if len(lp.ObjectParts) != 1 || lp.ObjectParts[0].Size != 4 {
		t.Errorf("ListObjectParts %+v", lp.ObjectParts)
	}
	must(t, c.RemoveIncompleteUpload(ctx, "minio-bucket", "d/pending"))

	// Remove: one, then many.
	must(t, c.RemoveObject(ctx, "minio-bucket", "c/copy", minio.RemoveObjectOptions{}))
	must(t, c.RemoveObject(ctx, "minio-bucket", "c/copy", minio.RemoveObjectOptions{}))
	objs := make(chan minio.ObjectInfo, 2)
	objs <- minio.ObjectInfo{Key: "a/one"}
	objs <- minio.ObjectInfo{Key: "b/big"}
	close(objs)
	for r := range c.RemoveObjects(ctx, "minio-bucket", objs, minio.RemoveObjectsOptions{}) {
		t.Errorf("RemoveObjects: %s: %v", r.ObjectName, r.Err)
	}
	if _, objects, uploads, _ := e.store.stored(); objects != 0 || uploads != 0 {
		t.Errorf("after removal: %d objects, %d uploads", objects, uploads)
	}
	must(t, c.RemoveBucket(ctx, "minio-bucket"))
}
