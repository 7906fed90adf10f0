package fleet

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupDirsOf returns the directories, in every mounted hierarchy, of the
// cgroups of process pid whose path ends in /name.
func cgroupDirsOf(pid int, name string) []string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil
	}
	mounts := cgroupMounts("/proc/self/mountinfo")
	var out []string
	seen := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || !strings.HasSuffix(parts[2], "/"+name) {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		if parts[1] == "" {
			ctrls = []string{""}
		}
		for _, c := range ctrls {
			m, ok := mounts[c]
			if !ok {
				continue
			}
			dir := filepath.Join(m, parts[2])
			if !seen[dir] {
				seen[dir] = true
				out = append(out, dir)
			}
		}
	}
	return out
}

// cgroupMounts maps each controller ("" for cgroup v2, "name=x" for named
// hierarchies) to its mount point.
func cgroupMounts(path string) map[string]string {
	out := map[string]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for line := range strings.Lines(string(data)) {
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			if _, seen := out[""]; !seen {
				out[""] = pf[4]
			}
		case "cgroup":
			for _, opt := range strings.Split(qf[2], ",") {
				if opt == "rw" || opt == "ro" {
					continue
				}
				if _, seen := out[opt]; !seen {
					out[opt] = pf[4]
				}
			}
		}
	}
	return out
}

// removeCgroupTrees kills every process in the cgroups below dirs (the
// environments an agent left behind) and removes those cgroups, deepest
// first; with top it removes dirs themselves too. Best effort.
func removeCgroupTrees(dirs []string, top bool) error {
	var errs []error
	for _, dir := range dirs {
		var tree []string
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				tree = append(tree, path)
			}
			return nil
		})
		slices.Reverse(tree) // children before parents
		for _, cg := range tree {
			killCgroup(cg)
			if cg == dir && !top {
				continue
			}
			if err := rmdirRetry(cg); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func killCgroup(dir string) {
	for range 50 {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return
		}
		alive := 0
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					alive++
				}
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond) // the kernel finishes the exits before the next listing
	}
}

func rmdirRetry(dir string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return &os.PathError{Op: "rmdir", Path: dir, Err: err}
		}
		killCgroup(dir)
		time.Sleep(5 * time.Millisecond)
	}
}

// killAgent kills an agent that is not this process's child, when pid still
// runs `agent … --id id` (a recycled pid is left alone).
func killAgent(pid int, id string) {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return
	}
	args := strings.Split(string(cmdline), "\x00")
	if i := slices.Index(args, "--id"); i >= 0 && i+1 < len(args) && args[i+1] == id {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
