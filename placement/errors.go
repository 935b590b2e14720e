package placement

import (
	"errors"
	"fmt"
)

// ErrTooFewNodes is matched (errors.Is) by every *TooFewNodesError: the map
// has fewer eligible (Up, unused) nodes than the request needs.
var ErrTooFewNodes = errors.New("too few nodes")

// ErrSpread is returned by Replace when every available node would make the
// object's spread over domains worse than both the caps and the spread the
// object already had.
var ErrSpread = errors.New("spread impossible")

// ErrInvalidArgs is returned for k < 1, parity < 0, more than MaxShards
// shards, an empty object id, a min outside 1..k+parity, or lost indexes that
// are out of range or repeated.
var ErrInvalidArgs = errors.New("invalid placement arguments")

// MaxShards is the most shards (k+parity) a placement may have; it matches
// the GF(2^8) Reed-Solomon limit.
const MaxShards = 256

// TooFewNodesError says how many nodes a placement needed and how many it
// could use. errors.Is(err, ErrTooFewNodes) holds for it.
type TooFewNodesError struct {
	Need int // nodes required
	Have int // eligible nodes available (or shards placeable, for PlaceDegraded)
}

func (e *TooFewNodesError) Error() string {
	return fmt.Sprintf("%v: need %d, have %d", ErrTooFewNodes, e.Need, e.Have)
}

// Is reports whether target is ErrTooFewNodes.
func (e *TooFewNodesError) Is(target error) bool { return target == ErrTooFewNodes }
