package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/internal/peerauth"
	"github.com/shale-store/shale/meta"
)

// TestMutatingNamesRoutes: every name in mutating is a route of the
// handler (a typo would silently treat a mutation as a read: no request
// id, cancelled with its caller).
func TestMutatingNamesRoutes(t *testing.T) {
	secret := bytes.Repeat([]byte("m"), 32)
	s, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(NewHandler(withReplicas{s}, secret, HandlerConfig{}))
	defer srv.Close()
	signer := peerauth.NewSigner(secret, Identity)
	for name := range mutating {
		body := []byte(`{}`)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/"+name+"?rid=x-"+name, bytes.NewReader(body))
		signer.Sign(req, peerauth.BodySHA256(body))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if eb.Code == codeUnknownMethod {
			t.Errorf("%s is not a route", name)
		}
	}
}

// withReplicas gives a single store the Replicas methods (refusing every
// change), so a handler serves their routes.
type withReplicas struct{ *meta.Store }

func (withReplicas) ReplicaStatus(context.Context) (meta.ReplicaStatus, error) {
	return meta.ReplicaStatus{State: "leader"}, nil
}
func (withReplicas) ReplicaHash(context.Context) (meta.ReplicaHash, error) {
	return meta.ReplicaHash{}, nil
}
func (withReplicas) AddMember(context.Context, meta.Replica, bool) error {
	return meta.ErrInvalidArgument
}
func (withReplicas) RemoveMember(context.Context, string) error { return meta.ErrInvalidArgument }
func (withReplicas) TransferLeadership(context.Context, string) error {
	return meta.ErrInvalidArgument
}
