//go:build unix

package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/poll"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestReadWrite sends more than a socket buffer holds each way, so writes
// and reads wait in the netpoller, and checks every byte arrives in order.
func TestReadWrite(t *testing.T) {
	client, server := tcpPair(t)
	rw := New(server)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	for _, dir := range []struct {
		name string
		w    io.Writer
		r    io.Reader
	}{{"raw write", rw, client}, {"raw read", client, rw}} {
		t.Run(dir.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() {
				n, err := dir.w.Write(data)
				if err == nil && n != len(data) {
					err = io.ErrShortWrite
				}
				errc <- err
			}()
			got := make([]byte, len(data))
			if _, err := io.ReadFull(dir.r, got); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("bytes differ")
			}
		})
	}
}

// TestDeadlineCloseAndEOF: a read deadline ends a raw read as it ends
// net.Conn's; once what a closed peer sent is read, PeerClosed sees the
// close without reading and a read returns EOF.
func TestDeadlineCloseAndEOF(t *testing.T) {
	client, server := tcpPair(t)
	rw := New(server)
	if err := server.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want %v", err, os.ErrDeadlineExceeded)
	}
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if PeerClosed(rc) {
		t.Fatal("PeerClosed while the peer is connected")
	}
	if _, err := client.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	got := make([]byte, 4)
	if _, err := io.ReadFull(rw, got); err != nil || string(got) != "last" {
		t.Fatalf("read %q, %v; want \"last\"", got, err)
	}
	poll.Until(t, 5*time.Second, func() error {
		if !PeerClosed(rc) {
			return errors.New("PeerClosed is false after the peer closed")
		}
		return nil
	})
	if n, err := rw.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF: %d, %v", n, err)
	}
}

// TestReadPipe reads a non-blocking pipe as the environments' log readers
// do: EAGAIN while it is empty, the bytes once written, 0 at EOF.
func TestReadPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	read := func() (string, syscall.Errno) {
		buf := make([]byte, 64)
		var n int
		var e syscall.Errno
		if err := raw.Control(func(fd uintptr) { n, e = Read(fd, buf) }); err != nil {
			t.Fatal(err)
		}
		return string(buf[:n]), e
	}
	if s, e := read(); e != syscall.EAGAIN || s != "" {
		t.Fatalf("empty pipe: %q, %v; want EAGAIN", s, e)
	}
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	if s, e := read(); e != 0 || s != "line\n" {
		t.Fatalf("read %q, %v", s, e)
	}
	w.Close()
	if s, e := read(); e != 0 || s != "" {
		t.Fatalf("closed pipe: %q, %v; want EOF", s, e)
	}
}
