package peerauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shale-store/shale/internal/privfs"
)

// MinSecretLen is the shortest secret, in bytes after decoding, that
// LoadSecret, NewSigner and NewVerifier accept.
const MinSecretLen = 32

// ErrShortSecret: a secret (from a file or passed in) is shorter than
// MinSecretLen bytes.
var ErrShortSecret = errors.New("peerauth: secret shorter than 32 bytes")

// LoadSecret reads the cluster secret from the file at path. The file holds
// either hex (surrounding white space ignored), which is decoded, or raw
// bytes, used as they are (one trailing newline removed). Either way the
// secret must be at least MinSecretLen bytes; a missing file gives an error
// that wraps fs.ErrNotExist, and a file that group or others may access one
// that wraps privfs.ErrNotPrivate (with the path, its mode and the chmod).
func LoadSecret(path string) ([]byte, error) {
	b, err := privfs.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load secret %s: %w", path, err)
	}
	s, err := decodeSecret(b)
	if err != nil {
		return nil, fmt.Errorf("load secret %s: %w", path, err)
	}
	return s, nil
}

// decodeSecret turns a secret file's bytes into the secret.
func decodeSecret(b []byte) ([]byte, error) {
	t := strings.TrimSpace(string(b))
	if len(t) > 0 && len(t)%2 == 0 {
		if d, err := hex.DecodeString(t); err == nil {
			if len(d) < MinSecretLen {
				return nil, fmt.Errorf("%w (hex decodes to %d bytes)", ErrShortSecret, len(d))
			}
			return d, nil
		}
	}
	raw := b
	if n := len(raw); n > 0 && raw[n-1] == '\n' {
		raw = raw[:n-1]
		if n := len(raw); n > 0 && raw[n-1] == '\r' {
			raw = raw[:n-1]
		}
	}
	if len(raw) < MinSecretLen {
		return nil, fmt.Errorf("%w (file holds %d bytes, not hex)", ErrShortSecret, len(raw))
	}
	return append([]byte(nil), raw...), nil
}

// CreateSecret makes a new secret of 32 random bytes and writes it as hex
// to a new file at path with mode 0600. It fails, with an error wrapping
// fs.ErrExist, if the file already exists: it never overwrites a secret.
// The file appears complete or not at all (written and fsynced under a
// temporary name, then hard-linked into place), so a concurrent LoadSecret
// never reads a half-written secret.
func CreateSecret(path string) ([]byte, error) {
	s := make([]byte, MinSecretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("create secret %s: %w", path, err)
	}
	if err := writeNew(path, []byte(hex.EncodeToString(s)+"\n")); err != nil {
		return nil, fmt.Errorf("create secret %s: %w", path, err)
	}
	return s, nil
}

// writeNew publishes data at path with mode 0600, failing if path exists.
func writeNew(path string, data []byte) error {
	if _, err := os.Lstat(path); err == nil {
		return &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Link fails with EEXIST when path exists: an atomic create-exclusive
	// that publishes the whole file at once.
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// LoadOrCreateSecret loads the secret at path, creating it (CreateSecret)
// when the file does not exist. When two processes race to create it, both
// end up with the one that was written.
func LoadOrCreateSecret(path string) ([]byte, error) {
	s, err := LoadSecret(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	s, err = CreateSecret(path)
	if errors.Is(err, fs.ErrExist) {
		return LoadSecret(path)
	}
	return s, err
}
