package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/shale-store/shale/internal/peerauth"
)

// loadSecretFlag returns the cluster secret held in the file named by a
// --secret-file flag, creating the file (32 random bytes, hex, mode 0600)
// when it does not exist yet, so the first process of a cluster can mint
// the secret. Every other process of the cluster must be given the same
// file (or a copy). An empty path is an error: every role needs the secret.
func loadSecretFlag(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--secret-file is required (the cluster secret shared by meta, nodes and gateways)")
	}
	s, err := peerauth.LoadSecret(path)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	s, err = peerauth.LoadOrCreateSecret(path)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	fmt.Fprintf(os.Stderr, "shale: created a new cluster secret in %s; give every process of the cluster this file\n", path)
	return s, nil
}
