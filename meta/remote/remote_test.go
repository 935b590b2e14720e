package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/metatest"
	"github.com/shale-store/shale/meta/remote"
)

var secret = bytes.Repeat([]byte("s3cr3t-"), 6)

// serve starts an httptest server for b and returns a client of it.
func serve(t *testing.T, b remote.Backend) *remote.Client {
	t.Helper()
	srv := httptest.NewServer(remote.NewHandler(b, secret, remote.HandlerConfig{}))
	t.Cleanup(srv.Close)
	return remote.NewClient(srv.URL, secret, srv.Client())
}

func openStore(t *testing.T) *meta.Store {
	t.Helper()
	s, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformanceRemote(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Service { return serve(t, openStore(t)) })
}

func TestWrongSecret(t *testing.T) {
	s := openStore(t)
	srv := httptest.NewServer(remote.NewHandler(s, secret, remote.HandlerConfig{}))
	t.Cleanup(srv.Close)
	c := remote.NewClient(srv.URL, bytes.Repeat([]byte("x"), 40), srv.Client())
	err := c.CreateBucket(context.Background(), "b", "")
	if !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := s.HeadBucket(context.Background(), "b"); !errors.Is(err, meta.ErrNoSuchBucket) {
		t.Fatalf("unauthenticated request reached the store: %v", err)
	}
	// An unsigned request never reaches the service either.
	resp, err := srv.Client().Post(srv.URL+"/v1/CreateBucket", "application/json", bytes.NewReader([]byte(`{"name":"b"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned request: status %d", resp.StatusCode)
	}
}

func TestUnknownMethodAndBadBody(t *testing.T) {
	srv := httptest.NewServer(remote.NewHandler(openStore(t), secret, remote.HandlerConfig{}))
	t.Cleanup(srv.Close)
	// A client whose paths the server does not know (another protocol).
	cl := remote.NewClient(srv.URL+"/nope", secret, srv.Client())
	if _, err := cl.ListBuckets(context.Background()); !errors.Is(err, remote.ErrProtocol) {
		t.Fatalf("unknown method: %v", err)
	}
	// A body that is not the method's JSON.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/Get", bytes.NewReader([]byte("[1,2")))
	if err != nil {
		t.Fatal(err)
	}
	peerauth.NewSigner(secret, remote.Identity).Sign(req, peerauth.BodySHA256([]byte("[1,2")))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad body: status %d", resp.StatusCode)
	}
}

func TestInvalidUTF8Refused(t *testing.T) {
	c := serve(t, openStore(t))
	if err := c.CreateBucket(context.Background(), "b", ""); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(context.Background(), "b", "\xff")
	if !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("invalid UTF-8 key: %v", err)
	}
}

// blockingCommit holds Commit until the server has seen its client leave
// (the request's own context is done), then commits with the context the
// handler passed down.
type blockingCommit struct {
	*meta.Store
	reqCtx    chan context.Context
	entered   chan struct{}
	committed chan error
}

func (b *blockingCommit) Commit(ctx context.Context, m meta.Manifest) (meta.Manifest, error) {
	close(b.entered)
	<-(<-b.reqCtx).Done()
	out, err := b.Store.Commit(ctx, m)
	b.committed <- err
	return out, err
}

func TestMutationSurvivesClientCancel(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	bc := &blockingCommit{Store: s, reqCtx: make(chan context.Context, 1), entered: make(chan struct{}), committed: make(chan error, 1)}
	h := remote.NewHandler(bc, secret, remote.HandlerConfig{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bc.reqCtx <- r.Context()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := remote.NewClient(srv.URL, secret, srv.Client())
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Commit(cctx, meta.Manifest{Bucket: "b", Key: "k", VersionID: "v"})
		done <- err
	}()
	<-bc.entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client call: %v, want context.Canceled", err)
	}
	// The server finishes the commit although its caller left.
	if err := <-bc.committed; err != nil {
		t.Fatalf("server-side commit after the client left: %v", err)
	}
	m, err := s.Get(ctx, "b", "k")
	if err != nil || m.VersionID != "v" {
		t.Fatalf("after a lost reply: %+v, %v", m, err)
	}
}

func TestRemoteRepairCalls(t *testing.T) {
	s := openStore(t)
	c := serve(t, s)
	ctx := context.Background()
	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	m := meta.Manifest{Bucket: "b", Key: "k", Segments: []meta.Segment{{Number: 1, K: 1, M: 1, Shards: []meta.ShardRef{{Index: 0, Node: "n1", ID: "a"}, {Index: 1}}}}}
	cm, err := c.Commit(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.ScanManifests(ctx, "", "", 10)
	if err != nil || len(ms) != 1 || ms[0].Generation != cm.Generation {
		t.Fatalf("ScanManifests = %+v, %v", ms, err)
	}
	if err := c.ReportBad(ctx, meta.BadShard{ShardKey: meta.ShardKey{Node: "n1", ShardID: "a"}, Reason: "corrupt"}); err != nil {
		t.Fatal(err)
	}
	if has, err := c.HasShard(ctx, "n1", "a"); err != nil || !has {
		t.Fatalf("HasShard(n1, a) = %v, %v", has, err)
	}
	if has, err := c.HasShard(ctx, "n1", "b"); err != nil || has {
		t.Fatalf("HasShard(n1, b) = %v, %v", has, err)
	}
	_, err = c.HasShard(ctx, "", "a")
	if !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("HasShard without a node: %v", err)
	}
	br, err := c.BadReports(ctx, 10)
	if err != nil || len(br) != 1 || br[0].Key != "k" || br[0].Reason != "corrupt" {
		t.Fatalf("BadReports = %+v, %v", br, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Objects != 1 || st.RepairQueue != 1 || st.ObjectsByHealthyShards[0] != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

// TestListUploadsReplyBounded: however many uploads a bucket holds and
// whatever limit a caller asks for, one ListUploads reply carries at most
// meta.MaxListLimit of them.
func TestListUploadsReplyBounded(t *testing.T) {
	ctx := context.Background()
	c := serve(t, openStore(t))
	if err := c.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	for i := range meta.MaxListLimit + 200 {
		if _, err := c.CreateUpload(ctx, meta.Upload{Bucket: "b", Key: fmt.Sprintf("k%05d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, meta.MaxListLimit + 1, 1 << 30} {
		r, err := c.ListUploads(ctx, "b", meta.UploadListOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Uploads) != meta.MaxListLimit || !r.Truncated {
			t.Fatalf("limit %d: %d uploads, truncated %v", limit, len(r.Uploads), r.Truncated)
		}
	}
}

// TestSetWeightNeedsTheSecret: the new operator call is refused, unchanged,
// without the cluster secret, signed or not.
func TestSetWeightNeedsTheSecret(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.Heartbeat(ctx, meta.NodeReport{ID: "n1", Addr: "127.0.0.1:1", Capacity: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(remote.NewHandler(s, secret, remote.HandlerConfig{}))
	t.Cleanup(srv.Close)
	bad := remote.NewClient(srv.URL, bytes.Repeat([]byte("x"), 40), srv.Client())
	if err := bad.SetWeight(ctx, "n1", 9<<40); !errors.Is(err, remote.ErrUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
	resp, err := srv.Client().Post(srv.URL+"/v1/SetWeight", "application/json", bytes.NewReader([]byte(`{"node":"n1","weight":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned SetWeight: status %d", resp.StatusCode)
	}
	mp, err := s.Map(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := mp.Node("n1"); n.Weighted != 0 {
		t.Fatalf("a refused call set the weight: %+v", n)
	}
	if err := remote.NewClient(srv.URL, secret, srv.Client()).SetWeight(ctx, "n1", 9<<40); err != nil {
		t.Fatalf("with the secret: %v", err)
	}
}
