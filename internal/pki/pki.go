// Package pki makes a shoal cluster's TLS material from its secret (the
// cluster secret every machine of the cluster holds): a certificate
// authority that every machine computes alike, with no file to copy but the
// secret, and certificates it signs for each node, host and agent.
//
// Everything that leaves a machine — NATS routes between nodes, NATS clients
// on other machines, the invoke wire to agents on other hosts — runs TLS 1.3
// with these certificates, and both ends verify the other's chain to the
// cluster's authority. Who may do what is decided above TLS (nkeys on the
// bus, the wire's keyed handshake); TLS keeps the traffic private and makes
// a machine without the secret unable to pose as one of the cluster.
package pki

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Authority is a cluster's certificate authority.
type Authority struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
	pool *x509.CertPool
}

func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("shoal pki\x00" + purpose))
	return m.Sum(nil)
}

// New computes the authority of the cluster whose secret is given: its key
// and its certificate are the same on every machine.
func New(secret []byte) (*Authority, error) {
	if len(secret) < 16 {
		return nil, errors.New("pki: the secret is too short")
	}
	key := ed25519.NewKeyFromSeed(derive(secret, "ca"))
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "shoal cluster CA", Organization: []string{"shoal"}},
		NotBefore:             time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2124, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: authority: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: authority: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &Authority{cert: cert, key: key, pool: pool}, nil
}

// Pool holds the authority's certificate, for verifying peers.
func (a *Authority) Pool() *x509.CertPool { return a.pool }

// Issue makes a certificate for name, valid for the given hosts (IP
// addresses or DNS names), for servers and clients alike.
func (a *Authority) Issue(name string, hosts []string) (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"shoal"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && h != name {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: certificate of %s: %w", name, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, nil
}

// ServerConfig is the TLS configuration of a server (a NATS listener, a
// route, an agent's wire) whose clients must show a certificate of the
// cluster too.
func (a *Authority) ServerConfig(cert tls.Certificate) *tls.Config {
	// Routes dial out with the same configuration, hence RootCAs.
	return ServerConfigFrom(cert, a.pool)
}

// ClientConfig is the TLS configuration of a client of the cluster: it
// shows cert and trusts only the cluster's authority. The server's name is
// checked against its certificate's addresses by the caller's ServerName
// (set from the address dialled).
func (a *Authority) ClientConfig(cert tls.Certificate) *tls.Config {
	return ClientConfigFrom(cert, a.pool)
}

// CertPEM is the authority's certificate in PEM.
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.cert.Raw})
}

// WriteFiles writes cert (its chain and its key) and the authority's
// certificate into dir as tls.crt, tls.key and ca.crt, mode 0600, for a
// process that holds no secret of its own (an agent).
func (a *Authority) WriteFiles(dir string, cert tls.Certificate) error {
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	files := map[string][]byte{
		"tls.crt": chain,
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"ca.crt":  a.CertPEM(),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	return nil
}

// Files are the TLS files of a process that holds no secret (WriteFiles).
type Files struct{ Cert, Key, CA string }

// InDir names the files WriteFiles writes into dir.
func InDir(dir string) Files {
	return Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key"), CA: filepath.Join(dir, "ca.crt")}
}

// Load reads the files: the process's certificate and the pool of the
// authority it trusts.
func (f Files) Load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("pki: %w", err)
	}
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("pki: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return tls.Certificate{}, nil, fmt.Errorf("pki: %s holds no certificate", f.CA)
	}
	return cert, pool, nil
}

// ServerConfigFrom and ClientConfigFrom are ServerConfig and ClientConfig
// for a process that has only its files.
func ServerConfigFrom(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, RootCAs: pool}
}

// ClientConfigFrom: see ServerConfigFrom.
func ClientConfigFrom(cert tls.Certificate, pool *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool}
}
