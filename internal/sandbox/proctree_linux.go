//go:build linux

package sandbox

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// killDescendants SIGKILLs every live descendant of pid found through /proc (parent
// links), a few rounds so that children forked meanwhile are caught too. It is the
// fallback for a sandbox without a cgroup or pid namespace, where a process that left
// the process group (setsid) is still reachable while its parent lives.
func killDescendants(pid int) {
	for round := 0; round < 3; round++ {
		tree := descendantsOf(pid)
		if len(tree) == 0 {
			return
		}
		for _, p := range tree {
			_ = unix.Kill(p, unix.SIGKILL)
		}
	}
}

// descendantsOf lists the descendants of root, from /proc/<pid>/stat parent links.
func descendantsOf(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 > len(s) {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
