package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/cluster"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/object"
)

type noNodes struct{}

func (noNodes) Store(n cluster.Node) (object.ShardStore, error) {
	return nil, fmt.Errorf("no node %s in this test", n.ID)
}

// TestListUploadsPagesThroughMeta runs ListMultipartUploads over the real
// object layer and meta store: a request asking for more than 1000 uploads
// gets 1000 and a truncated reply, and aws-sdk-go-v2's paginator walks
// every upload once, in S3's order (by key, then initiation time).
func TestListUploadsPagesThroughMeta(t *testing.T) {
	ctx := context.Background()
	md, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	must(t, err)
	t.Cleanup(func() { _ = md.Close() })
	co, err := object.New(object.Config{}, md, noNodes{})
	must(t, err)
	srv := httptest.NewServer(New(Config{Credentials: map[string]string{testAK: testSK}}, object.NewService(co)))
	t.Cleanup(srv.Close)
	c := (&testEnv{t: t, srv: srv}).aws()

	must(t, md.CreateBucket(ctx, "bkt", ""))
	var want []string // "key id" in S3's order
	for i := range 1000 {
		u, err := md.CreateUpload(ctx, meta.Upload{Bucket: "bkt", Key: fmt.Sprintf("k/%04d", i)})
		must(t, err)
		want = append(want, u.Key+" "+u.ID)
	}
	for range 5 { // one key, several uploads: listed in initiation order
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("same")})
		must(t, err)
		want = append(want, "same "+aws.ToString(cr.UploadId))
	}

	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt"), MaxUploads: aws.Int32(5000)})
	must(t, err)
	if len(lu.Uploads) != 1000 || !aws.ToBool(lu.IsTruncated) || aws.ToString(lu.NextKeyMarker) != "k/0999" {
		t.Fatalf("max-uploads 5000: %d uploads, truncated %v, next %q", len(lu.Uploads), aws.ToBool(lu.IsTruncated), aws.ToString(lu.NextKeyMarker))
	}

	var got []string
	pages := 0
	p := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt"), MaxUploads: aws.Int32(150)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		must(t, err)
		if len(page.Uploads) > 150 {
			t.Fatalf("page of %d uploads, max-uploads 150", len(page.Uploads))
		}
		for _, u := range page.Uploads {
			got = append(got, aws.ToString(u.Key)+" "+aws.ToString(u.UploadId))
		}
		pages++
	}
	if pages != 7 || !slices.Equal(got, want) {
		t.Fatalf("paginator: %d pages, %d uploads; order matches: %v", pages, len(got), slices.Equal(got, want))
	}

	// Page within the uploads of one key with both markers.
	lu, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt"), Delimiter: aws.String("/"),
		KeyMarker: aws.String("same"), UploadIdMarker: aws.String(want[1001][len("same "):]), MaxUploads: aws.Int32(2)})
	must(t, err)
	if len(lu.Uploads) != 2 || aws.ToString(lu.Uploads[0].UploadId) != want[1002][len("same "):] || !aws.ToBool(lu.IsTruncated) ||
		aws.ToString(lu.NextUploadIdMarker) != want[1003][len("same "):] || len(lu.CommonPrefixes) != 0 {
		t.Fatalf("markers within one key: %+v", lu)
	}
	lu, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt"), Delimiter: aws.String("/"), MaxUploads: aws.Int32(2)})
	must(t, err)
	if len(lu.CommonPrefixes) != 1 || aws.ToString(lu.CommonPrefixes[0].Prefix) != "k/" || len(lu.Uploads) != 1 || !aws.ToBool(lu.IsTruncated) {
		t.Fatalf("delimiter: %+v", lu)
	}
}
