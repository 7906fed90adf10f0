package envnet

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the nftables table (family ip) that holds the host's rules
// for environments.
const TableName = "shoal"

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// Setup prepares the host for environments with egress. The control plane
// and every agent on a host call it; it is idempotent:
//
//   - IPv4 forwarding is turned on (as container engines do), so that the
//     environments' traffic can be routed;
//   - the nftables table "ip shoal" is written anew, atomically:
//     input:       whatever an environment sends to the host itself is dropped
//     forward:     environment → environment dropped; environment → elsewhere
//     accepted; elsewhere → environment only as replies
//     postrouting: the environments' range is masqueraded on the way out
//
// The rules match only the environments' interfaces (IfacePrefix) and range,
// so they leave the host's other traffic alone. The table stays when shoal
// stops (it matches nothing without environments); `nft delete table ip
// shoal` removes it.
func Setup(cidr netip.Prefix) error {
	if err := supported(); err != nil {
		return err
	}
	if !cidr.IsValid() {
		cidr = DefaultCIDR
	}
	if err := rewriteTable(TableName, func(c *nftables.Conn) { addTable(c, cidr.Masked()) }); err != nil {
		return err
	}
	b, err := os.ReadFile(ipForward)
	if err != nil {
		return fmt.Errorf("envnet: %w", err)
	}
	if strings.TrimSpace(string(b)) != "1" {
		if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("envnet: turn IPv4 forwarding on: %w", err)
		}
	}
	return nil
}

// hostLock serialises the rewrites of shoal's nftables tables between the
// processes of one host.
func hostLock() (func(), error) {
	dir := "/run/shoal"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("envnet: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "envnet.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("envnet: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("envnet: lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// ifname matches an interface name on its first bytes (nftables' "shv*").
func ifname(key expr.MetaKey, op expr.CmpOp, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: []byte(prefix)},
	}
}

func rule(exprs ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, e := range exprs {
		out = append(out, e...)
	}
	return out
}

var (
	accept = []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	drop   = []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
)

// addTable queues the table and its chains on c.
func addTable(c *nftables.Conn, cidr netip.Prefix) {
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName})
	policy := nftables.ChainPolicyAccept
	prio := nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 10)
	input := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: prio, Policy: &policy})
	forward := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: prio, Policy: &policy})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &policy})

	fromEnv := ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, IfacePrefix)
	toEnv := ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, IfacePrefix)
	notToEnv := ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, IfacePrefix)
	established := []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: input, Exprs: rule(fromEnv, drop)})
	c.AddRule(&nftables.Rule{Table: t, Chain: forward, Exprs: rule(fromEnv, toEnv, drop)})
	c.AddRule(&nftables.Rule{Table: t, Chain: forward, Exprs: rule(fromEnv, accept)})
	c.AddRule(&nftables.Rule{Table: t, Chain: forward, Exprs: rule(toEnv, established, accept)})
	c.AddRule(&nftables.Rule{Table: t, Chain: forward, Exprs: rule(toEnv, drop)})
	srcInRange := []expr.Any{
		// ip saddr: 4 bytes at offset 12 of the network header.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: maskBytes(cidr.Bits()), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: cidr.Addr().AsSlice()},
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: rule(srcInRange, notToEnv, []expr.Any{&expr.Masq{}})})
}

func maskBytes(bits int) []byte {
	m := uint32(0xffffffff) << (32 - bits)
	return []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}

// DenyTableName is the nftables table (family ip) that drops what
// environments send to the addresses given to DenyTo.
const DenyTableName = "shoal_deny"

// DenyTo keeps environments with egress from reaching addrs: the machines of
// a cluster (its nodes, its hosts, its NATS servers), or whatever else the
// operator names. An environment already reaches nothing of its own machine
// (Setup's input rule); this covers the others, which egress would route to.
//
// The rules live in a table of their own, "ip shoal_deny", written anew,
// atomically, at each call (an empty addrs removes it): Setup, which every
// agent calls, rewrites only "ip shoal", and so leaves these alone. Its
// forward chain drops a packet from an environment's interface (IfacePrefix)
// to one of addrs, whatever the order of the two tables' chains: a drop in
// any chain of a hook is final.
func DenyTo(addrs []netip.Prefix) error {
	if err := supported(); err != nil {
		return err
	}
	var v4 []netip.Prefix
	for _, p := range addrs {
		if p.Addr().Unmap().Is4() {
			v4 = append(v4, netip.PrefixFrom(p.Addr().Unmap(), min(p.Bits(), 32)).Masked())
		}
	}
	return rewriteTable(DenyTableName, func(c *nftables.Conn) {
		if len(v4) == 0 {
			return
		}
		t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: DenyTableName})
		policy := nftables.ChainPolicyAccept
		prio := nftables.ChainPriorityRef(*nftables.ChainPriorityFilter - 20)
		forward := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: prio, Policy: &policy})
		fromEnv := ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, IfacePrefix)
		for _, p := range v4 {
			to := []expr.Any{
				// ip daddr: 4 bytes at offset 16 of the network header.
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: maskBytes(p.Bits()), Xor: []byte{0, 0, 0, 0}},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()},
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: forward, Exprs: rule(fromEnv, to, drop)})
		}
	})
}

// rewriteTable replaces the nftables table name (family ip) with what add
// queues, in one transaction, under the host's lock: the old table is
// deleted and the new one made at once (add may make none).
func rewriteTable(name string, add func(c *nftables.Conn)) error {
	unlock, err := hostLock()
	if err != nil {
		return err
	}
	defer unlock()
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("envnet: nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return fmt.Errorf("envnet: nftables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			c.DelTable(t)
		}
	}
	add(c)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("envnet: nftables table %s: %w", name, err)
	}
	return nil
}
