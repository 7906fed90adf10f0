// Package envnet gives each execution environment a network of its own: a
// network namespace in which nothing of the host is reachable — not the bus,
// not the invoke wire, not an agent, not another environment's Runtime API —
// with the environment's Runtime API served from a socket made inside it, at
// 127.0.0.1:9001 as on Lambda.
//
// With egress (the default), the namespace also gets one end of a veth pair
// and a private address; the host routes and masquerades its traffic to the
// outside world (nftables table "ip shoal", set up once per host by Setup).
// The host drops everything an environment sends to the host itself and to
// any other environment, so environments of different functions and capacity
// providers never share a network. Without egress the namespace has only its
// loopback.
//
// Preparing a namespace costs milliseconds (mostly the veth and its routes),
// so a Pool keeps a few ready and refills in the background: a cold start only
// takes one and opens the Runtime API's socket in it.
//
// The package owns the namespaces, veth pairs, routes and the nftables table
// it creates; it knows nothing about processes (internal/sandbox joins a
// namespace by its file descriptor) or the Runtime API protocol.
package envnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// RuntimeAPIAddr is where an environment finds its Runtime API, inside its
// own namespace.
const RuntimeAPIAddr = "127.0.0.1:9001"

// DefaultCIDR is the address range of the environments' ends of their veth
// pairs when Config.CIDR is unset.
var DefaultCIDR = netip.MustParsePrefix("10.200.0.0/16")

// IfacePrefix begins the name of every host end of an environment's veth
// pair; the host's rules match on it.
const IfacePrefix = "shv"

// ErrUnsupported is returned where network namespaces cannot be made (not
// Linux, or not root).
var ErrUnsupported = errors.New("envnet: network namespaces need Linux and root")

// Config configures a Pool.
type Config struct {
	// Egress gives each namespace outbound access through the host's NAT.
	// Without it a namespace has only its loopback.
	Egress bool
	// CIDR is the range the environments' addresses come from (egress only);
	// its first address is their gateway, on the host's end of every veth.
	CIDR netip.Prefix
	// Ready is how many prepared namespaces the pool keeps (default 4).
	Ready int
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if !c.CIDR.IsValid() {
		c.CIDR = DefaultCIDR
	}
	if c.Ready == 0 {
		c.Ready = 4
	}
	switch {
	case !c.CIDR.Addr().Is4():
		return fmt.Errorf("envnet: environment range %s: must be IPv4", c.CIDR)
	case c.CIDR.Bits() > 24:
		return fmt.Errorf("envnet: environment range %s: must hold at least 256 addresses", c.CIDR)
	case c.Ready < 0:
		return fmt.Errorf("envnet: ready %d is negative", c.Ready)
	}
	c.CIDR = c.CIDR.Masked()
	return nil
}

// gateway is the environments' default gateway: the first address of the
// range, held by the host's end of every veth pair.
func (c *Config) gateway() netip.Addr { return c.CIDR.Addr().Next() }

// Net is one environment's network namespace. It is used by one
// environment and closed with it.
type Net struct {
	fd   int        // the namespace (an open /proc/…/ns/net)
	host string     // the host end of the veth pair; "" without egress
	addr netip.Addr // the environment's address; invalid without egress
	pool *Pool      // where Close returns it; nil: Close deletes it

	closeOnce sync.Once
	closeErr  error
}

// FD is the namespace's file descriptor, for setns(2) by whoever starts the
// environment's processes. It stays valid until Close.
func (n *Net) FD() int { return n.fd }

// Addr is the environment's address on its veth, invalid without egress.
func (n *Net) Addr() netip.Addr { return n.addr }

// HostIface names the host end of the environment's veth pair ("" without
// egress).
func (n *Net) HostIface() string { return n.host }

// Listen opens a TCP listener inside the namespace with listen, which is
// called on a thread that has joined it (a socket stays in the namespace it
// was made in). Closing the listener frees its address at once (see
// nsListener), so that the namespace's next environment can listen there.
func (n *Net) Listen(listen func(addr string) (net.Listener, error), addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNamespace(n.fd, func() error {
		var err error
		ln, err = listen(addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("envnet: listen in namespace: %w", err)
	}
	return nsListener{ln}, nil
}

// nsListener is a listener made in an environment's namespace. Its Close
// shuts the socket down before closing its descriptor. A plain close does
// not end a socket that someone else still holds, and a child that this
// process is forking holds a copy of every descriptor until its exec closes
// them; under load a child still being created (waiting for a cgroup lock,
// say) holds them for tens of milliseconds. The socket would go on
// listening after Close returned, and the environment that gets the
// recycled namespace next would fail to bind 127.0.0.1:9001 ("address
// already in use"). A socket that is shut down listens no more, whoever
// holds it.
type nsListener struct{ net.Listener }

func (l nsListener) Close() error {
	if sc, ok := l.Listener.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = shutdown(fd) })
		}
	}
	return l.Listener.Close()
}

