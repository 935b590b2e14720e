package main

import (
	"context"
	"fmt"

	"github.com/shale-store/shale/cluster"
)

// fetchClusterMap asks the meta service at addr, authenticating with the
// cluster secret in secretFile, for the current cluster map. It is the seam
// between `shale placement --meta` and meta/remote; until that client is
// wired in here it always fails.
func fetchClusterMap(ctx context.Context, addr, secretFile string) (*cluster.Map, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_ = secretFile
	return nil, fmt.Errorf("fetch cluster map from %s: not wired yet", addr)
}
