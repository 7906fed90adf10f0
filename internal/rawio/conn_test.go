package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// Conn carries bytes both ways, keeps nc's deadlines and Close, and on
// Linux reads and writes through the raw calls.
func TestConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
		_, _ = io.Copy(c, c) // echo until the client closes
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := Conn(nc)
	if _, raw := c.(*conn); raw != (runtime.GOOS == "linux") {
		t.Fatalf("Conn on %s returned %T", runtime.GOOS, c)
	}
	msg := bytes.Repeat([]byte("wire"), 64<<10) // larger than a socket buffer: writes loop
	wrote := make(chan error, 1)
	go func() { _, err := c.Write(msg); wrote <- err }()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("the echo differs from what was written")
	}
	if c.RemoteAddr().String() != ln.Addr().String() {
		t.Errorf("remote address %v, want %v", c.RemoteAddr(), ln.Addr())
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(got); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v, want a deadline error", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

// A connection that is no socket is returned as it is.
func TestConnNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := Conn(a); c != a {
		t.Errorf("Conn of a pipe returned %T", c)
	}
}
