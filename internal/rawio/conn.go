package rawio

import (
	"io"
	"net"
)

// Conn returns nc with its reads and writes made raw (see New), for a layer
// that needs a net.Conn beneath it, such as TLS: the wire between machines
// is TLS over TCP, and its records are read and written with the same raw
// calls as a Unix socket's frames. Deadlines, Close and the addresses are
// nc's. Where New returns nc itself, so does Conn.
//
// Concurrency: as New's, one goroutine reads and one writes at a time
// (crypto/tls serialises its reads and its writes).
func Conn(nc net.Conn) net.Conn {
	rw := New(nc)
	if c, ok := rw.(net.Conn); ok && c == nc {
		return nc
	}
	return &conn{Conn: nc, rw: rw}
}

type conn struct {
	net.Conn
	rw io.ReadWriter
}

func (c *conn) Read(p []byte) (int, error)  { return c.rw.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.rw.Write(p) }
