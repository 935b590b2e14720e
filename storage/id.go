package storage

import (
	"fmt"
	"strings"
)

// ValidateID reports whether id may name a shard: 1 to MaxIDLen characters
// from [A-Za-z0-9._-], starting with a letter or digit, without "..". Such an
// id is always a single plain file name, so no id can reach a path outside
// the store's directory. The error wraps ErrInvalidID.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes long, at most %d", ErrInvalidID, len(id), MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w: %q does not start with a letter or digit", ErrInvalidID, id)
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w: %q holds byte %#x at %d", ErrInvalidID, id, c, i)
		}
	}
	if strings.Contains(id, "..") {
		return fmt.Errorf("%w: %q contains \"..\"", ErrInvalidID, id)
	}
	return nil
}
