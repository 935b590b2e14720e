package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shale-store/shale/internal/devcluster"
	"github.com/shale-store/shale/internal/privfs"
)

// TestCredentialsFileMustBePrivate: the gateway refuses a credentials file
// that another local user could read, saying which file, its mode and the
// fix; after chmod 600 it loads. A pair it creates is private.
func TestCredentialsFileMustBePrivate(t *testing.T) {
	t.Setenv("SHALE_ACCESS_KEY", "")
	t.Setenv("SHALE_SECRET_KEY", "")
	dir := t.TempDir()
	p := filepath.Join(dir, "credentials.json")
	made, err := loadCredentials(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created credentials file: %v, mode %v", err, fi.Mode())
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o606} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		for _, create := range []bool{false, true} {
			_, err := loadCredentials(p, create)
			if !errors.Is(err, privfs.ErrNotPrivate) {
				t.Fatalf("mode %04o, create=%v: loadCredentials = %v, want ErrNotPrivate", mode, create, err)
			}
			for _, want := range []string{p, fmt.Sprintf("mode %04o", mode), "chmod 600 " + p} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		}
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := loadCredentials(p, false); err != nil || got != made {
		t.Fatalf("after chmod 600: %+v, %v", got, err)
	}
}

// TestDevBannerNamesWhereTheSecretIs: the banner of `shale dev` gives the
// access key and where the secret key is kept, never the secret key itself;
// a key from SHALE_SECRET_KEY is said to come from there.
func TestDevBannerNamesWhereTheSecretIs(t *testing.T) {
	const secret = "s3cr3tKEYs3cr3tKEYs3cr3tKEY"
	t.Setenv("SHALE_ACCESS_KEY", "")
	t.Setenv("SHALE_SECRET_KEY", "")
	dir := t.TempDir()
	credsFile := filepath.Join(dir, "my data", "credentials.json")
	cf := devcluster.File{S3: "http://127.0.0.1:9000", Meta: "127.0.0.1:9100", SecretFile: filepath.Join(dir, "secret"), Credentials: credsFile}
	f := devFlags{nodes: 6, zones: 3, k: 4, m: 2}

	var out bytes.Buffer
	printDevBanner(&out, cf, "SHALEAK", false, f)
	banner := out.String()
	for _, want := range []string{"SHALEAK", "secret key    in " + credsFile, "AWS_SECRET_ACCESS_KEY=$(jq -r .secret_key '" + credsFile + "')"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}

	t.Setenv("SHALE_ACCESS_KEY", "ENVAK")
	t.Setenv("SHALE_SECRET_KEY", secret)
	c, err := loadCredentials(credsFile, false)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	printDevBanner(&out, cf, c.AccessKey, true, f)
	banner = out.String()
	if strings.Contains(banner, secret) {
		t.Fatalf("banner shows the secret key:\n%s", banner)
	}
	for _, want := range []string{"ENVAK", "from $SHALE_SECRET_KEY", `AWS_SECRET_ACCESS_KEY="$SHALE_SECRET_KEY"`} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
}
