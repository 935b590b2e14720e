package replicated_test

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func newInmem(addr string) (raft.ServerAddress, *raft.InmemTransport) {
	return raft.NewInmemTransport(raft.ServerAddress(addr))
}
