package netlab

import (
	"net"
	"strings"
	"testing"
)

// TestMachinesTalk: a machine of a lab reaches a server on another, and
// listeners open inside a machine's namespace.
func TestMachinesTalk(t *testing.T) {
	l := New(t)
	a, b := l.Machine(), l.Machine()
	addr := a.Serve(7000, "hello from a")
	out, err := b.Command("bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)+"; cat <&3").CombinedOutput()
	if err != nil || string(out) != "hello from a" {
		t.Fatalf("b read %q (%v)", out, err)
	}
	ln, err := b.Listen("tcp", b.IP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !strings.HasPrefix(ln.Addr().String(), b.IP+":") {
		t.Fatalf("listener at %s, want on %s", ln.Addr(), b.IP)
	}
}

// TestLabsHaveSubnetsApart: a lab never takes the subnet of another, here
// of this process, as well as of another test binary.
func TestLabsHaveSubnetsApart(t *testing.T) {
	a := New(t)
	picks := []int{a.subnet, a.subnet%250 + 1}
	b := newLab(t, func() int {
		next := picks[0]
		picks = picks[1:]
		return next
	})
	if b.subnet == a.subnet {
		t.Fatalf("two labs on 198.18.%d.0/24", a.subnet)
	}
	if b.subnet != a.subnet%250+1 {
		t.Fatalf("the second lab took 198.18.%d.0/24, want the next subnet offered", b.subnet)
	}
	// Each lab's machines and the host reach each other over its bridge.
	for _, l := range []*Lab{a, b} {
		ln, err := net.Listen("tcp", l.Gateway()+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				_, _ = c.Write([]byte("host"))
				c.Close()
			}
		}()
		m := l.Machine()
		out, err := m.Command("bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(ln.Addr().String(), ":", "/", 1)+"; cat <&3").CombinedOutput()
		if err != nil || string(out) != "host" {
			t.Errorf("%s read %q from its gateway %s (%v)", m.Name, out, ln.Addr(), err)
		}
	}
}
