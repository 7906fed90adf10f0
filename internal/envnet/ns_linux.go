package envnet

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/internal/randid"
)

// supported checks once that this process may make network namespaces.
var supported = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return ErrUnsupported
	}
	fd, err := newNamespace()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	unix.Close(fd)
	return nil
})

// inNamespace runs f on a locked OS thread that has joined the namespace fd,
// then returns the thread to its own namespace. A thread that cannot go back
// is left locked, so that it dies with its goroutine.
func inNamespace(fd int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open this thread's namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("join namespace: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// newNamespace makes a network namespace with its loopback up and returns
// a file descriptor that keeps it.
func newNamespace() (int, error) {
	type result struct {
		fd  int
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, fmt.Errorf("open this thread's namespace: %w", err)}
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			res <- result{-1, fmt.Errorf("unshare: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			if err = loopbackUp(); err != nil {
				unix.Close(fd)
			}
		}
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			res <- result{-1, err}
			return
		}
		res <- result{fd, nil}
	}()
	r := <-res
	return r.fd, r.err
}

// loopbackUp brings up lo in the calling thread's namespace.
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

// prepare makes a namespace and, with egress, its veth pair and routes.
func prepare(cfg *Config) (*Net, error) {
	if err := supported(); err != nil {
		return nil, err
	}
	fd, err := newNamespace()
	if err != nil {
		return nil, fmt.Errorf("envnet: %w", err)
	}
	n := &Net{fd: fd}
	if !cfg.Egress {
		return n, nil
	}
	if err := n.link(cfg); err != nil {
		_ = n.teardown()
		return nil, fmt.Errorf("envnet: %w", err)
	}
	return n, nil
}

// link connects the namespace to the host with a veth pair: the host end
// holds the gateway address, the environment's end (eth0) a free address of
// the range with a default route through the gateway.
func (n *Net) link(cfg *Config) error {
	n.host = IfacePrefix + randid.Hex(6)
	la := netlink.NewLinkAttrs()
	la.Name = n.host
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "eth0", PeerNamespace: netlink.NsFd(n.fd)}
	if err := netlink.LinkAdd(veth); err != nil {
		n.host = ""
		return fmt.Errorf("veth: %w", err)
	}
	host, err := netlink.LinkByName(n.host)
	if err != nil {
		return fmt.Errorf("veth %s: %w", n.host, err)
	}
	gw := cfg.gateway()
	if err := netlink.AddrAdd(host, &netlink.Addr{IPNet: hostNet(gw)}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("gateway address on %s: %w", n.host, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("%s up: %w", n.host, err)
	}
	// The host's route to the environment claims its address: adding a route
	// that exists fails, so two environments (of this process or another)
	// never get the same one.
	for attempt := 0; ; attempt++ {
		addr := randomAddr(cfg.CIDR)
		if addr == gw {
			continue
		}
		err := netlink.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Dst: hostNet(addr), Scope: netlink.SCOPE_LINK})
		if err == nil {
			n.addr = addr
			break
		}
		if !errors.Is(err, unix.EEXIST) || attempt > 64 {
			return fmt.Errorf("route to %s: %w", addr, err)
		}
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(n.fd))
	if err != nil {
		return fmt.Errorf("netlink in namespace: %w", err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("eth0: %w", err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: hostNet(n.addr)}); err != nil {
		return fmt.Errorf("eth0 address: %w", err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("eth0 up: %w", err)
	}
	idx := eth0.Attrs().Index
	if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: hostNet(gw), Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("route to the gateway: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: idx, Gw: net.IP(gw.AsSlice())}); err != nil {
		return fmt.Errorf("default route: %w", err)
	}
	// A link set up carries packets only once the kernel has seen its
	// carrier and given it its queue (its operational state then turns
	// up). The kernel does that apart, at most once a second when links
	// change often, and drops what is sent before: the environment's first
	// connection would lose its first packet and wait a second for the
	// next. The namespace is handed out once both ends are up.
	if err := waitUp(func() (netlink.Link, error) { return netlink.LinkByName(n.host) }); err != nil {
		return fmt.Errorf("veth %s: %w", n.host, err)
	}
	if err := waitUp(func() (netlink.Link, error) { return h.LinkByName("eth0") }); err != nil {
		return fmt.Errorf("eth0: %w", err)
	}
	return nil
}

// upTimeout bounds how long a link set up may take to turn operationally up.
const upTimeout = 5 * time.Second

// waitUp polls the link that get returns until its operational state is up.
func waitUp(get func() (netlink.Link, error)) error {
	deadline := time.Now().Add(upTimeout)
	delay := 100 * time.Microsecond
	for {
		l, err := get()
		if err != nil {
			return err
		}
		state := l.Attrs().OperState
		if state == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("operational state %s %v after it was set up", state, upTimeout)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// teardown deletes the veth pair (its routes go with it) and releases the
// namespace.
func (n *Net) teardown() error {
	var errs []error
	if n.host != "" {
		if l, err := netlink.LinkByName(n.host); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("envnet: delete %s: %w", n.host, err))
			}
		}
	}
	if n.fd >= 0 {
		errs = append(errs, unix.Close(n.fd))
		n.fd = -1
	}
	return errors.Join(errs...)
}

// shutdown shuts the socket fd down for reading and writing: a listening
// socket stops listening, whoever else holds it.
func shutdown(fd uintptr) error { return unix.Shutdown(int(fd), unix.SHUT_RDWR) }

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(32, 32)}
}

// randomAddr picks an address of p, never its first or last.
func randomAddr(p netip.Prefix) netip.Addr {
	base := binary.BigEndian.Uint32(p.Addr().AsSlice())
	size := uint32(1) << (32 - p.Bits())
	var b [4]byte
	_, _ = rand.Read(b[:])
	off := 2 + binary.BigEndian.Uint32(b[:])%(size-3)
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], base+off)
	return netip.AddrFrom4(out)
}
