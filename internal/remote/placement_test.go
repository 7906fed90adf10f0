package remote

import "testing"

func TestPlace(t *testing.T) {
	onDemand := Need{VCPU: 0.5, MemoryMB: 1024}
	provisioned := Need{VCPU: 0.5, MemoryMB: 1024, Provisioned: true}
	local := func(vcpu float64, mem int) Option { return Option{Host: "self", FreeVCPU: vcpu, FreeMemoryMB: mem} }
	host := func(name string, vcpu float64, mem int) Option {
		return Option{Agent: "classic-" + name, Host: name, FreeVCPU: vcpu, FreeMemoryMB: mem}
	}
	same := func(o Option, n int) Option { o.Same = n; return o }
	for _, tc := range []struct {
		name string
		opts []Option
		need Need
		want string // the chosen option's host, "" for nowhere
	}{
		{"on demand stays here while this machine has room",
			[]Option{host("a", 8, 65536), local(1, 2048)}, onDemand, "self"},
		{"on demand goes to the host with the most memory once this machine is full",
			[]Option{local(1, 512), host("a", 8, 4096), host("b", 2, 8192)}, onDemand, "b"},
		{"a host short of vCPUs has no room, whatever its memory",
			[]Option{local(0.25, 8192), host("a", 0.25, 65536), host("b", 1, 2048)}, onDemand, "b"},
		{"ties go to more vCPUs, then the name",
			[]Option{host("b", 4, 4096), host("a", 4, 4096), host("c", 2, 4096)}, onDemand, "a"},
		{"no room anywhere: here first",
			[]Option{local(0, 0), host("a", 0.1, 100)}, onDemand, "self"},
		{"no room anywhere and no room here to speak of: the least over-committed host",
			[]Option{host("a", 0.1, 100), host("b", 0.1, 900)}, onDemand, "b"},
		{"a node that is no host and no host at all: here",
			[]Option{local(0, 0)}, onDemand, "self"},
		{"provisioned goes to the host with the most room, this machine's agent included",
			[]Option{local(8, 65536), host("self", 4, 16384), host("a", 4, 8192)}, provisioned, "self"},
		{"provisioned spreads: the host with the fewest of its configuration first",
			[]Option{same(host("a", 8, 65536), 1), host("b", 1, 2048), same(host("c", 4, 16384), 1)}, provisioned, "b"},
		{"provisioned spreads over the hosts with room only",
			[]Option{same(host("a", 8, 65536), 2), host("b", 0.25, 512), same(host("c", 4, 16384), 1)}, provisioned, "c"},
		{"provisioned: as many of its configuration everywhere, the most room",
			[]Option{same(host("a", 2, 4096), 1), same(host("b", 4, 8192), 1)}, provisioned, "b"},
		{"provisioned with no room anywhere: the fewest of its configuration",
			[]Option{same(host("a", 0, 900), 3), same(host("b", 0, 100), 0)}, provisioned, "b"},
		{"on demand does not spread by configuration",
			[]Option{local(0, 0), same(host("a", 8, 65536), 3), host("b", 1, 2048)}, onDemand, "a"},
		{"provisioned never stays in this process while an agent serves",
			[]Option{local(8, 65536), host("a", 0, 0)}, provisioned, "a"},
		{"provisioned in this process only when no agent serves",
			[]Option{local(0, 0)}, provisioned, "self"},
		{"nowhere", nil, onDemand, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := Place(tc.opts, tc.need)
			got := ""
			if i >= 0 {
				got = tc.opts[i].Host
				if tc.need.Provisioned && tc.want == "self" && len(tc.opts) > 1 && tc.opts[i].Agent == "" {
					t.Fatalf("placed a provisioned environment in this process: %+v", tc.opts[i])
				}
			}
			if got != tc.want {
				t.Fatalf("placed on %q (option %d), want %q", got, i, tc.want)
			}
		})
	}
}
