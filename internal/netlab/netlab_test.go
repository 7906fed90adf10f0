package netlab

import (
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
