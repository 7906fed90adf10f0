package pricing

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"m7i.large", "m7i.large", true},
		{"M7I.LARGE", "m7i.large", true},
		{"m7i.*", "m7i.2xlarge", true},
		{"m7i.*", "m7i", false},
		{"m7i.*", "m7g.large", false},
		{"*.large", "c7g.large", true},
		{"*.large", "c7g.xlarge", false},
		{"*large", "c7g.xlarge", true},
		{"c*", "c6i.32xlarge", true},
		{"c*", "m6i.large", false},
		{"*", "r7i.large", true},
		{"c*.*", "c7i.large", true},
		{"*7*", "m7g.large", true},
		{"*7*", "m6i.large", false},
		{"**", "", true},
		{"", "m7i.large", false},
		{"m7i.large*", "m7i.large", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.name, func(t *testing.T) {
			if got := MatchPattern(tt.pattern, tt.name); got != tt.want {
				t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}

func names(its []InstanceType) []string {
	out := make([]string, 0, len(its))
	for _, it := range its {
		out = append(out, it.Name)
	}
	return out
}

func TestMatchInstanceTypes(t *testing.T) {
	cat := Default()
	all := MatchInstanceTypes(cat, X86_64, nil, nil)
	if len(all) == 0 {
		t.Fatal("no x86_64 instance types")
	}
	for i, it := range all {
		if it.Arch != X86_64 || !ManagedInstanceType(it) {
			t.Errorf("%s (%s) listed", it.Name, it.Arch)
		}
		if i > 0 && all[i-1].OnDemandHourly.GreaterThan(it.OnDemandHourly) {
			t.Errorf("%s listed after the dearer %s", it.Name, all[i-1].Name)
		}
	}

	tests := []struct {
		name              string
		arch              Arch
		allowed, excluded []string
		check             func(t *testing.T, got []InstanceType)
	}{
		{"allowed family", X86_64, []string{"m7i.*"}, nil, func(t *testing.T, got []InstanceType) {
			for _, it := range got {
				if !MatchPattern("m7i.*", it.Name) {
					t.Errorf("%s does not match m7i.*", it.Name)
				}
			}
			if len(got) == 0 || got[0].Name != "m7i.large" {
				t.Errorf("got %v, want m7i.large first", names(got))
			}
		}},
		{"allowed exact list", X86_64, []string{"r7i.large", "c7i.large", "m7i.large"}, nil, func(t *testing.T, got []InstanceType) {
			if diff := cmp.Diff([]string{"c7i.large", "m7i.large", "r7i.large"}, names(got)); diff != "" {
				t.Errorf("by price (-want +got):\n%s", diff)
			}
		}},
		{"size wildcard", ARM64, []string{"*.large"}, nil, func(t *testing.T, got []InstanceType) {
			if len(got) == 0 {
				t.Fatal("no arm64 .large types")
			}
			for _, it := range got {
				if it.Arch != ARM64 || !MatchPattern("*.large", it.Name) {
					t.Errorf("%s (%s)", it.Name, it.Arch)
				}
			}
		}},
		{"excluded", X86_64, nil, []string{"c*", "r*"}, func(t *testing.T, got []InstanceType) {
			for _, it := range got {
				if it.Family() != "m" {
					t.Errorf("%s not excluded", it.Name)
				}
			}
			if len(got) == 0 {
				t.Error("nothing left")
			}
		}},
		{"other architecture", X86_64, []string{"c7g.*"}, nil, func(t *testing.T, got []InstanceType) {
			if len(got) != 0 {
				t.Errorf("arm64 types for x86_64: %v", names(got))
			}
		}},
		{"allowed then excluded", X86_64, []string{"m7i.*"}, []string{"*.large"}, func(t *testing.T, got []InstanceType) {
			for _, it := range got {
				if it.Name == "m7i.large" {
					t.Error("m7i.large not excluded")
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, MatchInstanceTypes(cat, tt.arch, tt.allowed, tt.excluded))
		})
	}
}

func TestManagedInstanceType(t *testing.T) {
	for name, want := range map[string]bool{
		"m7i.large": true, "c7g.48xlarge": true, "r6i.xlarge": true,
		"t3.large": false, "m7i.medium": false, "c7g.small": false, "x2idn.large": false, "m7i": false,
	} {
		if got := ManagedInstanceType(InstanceType{Name: name}); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}
