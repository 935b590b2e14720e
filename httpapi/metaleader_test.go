package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/remote"
	"github.com/shale-store/shale/object"
)

// leaderless is a meta replica that knows no leader: every call it is
// asked for answers *meta.NotLeaderError without a hint.
type leaderless struct{ *meta.Store }

func (leaderless) HeadBucket(context.Context, string) (meta.Bucket, error) {
	return meta.Bucket{}, &meta.NotLeaderError{}
}
func (leaderless) Get(context.Context, string, string) (meta.Manifest, error) {
	return meta.Manifest{}, &meta.NotLeaderError{}
}
func (leaderless) ListBuckets(context.Context) ([]meta.Bucket, error) {
	return nil, &meta.NotLeaderError{}
}
func (leaderless) CreateBucket(context.Context, string, string) error {
	return &meta.NotLeaderError{}
}

// TestNoMetaLeaderIsSlowDown: while the metadata group has no leader, the
// meta client gives up with meta.ErrUnavailable and S3 answers 503
// SlowDown (which SDKs retry), never 500.
func TestNoMetaLeaderIsSlowDown(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	md, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	must(t, err)
	t.Cleanup(func() { _ = md.Close() })
	metaSrv := httptest.NewServer(remote.NewHandler(leaderless{md}, secret, remote.HandlerConfig{}))
	t.Cleanup(metaSrv.Close)
	mc := remote.New(remote.Config{Addrs: []string{metaSrv.URL}, Secret: secret, RetryFor: 200 * time.Millisecond})
	co, err := object.New(object.Config{}, mc, noNodes{})
	must(t, err)
	srv := httptest.NewServer(New(Config{Credentials: map[string]string{testAK: testSK}}, object.NewService(co)))
	t.Cleanup(srv.Close)
	c := (&testEnv{t: t, srv: srv}).aws()
	ctx := context.Background()

	for name, call := range map[string]func() error{
		"CreateBucket": func() error {
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")})
			return err
		},
		"GetObject": func() error {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
			return err
		},
		"ListBuckets": func() error {
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			return err
		},
	} {
		err := call()
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != "SlowDown" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
			t.Errorf("%s without a meta leader: %v, want 503 SlowDown", name, err)
		}
	}
}
