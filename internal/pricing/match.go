package pricing

import (
	"sort"
	"strings"
)

// smallSizes are the instance sizes below .large, which Lambda Managed Instances never
// launches.
var smallSizes = map[string]bool{"nano": true, "micro": true, "small": true, "medium": true}

// managedFamilies are the instance families Lambda Managed Instances launches.
var managedFamilies = map[string]bool{"c": true, "m": true, "r": true}

// MatchInstanceTypes returns the catalogue's instance types of one architecture that a
// capacity provider may launch: C, M and R families, .large and up, that match one of
// allowed (when allowed is not empty) and none of excluded, cheapest first (then by
// name). Patterns are EC2's: a type name in which each '*' stands for any run of
// characters, compared case-insensitively ("m7i.*", "*.large", "c*", "r7?.large" is not
// a pattern: '?' is literal).
func MatchInstanceTypes(cat *Catalog, arch Arch, allowed, excluded []string) []InstanceType {
	var out []InstanceType
	for _, it := range cat.InstanceTypes(arch) {
		if !ManagedInstanceType(it) {
			continue
		}
		if len(allowed) > 0 && !matchAny(allowed, it.Name) {
			continue
		}
		if matchAny(excluded, it.Name) {
			continue
		}
		out = append(out, it)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if c := out[i].OnDemandHourly.Cmp(out[j].OnDemandHourly); c != 0 {
			return c < 0
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// ManagedInstanceType reports whether Lambda Managed Instances can launch the type: a
// C, M or R family, size .large or bigger.
func ManagedInstanceType(it InstanceType) bool {
	dot := strings.IndexByte(it.Name, '.')
	if dot < 0 || smallSizes[it.Name[dot+1:]] {
		return false
	}
	return managedFamilies[it.Family()]
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if MatchPattern(p, name) {
			return true
		}
	}
	return false
}

// MatchPattern reports whether an instance type name matches an EC2 instance type
// pattern, in which '*' matches any run of characters (including none and dots).
func MatchPattern(pattern, name string) bool {
	p, s := strings.ToLower(pattern), strings.ToLower(name)
	// Iterative glob with backtracking to the last '*'.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
