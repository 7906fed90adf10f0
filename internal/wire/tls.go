package wire

import (
	"crypto/tls"
	"net"

	"github.com/shoal-dev/shoal/internal/rawio"
)

// TLSListener serves the wire over TLS with cfg on the connections ln
// accepts, for agents that other machines reach. As on a Unix socket, the
// records are read and written with raw system calls (rawio.Conn).
func TLSListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return &tlsListener{Listener: ln, cfg: cfg}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(rawio.Conn(c), l.cfg), nil
}
