package peerauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shale-store/shale/internal/privfs"
)

// TestLoadSecretRefusesExposedFile: a secret file that another local user
// could read (or rewrite) is refused, and the error says which file, its
// mode and the fix; the same file after chmod 600 loads.
func TestLoadSecretRefusesExposedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if _, err := CreateSecret(p); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSecret(p)
		if !errors.Is(err, privfs.ErrNotPrivate) {
			t.Fatalf("mode %04o: LoadSecret = %v, want ErrNotPrivate", mode, err)
		}
		for _, want := range []string{p, "chmod 600 " + p, fmt.Sprintf("mode %04o", mode)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %04o: error %q lacks %q", mode, err, want)
			}
		}
		if _, err := LoadOrCreateSecret(p); !errors.Is(err, privfs.ErrNotPrivate) {
			t.Fatalf("mode %04o: LoadOrCreateSecret = %v, want ErrNotPrivate (never a new secret over it)", mode, err)
		}
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecret(p); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}
