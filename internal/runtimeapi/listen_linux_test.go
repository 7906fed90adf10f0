package runtimeapi

import (
	"net"
	"syscall"
	"testing"
)

// sockopt reads an integer socket option of c.
func sockopt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

func TestListenDefersAccept(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if v := sockopt(t, ln.(*net.TCPListener), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT); v <= 0 {
		t.Fatalf("TCP_DEFER_ACCEPT = %d on the Runtime API listener, want it set", v)
	}
}

// TestAcceptedNoKeepAlive checks that a connection the listener accepts has
// no TCP keep-alive and has TCP_NODELAY.
func TestAcceptedNoKeepAlive(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil { // past TCP_DEFER_ACCEPT
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := nc.(*net.TCPConn)
	if ka := sockopt(t, tc, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); ka != 0 {
		t.Errorf("SO_KEEPALIVE = %d on an accepted runtime connection, want 0", ka)
	}
	if sockopt(t, tc, syscall.IPPROTO_TCP, syscall.TCP_NODELAY) == 0 {
		t.Error("TCP_NODELAY is off on an accepted runtime connection")
	}
}
