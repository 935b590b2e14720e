package meta_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/shale-store/shale/meta"
)

// TestRequestIDReusedForAnotherOp: a request id already used by one
// operation, sent again with another, is refused (ErrInvalidArgument)
// instead of answering with the first command's result — which, read as
// the second's, had no manifest, and UpdateShards dereferenced it (a
// panic in meta's handler).
func TestRequestIDReusedForAnotherOp(t *testing.T) {
	s, err := meta.Open(meta.Config{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := meta.WithRequestID(context.Background(), "same-id")
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateShards(ctx, "b", "k", 1, nil); !errors.Is(err, meta.ErrInvalidArgument) {
		t.Fatalf("UpdateShards under CreateBucket's request id: %v", err)
	}
	// The same operation under the same id is still its first result.
	if err := s.CreateBucket(ctx, "b", ""); err != nil {
		t.Fatalf("retried CreateBucket: %v", err)
	}
}
