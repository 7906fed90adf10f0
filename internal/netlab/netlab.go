// Package netlab builds machines for tests that need more than one: network
// namespaces that a test creates, joined by a bridge of their own, with
// addresses from 198.18.0.0/15 (the range set aside for network benchmarks),
// so that traffic stays between them. Each lab has a subnet of that range to
// itself, and names of its own, even among labs of other processes. Everything
// a Lab makes is removed when the test ends.
//
// It drives iproute2 (`ip`), so a machine is an ordinary named namespace
// (/run/netns/NAME) that `ip netns exec NAME …` runs commands in. It needs
// root; tests skip without it.
package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Range holds the addresses of every lab, of this process and of others.
var Range = netip.MustParsePrefix("198.18.0.0/15")

// Lab is one test's network: a bridge on the host at 198.18.<subnet>.1/24
// and the machines joined to it.
type Lab struct {
	t      testing.TB
	id     string // short, unique: names of the bridge, veths and namespaces
	subnet int    // the third octet of 198.18.<subnet>.0/24, set by New

	mu       sync.Mutex
	machines []*Machine
}

// Machine is one namespace of a Lab.
type Machine struct {
	Name string // the namespace's name (ip netns)
	IP   string // its address on the lab's bridge
	lab  *Lab
}

// Available reports why labs cannot be built here ("" when they can).
func Available() string {
	if runtime.GOOS != "linux" {
		return "network namespaces need Linux"
	}
	if os.Geteuid() != 0 {
		return "network namespaces need root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "iproute2 (ip) is not installed"
	}
	return ""
}

// New builds an empty lab, or skips the test when labs cannot be built.
func New(t testing.TB) *Lab {
	t.Helper()
	return newLab(t, randomSubnet)
}

// newLab builds a lab whose subnet is the first that pick offers and no
// other lab holds.
func newLab(t testing.TB, pick func() int) *Lab {
	t.Helper()
	if why := Available(); why != "" {
		t.Skip(why)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &Lab{t: t, id: hex.EncodeToString(b[:])}
	t.Cleanup(l.remove)
	l.ip("link", "add", l.bridge(), "type", "bridge")
	l.ip("link", "set", l.bridge(), "up")
	l.claimSubnet(pick)
	return l
}

// randomSubnet picks the third octet of a subnet 198.18.<1 to 250>.0/24.
func randomSubnet() int {
	var b [1]byte
	_, _ = rand.Read(b[:])
	return 1 + int(b[0])%250
}

// claimSubnet gives the bridge the gateway address of a subnet that no other
// lab holds, of this process or another. The address goes on without its
// prefix route, and the route is added apart: adding a route that exists
// fails, so of two labs that pick the same subnet only one has it, and the
// other picks again.
func (l *Lab) claimSubnet(pick func() int) {
	l.t.Helper()
	for attempt := 0; ; attempt++ {
		l.subnet = pick()
		l.ip("addr", "add", l.Gateway()+"/24", "dev", l.bridge(), "noprefixroute")
		route := []string{"route", "add", fmt.Sprintf("198.18.%d.0/24", l.subnet), "dev", l.bridge(), "src", l.Gateway()}
		out, err := exec.Command("ip", route...).CombinedOutput()
		if err == nil {
			return
		}
		if !strings.Contains(string(out), "File exists") || attempt == 64 {
			l.t.Fatalf("ip %s: %v: %s", strings.Join(route, " "), err, out)
		}
		l.ip("addr", "del", l.Gateway()+"/24", "dev", l.bridge())
	}
}

func (l *Lab) bridge() string { return "shlb" + l.id }

// Gateway is the host's address on the lab's bridge.
func (l *Lab) Gateway() string { return fmt.Sprintf("198.18.%d.1", l.subnet) }

// ip runs one iproute2 command, failing the test when it fails.
func (l *Lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Machine adds a machine: a namespace with its loopback up, one veth end
// on the bridge and the next free address of the lab's subnet.
func (l *Lab) Machine() *Machine {
	l.t.Helper()
	l.mu.Lock()
	n := len(l.machines) + 2
	m := &Machine{Name: fmt.Sprintf("shlab%s-%d", l.id, n), IP: fmt.Sprintf("198.18.%d.%d", l.subnet, n), lab: l}
	l.machines = append(l.machines, m)
	l.mu.Unlock()
	host, peer := fmt.Sprintf("shl%s%dh", l.id, n), fmt.Sprintf("shl%s%dm", l.id, n)
	l.ip("netns", "add", m.Name)
	l.ip("-n", m.Name, "link", "set", "lo", "up")
	l.ip("link", "add", host, "type", "veth", "peer", "name", peer)
	l.ip("link", "set", peer, "netns", m.Name)
	l.ip("link", "set", host, "master", l.bridge(), "up")
	l.ip("-n", m.Name, "link", "set", peer, "name", "eth0")
	l.ip("-n", m.Name, "addr", "add", m.IP+"/24", "dev", "eth0")
	l.ip("-n", m.Name, "link", "set", "eth0", "up")
	l.ip("-n", m.Name, "route", "add", "default", "via", l.Gateway())
	return m
}

// remove deletes the machines (their veths go with them) and the bridge.
func (l *Lab) remove() {
	l.mu.Lock()
	machines := l.machines
	l.mu.Unlock()
	for _, m := range machines {
		_ = exec.Command("ip", "netns", "del", m.Name).Run()
	}
	_ = exec.Command("ip", "link", "del", l.bridge()).Run()
}

// Command returns cmd to run inside the machine (through ip netns exec).
func (m *Machine) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", m.Name, name}, args...)...)
}

// Listen opens a listener inside the machine's namespace.
func (m *Machine) Listen(network, addr string) (net.Listener, error) {
	ns, err := unix.Open("/run/netns/"+m.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(ns)
	type result struct {
		ln  net.Listener
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{nil, err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{nil, err}
			return
		}
		ln, err := net.Listen(network, addr)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{ln, err}
	}()
	r := <-res
	return r.ln, r.err
}

// Serve answers every TCP connection to port on the machine with reply,
// until the test ends; it returns the server's address.
func (m *Machine) Serve(port int, reply string) string {
	m.lab.t.Helper()
	ln, err := m.Listen("tcp", fmt.Sprintf("%s:%d", m.IP, port))
	if err != nil {
		m.lab.t.Fatal(err)
	}
	m.lab.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(reply))
			c.Close()
		}
	}()
	return ln.Addr().String()
}
