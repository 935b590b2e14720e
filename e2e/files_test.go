package e2e

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestDevFilesArePrivate runs real `shale dev` processes with umask 0, so
// that only the modes shale asks for count, stores an object and restarts
// nothing: every file and directory under the data directory (secret,
// credentials, cluster.json, logs, the TLS key, node data dirs with their
// shard files and pebble indexes, meta's pebble) is its owner's alone. The
// banner tells where the S3 secret key is, not the key.
//
// Not parallel: the umask is the process's, and parallel tests start only
// after this one has finished.
func TestDevFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	c := startDev(t, opts{nodes: 3, zones: 3, k: 2, m: 1, tls: true})
	syscall.Umask(old) // the processes are started: they keep umask 0
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("private")}); err != nil {
		t.Fatal(err)
	}
	p := payload{seed: 11, size: 3 << 20}
	putObject(ctx, t, c, "private", "obj", p)
	checkObject(ctx, t, c, "private", "obj", p)

	banner, err := os.ReadFile(c.devLog())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(banner), c.Creds.SecretKey) {
		t.Errorf("shale dev printed the S3 secret key:\n%s", banner)
	}
	if !strings.Contains(string(banner), "secret key    in "+c.File.Credentials) {
		t.Errorf("shale dev does not say where the secret key is (%s):\n%s", c.File.Credentials, banner)
	}

	c.Stop() // flushes and closes every store, so every file is there
	seen := map[string]bool{}
	err = filepath.WalkDir(c.Data, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %04o", p, m)
		}
		rel, _ := filepath.Rel(c.Data, p)
		seen[strings.SplitN(rel, string(filepath.Separator), 4)[0]] = true
		if strings.Contains(rel, "shards") {
			seen["shards"] = true
		}
		if strings.HasSuffix(rel, ".log") {
			seen["log"] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"secret", "credentials.json", "cluster.json", "tls", "metas", "nodes", "logs", "shards", "log"} {
		if !seen[want] {
			t.Errorf("nothing like %q under %s: the walk missed it", want, c.Data)
		}
	}
}
