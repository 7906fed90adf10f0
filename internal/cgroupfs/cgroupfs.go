// Package cgroupfs reads how a Linux machine's cgroups are laid out: where
// each hierarchy, v1 or v2, is mounted (/proc/self/mountinfo), and which
// cgroup of each hierarchy a process belongs to (/proc/<pid>/cgroup).
//
// It only reads and parses those files; making, limiting and removing
// cgroups is the sandbox's (internal/sandbox) and the fleet's.
package cgroupfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one mounted cgroup hierarchy.
type Mount struct {
	// Root is the directory of the hierarchy mounted here: "/" unless only
	// a sub-tree is bind-mounted, as in a container.
	Root string
	// Point is where it is mounted.
	Point string
	// V2 says this is the unified (v2) hierarchy. A v1 mount lists its
	// controllers instead, with "name=x" for a named hierarchy.
	V2          bool
	Controllers []string
}

// ReadMounts reads the cgroup mounts of a mountinfo file.
func ReadMounts(mountinfo string) ([]Mount, error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("cgroup mounts: %w", err)
	}
	return ParseMounts(string(b)), nil
}

// ParseMounts returns the cgroup mounts of mountinfo's text, in its order.
// Lines it cannot read are passed over.
func ParseMounts(mountinfo string) []Mount {
	var out []Mount
	for line := range strings.Lines(mountinfo) {
		// id parent major:minor root point options [optional…] - fstype source super-options
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		m := Mount{Root: unescape(pf[3]), Point: unescape(pf[4])}
		switch qf[0] {
		case "cgroup2":
			m.V2 = true
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				if opt != "rw" && opt != "ro" {
					m.Controllers = append(m.Controllers, opt)
				}
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

// Points maps each controller ("" for v2, "name=x" for a named hierarchy)
// to the mount point of its whole hierarchy. Mounts of a sub-tree are left
// out, since the paths in /proc/<pid>/cgroup are relative to the root; the
// first mount of a hierarchy wins.
func Points(mounts []Mount) map[string]string {
	out := map[string]string{}
	add := func(c, point string) {
		if _, seen := out[c]; !seen {
			out[c] = point
		}
	}
	for _, m := range mounts {
		if m.Root != "/" {
			continue
		}
		if m.V2 {
			add("", m.Point)
			continue
		}
		for _, c := range m.Controllers {
			add(c, m.Point)
		}
	}
	return out
}

// ReadMembership reads a /proc/<pid>/cgroup file.
func ReadMembership(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cgroup membership: %w", err)
	}
	return ParseMembership(string(b)), nil
}

// ParseMembership maps each controller of a /proc/<pid>/cgroup text ("" for
// v2, "name=x" for a named hierarchy) to the process's cgroup path in that
// hierarchy.
func ParseMembership(text string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(text) {
		// hierarchy-id:controller,controller:path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
