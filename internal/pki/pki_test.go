package pki

import (
	"bytes"
	"crypto/tls"
	"io"
	"testing"
)

// TestSameAuthorityEverywhere: two machines with the secret compute the
// same authority; a certificate one issues is trusted by the other.
func TestSameAuthorityEverywhere(t *testing.T) {
	secret := []byte("the cluster's secret, 32 bytes!!")
	a, err := New(secret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.cert.Raw, b.cert.Raw) {
		t.Fatal("two computations of the authority differ")
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func handshake(t *testing.T, server, client *tls.Config, addr string) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hi"))
	}()
	cfg := client.Clone()
	cfg.ServerName = addr
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = io.ReadAll(c)
	return err
}

// TestMutualTLS: a server and a client of the same cluster talk; a client
// of another cluster, or one without a certificate, does not; a server's
// certificate must name the address dialled.
func TestMutualTLS(t *testing.T) {
	a, _ := New([]byte("the cluster's secret, 32 bytes!!"))
	other, _ := New([]byte("another cluster's secret, 32 b!!"))
	srvCert, err := a.Issue("node-1", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cliCert, _ := a.Issue("agent.i-1", nil)
	strangerCert, _ := other.Issue("stranger", nil)
	server := a.ServerConfig(srvCert)

	if err := handshake(t, server, a.ClientConfig(cliCert), "127.0.0.1"); err != nil {
		t.Fatalf("same cluster: %v", err)
	}
	if err := handshake(t, server, other.ClientConfig(strangerCert), "127.0.0.1"); err == nil {
		t.Fatal("a client of another cluster got through")
	}
	noCert := a.ClientConfig(cliCert)
	noCert.Certificates = nil
	if err := handshake(t, server, noCert, "127.0.0.1"); err == nil {
		t.Fatal("a client without a certificate got through")
	}
	if err := handshake(t, server, a.ClientConfig(cliCert), "198.18.0.9"); err == nil {
		t.Fatal("a server certificate was accepted for an address it does not name")
	}
}
