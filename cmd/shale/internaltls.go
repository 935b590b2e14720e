package main

import (
	"crypto/tls"
	"errors"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/shale-store/shale/internal/clustertls"
	"github.com/shale-store/shale/internal/devcluster"
)

// internalTLSFlags are the flags every role takes for TLS between shale's
// own processes.
type internalTLSFlags struct {
	on            bool
	cert, key, ca string
}

func (f *internalTLSFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&f.on, "internal-tls", false, "use mutual TLS for traffic between shale processes (needs the three --internal-tls-* files)")
	fl.StringVar(&f.cert, "internal-tls-cert", "", "this process's certificate (PEM), issued by the cluster CA")
	fl.StringVar(&f.key, "internal-tls-key", "", "this process's private key (PEM)")
	fl.StringVar(&f.ca, "internal-tls-ca", "", "the cluster CA certificate (PEM): the only one trusted for internal traffic")
}

// args are the flags that reproduce f for a child process.
func (f internalTLSFlags) args() []string {
	if !f.on {
		return nil
	}
	return []string{"--internal-tls", "--internal-tls-cert", f.cert, "--internal-tls-key", f.key, "--internal-tls-ca", f.ca}
}

// internalNet is how a process speaks to and serves its peers: plain HTTP,
// or mutual TLS with the cluster CA.
type internalNet struct {
	scheme string      // "http" or "https"
	server *tls.Config // nil: plain
	client *tls.Config // nil: plain
}

// plainNet is internal traffic without TLS.
var plainNet = &internalNet{scheme: "http"}

func (f internalTLSFlags) load() (*internalNet, error) {
	if !f.on {
		if f.cert != "" || f.key != "" || f.ca != "" {
			return nil, errors.New("--internal-tls-cert, --internal-tls-key and --internal-tls-ca need --internal-tls")
		}
		return plainNet, nil
	}
	files := clustertls.Files{Cert: f.cert, Key: f.key, CA: f.ca}
	sc, err := clustertls.ServerConfig(files)
	if err != nil {
		return nil, err
	}
	cc, err := clustertls.ClientConfig(files)
	if err != nil {
		return nil, err
	}
	return &internalNet{scheme: "https", server: sc, client: cc}, nil
}

// devNet is the internal network of a dev cluster, from its cluster file.
func devNet(cf devcluster.File) (*internalNet, error) {
	if cf.InternalTLS == nil {
		return plainNet, nil
	}
	t := cf.InternalTLS
	return internalTLSFlags{on: true, cert: t.Cert, key: t.Key, ca: t.CA}.load()
}

// url is the base URL of a peer at addr (host:port).
func (n *internalNet) url(addr string) string { return n.scheme + "://" + addr }

// urls maps url over a comma-separated list of addresses (every meta
// replica's), keeping it a comma-separated list.
func (n *internalNet) urls(addrs string) string {
	var out []string
	for _, a := range splitAddrs(addrs) {
		out = append(out, n.url(a))
	}
	return strings.Join(out, ",")
}

// splitAddrs splits a comma-separated address list (--meta), dropping
// blanks.
func splitAddrs(list string) []string {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// transport is a keep-alive transport (up to 64 idle connections per peer)
// that speaks this network's protocol.
func (n *internalNet) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.MaxIdleConns = 0 // the default 100 in all is fewer than a gateway keeps busy (32 PUTs × 6 nodes): no cap beyond the per-peer one
	if n.client != nil {
		tr.TLSClientConfig = n.client.Clone()
	}
	return tr
}

// devInternalTLS creates (once) the cluster CA of a dev cluster in
// DATA/internal-tls and a certificate for each of names, valid for the
// loopback addresses the dev cluster serves on. It returns the flags for
// each name.
func devInternalTLS(data string, names []string) (map[string]internalTLSFlags, error) {
	dir := filepath.Join(data, "internal-tls")
	ca, err := clustertls.LoadOrCreateCA(dir, "shale dev cluster CA")
	if err != nil {
		return nil, err
	}
	out := map[string]internalTLSFlags{}
	for _, name := range names {
		cert, key, err := ca.Issue(dir, name, []string{"127.0.0.1", "::1", "localhost"})
		if err != nil {
			return nil, err
		}
		out[name] = internalTLSFlags{on: true, cert: cert, key: key, ca: ca.CertFile}
	}
	return out, nil
}
