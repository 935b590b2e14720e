package clustertls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/shale-store/shale/internal/privfs"
)

// File names of the CA inside its directory.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// Validity of what this package issues.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 5 * 365 * 24 * time.Hour
	backdate     = time.Hour // tolerated clock skew at issue time
)

var (
	// ErrNoCertificate: a PEM file holds no certificate (or no key).
	ErrNoCertificate = errors.New("clustertls: no certificate in file")
	// ErrNotCA: the CA file's certificate cannot sign certificates.
	ErrNotCA = errors.New("clustertls: certificate is not a CA")
	// ErrName: a certificate name is not 1–64 of [A-Za-z0-9._-] starting
	// with a letter or digit (it names files).
	ErrName = errors.New("clustertls: invalid certificate name")
)

func validName(n string) bool {
	if len(n) == 0 || len(n) > 64 || n[0] == '.' || n[0] == '-' || n == "ca" || n == "ca-key" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CA is a loaded cluster CA: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertFile is the path of the CA certificate (what peers trust).
	CertFile string
}

// LoadOrCreateCA loads the CA in dir (ca.pem, ca-key.pem), creating dir
// (0700) and a new CA named commonName when there is none.
func LoadOrCreateCA(dir, commonName string) (*CA, error) {
	ca, err := LoadCA(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create CA dir: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	if err := writeKeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile), der, key); err != nil {
		return nil, err
	}
	return LoadCA(dir)
}

// LoadCA loads the CA in dir. A missing file gives an error wrapping
// fs.ErrNotExist.
func LoadCA(dir string) (*CA, error) {
	certFile := filepath.Join(dir, CAFile)
	pair, err := loadPair(certFile, filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load CA in %s: %w", dir, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("load CA in %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load CA in %s: key is %T, want ECDSA", dir, pair.PrivateKey)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("load CA in %s: %w", dir, ErrNotCA)
	}
	return &CA{Cert: cert, key: key, CertFile: certFile}, nil
}

// Issue writes name.pem and name-key.pem in dir (0600): a certificate for
// server and client authentication named name, valid for hosts (IP
// addresses or DNS names; ports are stripped). Existing files are kept when
// they were issued by this CA for at least these hosts, else replaced.
func (ca *CA) Issue(dir, name string, hosts []string) (certFile, keyFile string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("issue %q: %w", name, ErrName)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	var ips []net.IP
	var dns []string
	for _, h := range hosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	if ca.covers(certFile, keyFile, ips, dns) {
		return certFile, keyFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", fmt.Errorf("issue %s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	_ = os.Remove(certFile)
	_ = os.Remove(keyFile)
	if err := writeKeyPair(certFile, keyFile, der, key); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// covers reports whether certFile/keyFile hold a pair issued by ca that is
// valid for a while yet and names every one of ips and dns.
func (ca *CA) covers(certFile, keyFile string, ips []net.IP, dns []string) bool {
	pair, err := loadPair(certFile, keyFile)
	if err != nil {
		return false
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return false
	}
	for _, ip := range ips {
		if cert.VerifyHostname(ip.String()) != nil {
			return false
		}
	}
	for _, d := range dns {
		if cert.VerifyHostname(d) != nil {
			return false
		}
	}
	return true
}

// writeKeyPair writes the certificate and key PEM files, both 0600, failing
// if either exists.
func writeKeyPair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})); err != nil {
		return err
	}
	if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return errors.Join(err, os.Remove(keyFile))
	}
	return nil
}

// writeNew creates path 0600 (failing if it exists) and writes b durably.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", path, err), os.Remove(path))
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails (Go ≥ 1.24)
	}
	return n.Add(n, big.NewInt(1))
}

// Files are the PEM files one process uses for internal TLS.
type Files struct {
	Cert string // its certificate, issued by the cluster CA
	Key  string // its private key
	CA   string // the cluster CA certificate, the only one it trusts
}

// load reads the pair and the CA pool.
func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return tls.Certificate{}, nil, errors.New("clustertls: internal TLS needs a certificate, its key and the cluster CA")
	}
	pair, err := loadPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("clustertls: %w", err)
	}
	b, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("clustertls: load CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return tls.Certificate{}, nil, fmt.Errorf("clustertls: %s: %w", f.CA, ErrNoCertificate)
	}
	return pair, pool, nil
}

// ServerConfig is the tls.Config of an internal listener: it serves f.Cert
// and requires a client certificate issued by f.CA (TLS 1.3).
func ServerConfig(f Files) (*tls.Config, error) {
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientConfig is the tls.Config of an internal client: it presents f.Cert
// and trusts only f.CA for the server's certificate (TLS 1.3).
func ClientConfig(f Files) (*tls.Config, error) {
	pair, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
	}, nil
}

// loadPair loads a PEM certificate and its private key; the key is refused
// when group or others may read it, as the cluster secret is.
func loadPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s: %w", certFile, err)
	}
	keyPEM, err := privfs.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load %s: %w", certFile, err)
	}
	return pair, nil
}
