package envnet

import (
	"net/netip"
	"slices"
	"testing"
)

func TestMachinesOf(t *testing.T) {
	got, unresolved := MachinesOf("nats-route://198.18.0.2:6222", "nats://user:pw@198.18.0.3:4222", "tls://198.18.0.3:4222",
		"198.18.0.4:4222", "198.18.0.5", "127.0.0.1:4222", "0.0.0.0:6222", "[2001:db8::1]:4222", "no-such-host.invalid:4222")
	want := []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("198.18.0.3/32"),
		netip.MustParsePrefix("198.18.0.4/32"), netip.MustParsePrefix("198.18.0.5/32")}
	if !slices.Equal(got, want) {
		t.Errorf("MachinesOf = %v, want %v", got, want)
	}
	if !slices.Equal(unresolved, []string{"no-such-host.invalid"}) {
		t.Errorf("unresolved %v", unresolved)
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"198.18.0.2", " 198.18.1.7/24", ""})
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("198.18.1.0/24")}; !slices.Equal(got, want) {
		t.Errorf("ParsePrefixes = %v, want %v", got, want)
	}
	for _, bad := range []string{"node2", "2001:db8::/32", "198.18.0.0/33"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) took it", bad)
		}
	}
}
