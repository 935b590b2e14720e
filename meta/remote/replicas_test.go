package remote_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/shale-store/shale/meta"
	"github.com/shale-store/shale/meta/remote"
)

// replicaBackend is a store with the Replicas methods, counting the calls
// that reach it.
type replicaBackend struct {
	*meta.Store
	calls atomic.Int64
}

func (b *replicaBackend) ReplicaStatus(context.Context) (meta.ReplicaStatus, error) {
	b.calls.Add(1)
	return meta.ReplicaStatus{ID: "m1", State: "leader", AppliedIndex: 7}, nil
}
func (b *replicaBackend) ReplicaHash(context.Context) (meta.ReplicaHash, error) {
	b.calls.Add(1)
	return meta.ReplicaHash{AppliedIndex: 7, Hash: "ab"}, nil
}
func (b *replicaBackend) AddMember(_ context.Context, r meta.Replica, _ bool) error {
	b.calls.Add(1)
	return r.Validate()
}
func (b *replicaBackend) RemoveMember(context.Context, string) error { b.calls.Add(1); return nil }
func (b *replicaBackend) TransferLeadership(context.Context, string) error {
	b.calls.Add(1)
	return nil
}

// TestReplicaCallsNeedTheSecret: a replica's status, its keyspace hash and
// membership changes are served to holders of the cluster secret only; a
// wrong secret or no signature never reaches the replica.
func TestReplicaCallsNeedTheSecret(t *testing.T) {
	b := &replicaBackend{Store: openStore(t)}
	srv := httptest.NewServer(remote.NewHandler(b, secret, remote.HandlerConfig{}))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	good := remote.NewClient(srv.URL, secret, srv.Client())
	st, err := good.ReplicaStatus(ctx)
	if err != nil || st.ID != "m1" || st.AppliedIndex != 7 {
		t.Fatalf("status with the secret: %+v, %v", st, err)
	}
	if err := good.AddMember(ctx, meta.Replica{ID: "m4"}, true); !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("adding a replica without addresses: %v, want ErrInvalidArgument", err)
	}
	reached := b.calls.Load()

	bad := remote.NewClient(srv.URL, bytes.Repeat([]byte("x"), 40), srv.Client())
	for name, call := range map[string]func() error{
		"ReplicaStatus": func() error { _, err := bad.ReplicaStatus(ctx); return err },
		"ReplicaHash":   func() error { _, err := bad.ReplicaHash(ctx); return err },
		"AddReplica": func() error {
			return bad.AddMember(ctx, meta.Replica{ID: "evil", Addr: "10.0.0.9:7000", Raft: "10.0.0.9:7001"}, true)
		},
		"RemoveReplica":  func() error { return bad.RemoveMember(ctx, "m1") },
		"TransferLeader": func() error { return bad.TransferLeadership(ctx, "") },
	} {
		if err := call(); !errors.Is(err, remote.ErrUnauthorized) {
			t.Errorf("%s with a wrong secret: %v, want ErrUnauthorized", name, err)
		}
		resp, err := srv.Client().Post(srv.URL+"/v1/"+name, "application/json", bytes.NewReader([]byte(`{"id":"m1"}`)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unsigned %s: status %d", name, resp.StatusCode)
		}
	}
	if n := b.calls.Load(); n != reached {
		t.Fatalf("%d refused calls reached the replica", n-reached)
	}
}
