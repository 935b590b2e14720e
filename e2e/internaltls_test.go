package e2e

import (
	"context"
	"crypto/tls"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/internal/clustertls"
	"github.com/shale-store/shale/internal/peerauth"
	storageremote "github.com/shale-store/shale/storage/remote"
)

// A dev cluster with --internal-tls serves PUT and GET (gateway → meta and
// nodes, nodes → meta, admin → meta all over mutual TLS), and its nodes
// answer neither plain HTTP — even correctly signed with the cluster
// secret — nor TLS clients holding a certificate from another CA.
func TestInternalTLS(t *testing.T) {
	c := startDev(t, opts{extra: []string{"--internal-tls"}})
	if c.File.InternalTLS == nil {
		t.Fatal("cluster.json names no internal TLS files")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const bucket = "itls"
	if _, err := c.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	obj := payload{seed: 11, size: 3<<20 + 17}
	putObject(ctx, t, c, bucket, "k", obj)
	checkObject(ctx, t, c, bucket, "k", obj)
	if _, err := c.Status(); err != nil {
		t.Fatalf("admin status over internal TLS: %v", err)
	}

	secret, err := peerauth.LoadSecret(c.File.SecretFile)
	if err != nil {
		t.Fatal(err)
	}
	n := c.File.Nodes[0]
	plain := storageremote.NewClient("http://"+n.Addr, n.ID, secret, nil)
	if _, err := plain.Usage(ctx); err == nil {
		t.Fatal("a node with internal TLS answered plain HTTP")
	}

	// The same request over TLS with the cluster's files works...
	good := clustertls.Files{CA: c.File.InternalTLS.CA, Cert: c.File.InternalTLS.Cert, Key: c.File.InternalTLS.Key}
	cfg, err := clustertls.ClientConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	ok := storageremote.NewClient("https://"+n.Addr, n.ID, secret, &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}})
	if _, err := ok.Usage(ctx); err != nil {
		t.Fatalf("node over TLS with the cluster's certificate: %v", err)
	}
	// ...and with a certificate from another CA (trusting the cluster's, so
	// only the node's check is tested) it fails.
	dir := filepath.Join(t.TempDir(), "other-ca")
	other, err := clustertls.LoadOrCreateCA(dir, "another cluster")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := other.Issue(dir, "intruder", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	bad := cfg.Clone()
	bad.Certificates = []tls.Certificate{pair}
	intruder := storageremote.NewClient("https://"+n.Addr, n.ID, secret, &http.Client{Transport: &http.Transport{TLSClientConfig: bad}})
	if _, err := intruder.Usage(ctx); err == nil {
		t.Fatal("a node accepted a client certificate from another CA")
	}
}