// Close gives the namespace back once the environment's processes are gone
// and its sockets closed. A pool that has room keeps it for the next
// environment: nothing of the last one is left in it (an unprivileged process
// cannot change a namespace's addresses, routes or rules, and its sockets died
// with it), and reusing it saves making and deleting a veth pair, the most
// expensive part. Otherwise Close deletes the veth pair and the host's route
// to the environment, and lets the namespace go (the kernel frees it once no
// process is left in it).
func (n *Net) Close() error {
	n.closeOnce.Do(func() {
		if n.pool != nil && n.pool.recycle(n) {
			return
		}
		n.closeErr = n.teardown()
	})
	return n.closeErr
}

// Pool prepares namespaces ahead of demand.
//
// Concurrency: cfg and logger are immutable; mu guards ready, making and
// closed.
type Pool struct {
	cfg    Config
	logger *slog.Logger

	mu     sync.Mutex
	ready  []*Net
	making int
	closed bool
	wg     sync.WaitGroup
}

// NewPool checks that namespaces can be made here and starts filling.
// With Egress it needs the host set up (Setup).
func NewPool(cfg Config, logger *slog.Logger) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := supported(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{cfg: cfg, logger: logger.With("component", "envnet")}
	p.mu.Lock()
	p.fillLocked()
	p.mu.Unlock()
	return p, nil
}

// Egress reports whether the pool's namespaces reach out.
func (p *Pool) Egress() bool { return p.cfg.Egress }

// Take returns a prepared namespace, or makes one now when none is ready.
func (p *Pool) Take() (*Net, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("envnet: pool closed")
	}
	var n *Net
	if k := len(p.ready); k > 0 {
		n = p.ready[k-1]
		p.ready[k-1] = nil
		p.ready = p.ready[:k-1]
	}
	p.fillLocked()
	p.mu.Unlock()
	if n == nil {
		var err error
		if n, err = prepare(&p.cfg); err != nil {
			return nil, err
		}
	}
	n.pool = p
	return n, nil
}

// recycle keeps a namespace an environment no longer uses, as a new Net,
// when the pool has room for it.
func (p *Pool) recycle(n *Net) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.ready) >= 2*p.cfg.Ready {
		return false
	}
	p.ready = append(p.ready, &Net{fd: n.fd, host: n.host, addr: n.addr})
	return true
}

// fillLocked starts preparing namespaces until Ready are ready or on the way.
func (p *Pool) fillLocked() {
	for !p.closed && len(p.ready)+p.making < p.cfg.Ready {
		p.making++
		p.wg.Add(1)
		go p.make()
	}
}

func (p *Pool) make() {
	defer p.wg.Done()
	n, err := prepare(&p.cfg)
	p.mu.Lock()
	p.making--
	if err != nil {
		p.mu.Unlock()
		p.logger.Warn("preparing a network namespace failed", "err", err)
		return
	}
	if p.closed {
		p.mu.Unlock()
		_ = n.Close()
		return
	}
	p.ready = append(p.ready, n)
	p.mu.Unlock()
}

// Close stops preparing and releases the namespaces nobody took.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	p.wg.Wait()
	var errs []error
	for _, n := range ready {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}

// Pools hands out namespaces with and without egress, each kind from a Pool
// made on its first use (with egress, after Setup).
//
// Concurrency: cfg and logger are immutable; mu guards pools.
type Pools struct {
	cfg    Config
	logger *slog.Logger

	mu    sync.Mutex
	pools [2]*Pool // [0] without egress, [1] with
}

// NewPools checks that namespaces can be made here. cfg.Egress is ignored:
// each Take says which kind it wants.
func NewPools(cfg Config, logger *slog.Logger) (*Pools, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := supported(); err != nil {
		return nil, err
	}
	return &Pools{cfg: cfg, logger: logger}, nil
}

