package runtimeapi

import (
	"net"
	"syscall"
	"testing"
)

func TestListenDefersAccept(t *testing.T) {
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if v <= 0 {
		t.Fatalf("TCP_DEFER_ACCEPT = %d on the Runtime API listener, want it set", v)
	}
}
