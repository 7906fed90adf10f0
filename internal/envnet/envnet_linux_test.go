package envnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/internal/netlab"
	"github.com/shoal-dev/shoal/internal/poll"
)

func needNamespaces(t *testing.T) {
	t.Helper()
	if err := supported(); err != nil {
		t.Skipf("no network namespaces here: %v", err)
	}
}

// dialFrom connects to addr from inside the namespace of n (nil: the host).
func dialFrom(n *Net, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 500 * time.Millisecond}
	if n == nil {
		return d.Dial("tcp", addr)
	}
	var c net.Conn
	err := inNamespace(n.FD(), func() error {
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	return c, err
}

// echoServer accepts on ln and answers each connection with what.
func echoServer(t *testing.T, ln net.Listener, what string) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, what)
			c.Close()
		}
	}()
}

func reads(t *testing.T, c net.Conn, want string) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != want {
		t.Fatalf("read %q (%v), want %q", b, err, want)
	}
}

// outsideHost makes a test machine outside the host, on a lab of netlab
// (names and a subnet of 198.18.0.0/15 of its own, even while other test
// binaries make theirs), serving "outside" on port 7000. It returns the
// server's address and the host's address on the lab; netlab removes
// everything at the end of the test.
func outsideHost(t *testing.T) (server, gateway string) {
	t.Helper()
	lab := netlab.New(t)
	return lab.Machine().Serve(7000, "outside"), lab.Gateway()
}

func newTestPool(t *testing.T, egress bool) *Pool {
	t.Helper()
	if egress {
		if err := Setup(DefaultCIDR); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewPool(Config{Egress: egress, Ready: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func take(t *testing.T, p *Pool) *Net {
	t.Helper()
	n, err := p.Take()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func TestNamespacesAreApart(t *testing.T) {
	needNamespaces(t)
	outside, outsideGW := outsideHost(t)
	p := newTestPool(t, true)
	a, b := take(t, p), take(t, p)
	if !DefaultCIDR.Contains(a.Addr()) || !DefaultCIDR.Contains(b.Addr()) || a.Addr() == b.Addr() {
		t.Fatalf("addresses %v and %v", a.Addr(), b.Addr())
	}

	// Each environment's Runtime API listens at the same address, each in
	// its own namespace.
	listen := func(a string) (net.Listener, error) { return net.Listen("tcp", a) }
	for _, n := range []*Net{a, b} {
		ln, err := n.Listen(listen, RuntimeAPIAddr)
		if err != nil {
			t.Fatal(err)
		}
		echoServer(t, ln, "runtime api of "+n.Addr().String())
		// Something of b's also listens on every address of b.
	}
	bAny, err := b.Listen(listen, "0.0.0.0:7001")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, bAny, "b")
	// The host serves on its loopback and on every address.
	hostLo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, hostLo, "host loopback")
	hostAny, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, hostAny, "host")

	// a reaches its own Runtime API...
	c, err := dialFrom(a, RuntimeAPIAddr)
	if err != nil {
		t.Fatal(err)
	}
	reads(t, c, "runtime api of "+a.Addr().String())
	// ...and the outside world through the host's NAT.
	c, err = dialFrom(a, outside)
	if err != nil {
		t.Fatalf("egress to %s: %v", outside, err)
	}
	reads(t, c, "outside")

	// a reaches nothing of b's, nor anything of the host's.
	_, hostPort, _ := net.SplitHostPort(hostAny.Addr().String())
	_, loPort, _ := net.SplitHostPort(hostLo.Addr().String())
	gw := DefaultCIDR.Addr().Next().String()
	for _, target := range []string{
		net.JoinHostPort(b.Addr().String(), "7001"),
		net.JoinHostPort(b.Addr().String(), "9001"),
		net.JoinHostPort("127.0.0.1", loPort),
		net.JoinHostPort(gw, hostPort),
		net.JoinHostPort(outsideGW, hostPort),
	} {
		if c, err := dialFrom(a, target); err == nil {
			c.Close()
			t.Errorf("an environment reached %s", target)
		}
	}
	// The host's loopback is not an environment's.
	if c, err := dialFrom(nil, RuntimeAPIAddr); err == nil {
		b, _ := io.ReadAll(io.LimitReader(c, 64))
		c.Close()
		if strings.HasPrefix(string(b), "runtime api") {
			t.Errorf("the host's 127.0.0.1:9001 is an environment's Runtime API (%q)", b)
		}
	}
}

func TestNoEgress(t *testing.T) {
	needNamespaces(t)
	outside, _ := outsideHost(t)
	p := newTestPool(t, false)
	n := take(t, p)
	if n.Addr().IsValid() || n.HostIface() != "" {
		t.Fatalf("a namespace without egress has address %v and veth %q", n.Addr(), n.HostIface())
	}
	ln, err := n.Listen(func(a string) (net.Listener, error) { return net.Listen("tcp", a) }, RuntimeAPIAddr)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, ln, "mine")
	c, err := dialFrom(n, RuntimeAPIAddr)
	if err != nil {
		t.Fatal(err)
	}
	reads(t, c, "mine")
	if c, err := dialFrom(n, outside); err == nil {
		c.Close()
		t.Fatal("an environment without egress reached the outside")
	} else if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("dial without egress: %v, want network unreachable", err)
	}
}

