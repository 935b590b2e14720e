package main

import (
	"context"
	"fmt"
	"time"

	"github.com/shale-store/shale/cluster"
)

// fetchClusterMap asks a running cluster's meta service for its current map.
func fetchClusterMap(ctx context.Context, t clusterTarget) (*cluster.Map, error) {
	c, _, err := t.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := c.Map(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch cluster map: %w", err)
	}
	return m, nil
}
