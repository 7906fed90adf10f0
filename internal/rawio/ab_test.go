//go:build linux

package rawio

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The A/B of rawio against plain net.Conn reads and writes
// (docs/decisions/rawio.md): request and response over a socket to another
// process, as the Runtime API and the wire see them. The peer is this test
// binary started again (TestMain) as an echo server that reads and writes
// through net.Conn; only this side changes. Run:
//
//	go test -run '^$' -bench RawIOAB -benchtime 5s -count 3 ./internal/rawio/
//
// ns/op is one round trip; cpu-µs/op is this process's CPU per round trip.
// (Under -race rawio goes through package syscall: measure without it.)

const abPeerEnv = "SHOAL_RAWIO_AB_PEER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(abPeerEnv); addr != "" {
		abPeer(addr)
		return
	}
	os.Exit(m.Run())
}

// abPeer echoes every message (a 4-byte length, then the body) on every
// connection to the socket at addr ("tcp:host:port" or "unix:path").
func abPeer(addr string) {
	network, a, _ := cut(addr)
	ln, err := net.Listen(network, a)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(0)
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			buf := make([]byte, 64<<10)
			for {
				if _, err := io.ReadFull(br, buf[:4]); err != nil {
					return
				}
				n := int(buf[0])<<8 | int(buf[1])
				if _, err := io.ReadFull(br, buf[4:4+n]); err != nil {
					return
				}
				if _, err := c.Write(buf[:4+n]); err != nil {
					return
				}
			}
		}()
	}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func BenchmarkRawIOAB(b *testing.B) {
	for _, network := range []string{"unix", "tcp"} {
		for _, c := range []int{1, 8} {
			for _, variant := range []string{"rawio", "netconn"} {
				b.Run(fmt.Sprintf("%s/%s/c=%d", variant, network, c), func(b *testing.B) {
					addr := startPeer(b, network)
					conns := make([]io.ReadWriter, c)
					for i := range conns {
						nc, err := net.Dial(network, addr)
						if err != nil {
							b.Fatal(err)
						}
						b.Cleanup(func() { nc.Close() })
						conns[i] = nc
						if variant == "rawio" {
							conns[i] = New(nc)
						}
					}
					roundTrips(b, conns, 256)
				})
			}
		}
	}
}

// startPeer starts the echo peer and returns its address.
func startPeer(b *testing.B, network string) string {
	b.Helper()
	addr := "tcp:127.0.0.1:0"
	if network == "unix" {
		addr = "unix:" + filepath.Join(b.TempDir(), "peer.sock")
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), abPeerEnv+"="+addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("peer: %v", err)
	}
	return line[:len(line)-1]
}

// roundTrips sends b.N messages of size bytes spread over the connections,
// one goroutine each, and waits for each echo before the next.
func roundTrips(b *testing.B, conns []io.ReadWriter, size int) {
	msg := make([]byte, 4+size)
	msg[0], msg[1] = byte(size>>8), byte(size)
	for i := 4; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	trip := func(rw io.ReadWriter, buf []byte) error {
		if _, err := rw.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(rw, buf)
		return err
	}
	for _, rw := range conns { // warm
		if err := trip(rw, make([]byte, len(msg))); err != nil {
			b.Fatal(err)
		}
	}
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	for i, rw := range conns {
		n := b.N / len(conns)
		if i < b.N%len(conns) {
			n++
		}
		wg.Go(func() {
			buf := make([]byte, len(msg))
			for range n {
				if err := trip(rw, buf); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