func TestPoolCloseReleasesNamespaces(t *testing.T) {
	needNamespaces(t)
	if err := Setup(DefaultCIDR); err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(Config{Egress: true, Ready: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	listen := func(a string) (net.Listener, error) { return net.Listen("tcp", a) }
	n, err := p.Take()
	if err != nil {
		t.Fatal(err)
	}
	iface, addr := n.HostIface(), n.Addr()
	ln, err := n.Listen(listen, RuntimeAPIAddr)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	// Closed, it goes back to the pool, and the next Take has it, whole.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := p.Take()
	if err != nil {
		t.Fatal(err)
	}
	if again.HostIface() != iface || again.Addr() != addr {
		t.Fatalf("took %s (%v) after returning %s (%v)", again.HostIface(), again.Addr(), iface, addr)
	}
	ln, err = again.Listen(listen, RuntimeAPIAddr)
	if err != nil {
		t.Fatalf("the Runtime API's address in a reused namespace: %v", err)
	}
	ln.Close()
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	// Wait for the pool to have prepared its namespaces, then close it.
	var prepared []string
	poll.Until(t, 10*time.Second, func() error {
		prepared = prepared[:0]
		p.mu.Lock()
		for _, r := range p.ready {
			prepared = append(prepared, r.HostIface())
		}
		p.mu.Unlock()
		if len(prepared) < 3 {
			return fmt.Errorf("the pool prepared %d of 3 namespaces", len(prepared))
		}
		return nil
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range prepared {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("veth %s left after the pool closed", name)
		}
	}
	// A namespace returned to a closed pool is deleted.
	if _, err := netlink.LinkByName(iface); err == nil {
		t.Errorf("veth %s left after the pool closed", iface)
	}
}

// denyToAlone keeps TestDenyTo of other test binaries from running at the
// same time as this one: DenyTo's rules are the host's, each call replaces
// them, and so does the cleanup of each test.
func denyToAlone(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll("/run/shoal", 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile("/run/shoal/envnet-denyto-test.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // after DenyTo(nil), which was registered later
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
}

// DenyTo cuts environments with egress off the addresses it is given, and
// only those; Setup, which every agent calls, leaves its rules alone.
func TestDenyTo(t *testing.T) {
	needNamespaces(t)
	denyToAlone(t)
	outside, _ := outsideHost(t)
	p := newTestPool(t, true)
	n := take(t, p)
	reach := func() error {
		c, err := dialFrom(n, outside)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := reach(); err != nil {
		t.Fatalf("egress to %s before DenyTo: %v", outside, err)
	}
	t.Cleanup(func() { _ = DenyTo(nil) })
	// The outside host's address and subnet (a /24 of 198.18.0.0/15), and
	// another address and range, that do not hold it.
	addr := netip.MustParseAddrPort(outside).Addr()
	subnet := netip.PrefixFrom(addr, 24).Masked()
	a4 := addr.As4()
	a4[1] ^= 1 // 198.19 for 198.18: the same range, another /24
	other := netip.AddrFrom4(a4)
	if err := DenyTo([]netip.Prefix{netip.PrefixFrom(other, 32), netip.PrefixFrom(other.Next(), 24).Masked()}); err != nil {
		t.Fatal(err)
	}
	if err := reach(); err != nil {
		t.Fatalf("egress to %s, which DenyTo did not name: %v", outside, err)
	}
	for _, deny := range []netip.Prefix{netip.PrefixFrom(addr, 32), subnet} {
		if err := DenyTo([]netip.Prefix{deny}); err != nil {
			t.Fatal(err)
		}
		if err := Setup(DefaultCIDR); err != nil { // an agent starting meanwhile
			t.Fatal(err)
		}
		if err := reach(); err == nil {
			t.Errorf("an environment reached %s after DenyTo(%s)", outside, deny)
		}
	}
	if err := DenyTo(nil); err != nil {
		t.Fatal(err)
	}
	if err := reach(); err != nil {
		t.Fatalf("egress to %s once DenyTo(nil) removed the rules: %v", outside, err)
	}
}

// TestClusterDenyAddsAHost: a ClusterDeny made with the machines known at
// start keeps them denied, and denies a host given to Add later (a host
// that joined the cluster), once.
func TestClusterDenyAddsAHost(t *testing.T) {
	needNamespaces(t)
	denyToAlone(t)
	outside, _ := outsideHost(t)
	p := newTestPool(t, true)
	n := take(t, p)
	reach := func() error {
		c, err := dialFrom(n, outside)
		if err == nil {
			c.Close()
		}
		return err
	}
	t.Cleanup(func() { _ = DenyTo(nil) })
	addr := netip.MustParseAddrPort(outside).Addr()
	a4 := addr.As4()
	a4[1] ^= 1 // another machine, not the outside host
	known := netip.AddrFrom4(a4).String()
	d, err := NewClusterDeny(nil, []string{"nats-route://" + known + ":6222"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := reach(); err != nil {
		t.Fatalf("egress to %s, which is not a machine of the cluster yet: %v", outside, err)
	}
	for range 2 { // the host's every heartbeat adds it again
		if err := d.Add(addr.String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := reach(); err == nil {
		t.Errorf("an environment reached %s after the host joined", outside)
	}
	if want := []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4(a4), 32), netip.PrefixFrom(addr, 32)}; !slices.Equal(d.deny, want) {
		t.Errorf("denied %v, want %v", d.deny, want)
	}
}

// Closing a listener of a namespace frees its address at once, even while
// its socket has another holder, as it has when this process forks a child
// at that moment (the child holds a copy of every descriptor until its
// exec): the environment that gets the namespace next listens there.
func TestClosedListenerFreesItsAddress(t *testing.T) {
	needNamespaces(t)
	n := take(t, newTestPool(t, false))
	var held *os.File
	ln, err := n.Listen(func(a string) (net.Listener, error) {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return nil, err
		}
		// The copy a child being forked now would hold.
		if held, err = ln.(*net.TCPListener).File(); err != nil {
			ln.Close()
			return nil, err
		}
		return ln, nil
	}, RuntimeAPIAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := n.Listen(func(a string) (net.Listener, error) { return net.Listen("tcp", a) }, RuntimeAPIAddr)
	if err != nil {
		t.Fatalf("the next environment's Runtime API: %v", err)
	}
	next.Close()
}