func (ps *Pools) pool(egress bool) (*Pool, error) {
	i := 0
	if egress {
		i = 1
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.pools[i]; p != nil {
		return p, nil
	}
	if egress {
		if err := Setup(ps.cfg.CIDR); err != nil {
			return nil, err
		}
	}
	cfg := ps.cfg
	cfg.Egress = egress
	p, err := NewPool(cfg, ps.logger)
	if err != nil {
		return nil, err
	}
	ps.pools[i] = p
	return p, nil
}

// Warm starts preparing namespaces of one kind ahead of the first Take.
func (ps *Pools) Warm(egress bool) error {
	_, err := ps.pool(egress)
	return err
}

// Take returns a namespace with or without egress.
func (ps *Pools) Take(egress bool) (*Net, error) {
	p, err := ps.pool(egress)
	if err != nil {
		return nil, err
	}
	return p.Take()
}

// Close closes both pools.
func (ps *Pools) Close() error {
	ps.mu.Lock()
	pools := ps.pools
	ps.pools = [2]*Pool{}
	ps.mu.Unlock()
	var errs []error
	for _, p := range pools {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	return errors.Join(errs...)
}

// ClusterDeny keeps environments off the addresses and ranges of
// --egress-deny and off the machines of a cluster: with egress they reach
// the network, and a cluster's machines serve the bus, the API, the
// metrics and the invoke wire there. The machines known at start are given
// to NewClusterDeny; a host that joins later is added (Add) when it is
// first heard of. Safe for concurrent use; a nil *ClusterDeny adds nothing.
type ClusterDeny struct {
	logger *slog.Logger
	mu     sync.Mutex
	deny   []netip.Prefix
	seen   map[string]bool // the names given to Add
}

// NewClusterDeny denies egressDeny and the machines that urls name
// (MachinesOf). It warns of the names that do not resolve. ErrUnsupported
// off Linux.
func NewClusterDeny(egressDeny, urls []string, logger *slog.Logger) (*ClusterDeny, error) {
	deny, err := ParsePrefixes(egressDeny)
	if err != nil {
		return nil, fmt.Errorf("--egress-deny: %w", err)
	}
	d := &ClusterDeny{logger: logger, deny: deny, seen: map[string]bool{}}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addLocked(urls)
	if len(d.deny) == 0 {
		return d, nil
	}
	return d, d.applyLocked()
}

// Add denies the machine that addr names (a host, host:port or URL), if it
// is not denied yet.
func (d *ClusterDeny) Add(addr string) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[addr] {
		return nil
	}
	d.seen[addr] = true
	if !d.addLocked([]string{addr}) {
		return nil
	}
	return d.applyLocked()
}

// addLocked adds the machines that urls name, and reports whether any was
// new.
func (d *ClusterDeny) addLocked(urls []string) (added bool) {
	machines, unresolved := MachinesOf(urls...)
	if len(unresolved) > 0 {
		d.logger.Warn("environments may reach these machines of the cluster: their names do not resolve", "names", unresolved)
	}
	for _, m := range machines {
		if !slices.Contains(d.deny, m) {
			d.deny, added = append(d.deny, m), true
		}
	}
	return added
}

// applyLocked writes the rules (DenyTo).
func (d *ClusterDeny) applyLocked() error {
	if err := DenyTo(d.deny); err != nil {
		return err
	}
	d.logger.Info("environments do not reach these addresses", "deny", d.deny)
	return nil
}

// MachinesOf returns the IPv4 addresses of the machines that urls name
// (nats://host:port, nats-route://host:port, host:port or a bare host),
// each as a /32, for DenyTo. A name is looked up; one that does not
// resolve is left out and returned in unresolved.
func MachinesOf(urls ...string) (addrs []netip.Prefix, unresolved []string) {
	seen := map[netip.Addr]bool{}
	for _, u := range urls {
		host := u
		if i := strings.Index(host, "://"); i >= 0 {
			host = host[i+3:]
		}
		if i := strings.LastIndexAny(host, "@"); i >= 0 {
			host = host[i+1:]
		}
		if i := strings.IndexByte(host, '/'); i >= 0 {
			host = host[:i]
		}
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			continue
		}
		var ips []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{a}
		} else if found, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", host); err == nil {
			ips = found
		} else {
			unresolved = append(unresolved, host)
		}
		for _, a := range ips {
			a = a.Unmap()
			if a.Is4() && !a.IsLoopback() && !a.IsUnspecified() && !seen[a] {
				seen[a] = true
				addrs = append(addrs, netip.PrefixFrom(a, 32))
			}
		}
	}
	return addrs, unresolved
}

// ParsePrefixes reads addresses (198.18.0.2) and ranges (198.18.0.0/24)
// of IPv4, as an operator gives them to --egress-deny.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var p netip.Prefix
		if a, err := netip.ParseAddr(s); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		} else if p, err = netip.ParsePrefix(s); err != nil {
			return nil, fmt.Errorf("%q: not an address or a range (198.18.0.0/24)", s)
		}
		if !p.Addr().Unmap().Is4() {
			return nil, fmt.Errorf("%q: environments reach IPv4 only; give an IPv4 address or range", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
