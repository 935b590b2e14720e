package repair

import (
	"time"

	"github.com/shale-store/shale/cluster"
)

// OutTried records a try on an out node, as Collect does, so a test can
// start with a node already put off.
func OutTried(gc *GarbageCollector, id cluster.NodeID, now time.Time, ok bool) {
	gc.outTried(id, now, ok)
}

// PlacementSignature is placementSignature, for the rebalancer's tests.
var PlacementSignature = placementSignature
