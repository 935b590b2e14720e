//go:build !linux

package netnstest

import (
	"errors"
	"fmt"
)

// Do needs Linux network namespaces; elsewhere it returns
// errors.ErrUnsupported (and New has already skipped the test, for want
// of `ip netns`).
func (nd *Node) Do(fn func() error) error {
	return fmt.Errorf("netnstest: %w", errors.ErrUnsupported)
}
