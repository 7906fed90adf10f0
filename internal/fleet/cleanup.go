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

	"github.com/shoal-dev/shoal/internal/cgroupfs"
)

// cgroupDirsOf returns the directories, in every mounted hierarchy, of the
// cgroups of process pid whose path ends in /name.
func cgroupDirsOf(pid int, name string) []string {
	own, err := cgroupfs.ReadMembership("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil
	}
	ms, err := cgroupfs.ReadMounts("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	mounts := cgroupfs.Points(ms)
	var out []string
	for c, p := range own {
		m, ok := mounts[c]
		if !ok || !strings.HasSuffix(p, "/"+name) {
			continue
		}
		if dir := filepath.Join(m, p); !slices.Contains(out, dir) {
			out = append(out, dir)
		}
	}
	slices.Sort(out)
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
