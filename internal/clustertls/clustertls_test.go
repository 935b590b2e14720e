package clustertls

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shale-store/shale/internal/privfs"
)

func TestCAAndCertFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := LoadOrCreateCA(dir, "test cluster")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateCA(dir, "test cluster")
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second load: %v, same CA %v", err, err == nil && again.Cert.Equal(ca.Cert))
	}
	cert, key, err := ca.Issue(dir, "node-1", []string{"127.0.0.1:7001", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), cert, key} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", p, st.Mode().Perm(), err)
		}
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("CA dir mode %v, want 0700", st.Mode().Perm())
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(cert)
	if _, _, err := ca.Issue(dir, "node-1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(cert); string(after) != string(before) {
		t.Fatal("a certificate that covers the hosts was reissued")
	}
	if _, _, err := ca.Issue(dir, "node-1", []string{"10.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(cert); string(after) == string(before) {
		t.Fatal("a certificate for other hosts was kept")
	}
}

// cluster is a CA with a server and a client certificate.
type cluster struct {
	ca             *CA
	server, client Files
}

func newCluster(t *testing.T, name string) cluster {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	ca, err := LoadOrCreateCA(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	sc, sk, err := ca.Issue(dir, "node", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cc, ck, err := ca.Issue(dir, "gateway", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return cluster{ca: ca, server: Files{Cert: sc, Key: sk, CA: ca.CertFile}, client: Files{Cert: cc, Key: ck, CA: ca.CertFile}}
}

func serveTLS(t *testing.T, f Files) *httptest.Server {
	t.Helper()
	cfg, err := ServerConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func client(t *testing.T, f Files) *http.Client {
	t.Helper()
	cfg, err := ClientConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestMutualTLS(t *testing.T) {
	a, b := newCluster(t, "a"), newCluster(t, "b")
	srv := serveTLS(t, a.server)

	if got, err := get(client(t, a.client), srv.URL); err != nil || got != "ok" {
		t.Fatalf("same cluster: %q, %v", got, err)
	}
	// A plain-HTTP client gets no answer from a TLS listener.
	if got, err := get(http.DefaultClient, strings.Replace(srv.URL, "https://", "http://", 1)); err == nil && got == "ok" {
		t.Fatal("plain HTTP was served")
	}
	// A client of another cluster (its certificate from another CA, and
	// trusting only that CA) is refused, and refuses.
	if _, err := get(client(t, b.client), srv.URL); err == nil {
		t.Fatal("a client with another CA's certificate was served")
	}
	// A client with a certificate from another CA that trusts this one's
	// server is still refused by the server.
	mixed := Files{Cert: b.client.Cert, Key: b.client.Key, CA: a.client.CA}
	if _, err := get(client(t, mixed), srv.URL); err == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	// A client without a certificate is refused.
	cfg, _ := ClientConfig(a.client)
	cfg.Certificates = nil
	if _, err := get(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, srv.URL); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// A server with another CA's certificate is refused by our client, even
	// though it would accept our client (trusting our CA).
	impostor := serveTLS(t, Files{Cert: b.server.Cert, Key: b.server.Key, CA: a.server.CA})
	if _, err := get(client(t, a.client), impostor.URL); err == nil {
		t.Fatal("a server certificate from another CA was trusted")
	}
	// The system roots are not trusted either: only the cluster CA.
	if cfg, _ := ClientConfig(a.client); cfg.RootCAs == nil || cfg.InsecureSkipVerify {
		t.Fatal("client config trusts more than the cluster CA")
	}
}

func TestBadNames(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"", "../x", "a/b", ".hidden", "ca", "ca-key"} {
		if _, _, err := ca.Issue(dir, n, []string{"127.0.0.1"}); err == nil {
			t.Errorf("name %q accepted", n)
		}
	}
}

func TestMissingFiles(t *testing.T) {
	if _, err := ServerConfig(Files{}); err == nil {
		t.Fatal("no files accepted")
	}
	dir := t.TempDir()
	if _, err := LoadCA(dir); err == nil {
		t.Fatal("empty dir loaded as a CA")
	}
}

// TestExposedKeyRefused: a certificate's private key that group or others
// may read is refused, with the chmod that fixes it, as the cluster secret
// is; after the chmod it loads.
func TestExposedKeyRefused(t *testing.T) {
	c := newCluster(t, "exposed")
	if err := os.Chmod(c.server.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ServerConfig(c.server)
	if !errors.Is(err, privfs.ErrNotPrivate) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("key file 0644: %v, want the private-file refusal", err)
	}
	if err := os.Chmod(c.server.Key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerConfig(c.server); err != nil {
		t.Fatalf("key file 0600: %v", err)
	}
	// The CA's own key too.
	caKey := filepath.Join(filepath.Dir(c.ca.CertFile), CAKeyFile)
	if err := os.Chmod(caKey, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(filepath.Dir(c.ca.CertFile)); !errors.Is(err, privfs.ErrNotPrivate) {
		t.Fatalf("CA key 0640: %v, want the private-file refusal", err)
	}
}
