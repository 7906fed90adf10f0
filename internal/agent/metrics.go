package agent

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/cgroupfs"
)

// HostMetrics measures the instance.
type HostMetrics interface {
	// Sample returns the CPU time used since the previous call as a share of
	// vcpu vCPUs over the elapsed time (0 on the first call), and the memory
	// in use in MB.
	Sample(now time.Time, vcpu int) (cpu float64, memUsedMB int)
}

// cgroupMetrics reads the agent's own cgroup (the instance's, when the fleet
// confines the agent), falling back to /proc/stat and /proc/meminfo.
//
// Concurrency: the paths are set by newHostMetrics; mu guards the previous sample.
type cgroupMetrics struct {
	cpuFile  string // cpuacct.usage (ns) or cpu.stat (usage_usec); "" → /proc/stat
	cpuV2    bool
	memFile  string // memory.usage_in_bytes or memory.current; "" → /proc/meminfo
	procStat bool

	mu       sync.Mutex
	lastAt   time.Time
	lastCPU  float64 // seconds of CPU (cgroup) or busy jiffies (proc)
	lastTot  float64 // total jiffies (proc)
	hasPrior bool
}

func newHostMetrics() *cgroupMetrics {
	m := &cgroupMetrics{}
	own, _ := cgroupfs.ReadMembership("/proc/self/cgroup")
	mounts := map[string]string{}
	if ms, err := cgroupfs.ReadMounts("/proc/self/mountinfo"); err == nil {
		mounts = cgroupfs.Points(ms)
	}
	if p, ok := own["cpuacct"]; ok && mounts["cpuacct"] != "" {
		m.cpuFile = filepath.Join(mounts["cpuacct"], p, "cpuacct.usage")
	} else if p, ok := own[""]; ok && mounts[""] != "" {
		m.cpuFile, m.cpuV2 = filepath.Join(mounts[""], p, "cpu.stat"), true
	}
	if m.cpuFile != "" {
		if _, err := os.Stat(m.cpuFile); err != nil {
			m.cpuFile = ""
		}
	}
	if p, ok := own["memory"]; ok && mounts["memory"] != "" {
		m.memFile = filepath.Join(mounts["memory"], p, "memory.usage_in_bytes")
	} else if p, ok := own[""]; ok && mounts[""] != "" {
		m.memFile = filepath.Join(mounts[""], p, "memory.current")
	}
	if m.memFile != "" {
		if _, err := os.Stat(m.memFile); err != nil {
			m.memFile = ""
		}
	}
	m.procStat = m.cpuFile == ""
	return m
}

// Source says where the figures come from, for logs.
func (m *cgroupMetrics) Source() string {
	cpu, mem := m.cpuFile, m.memFile
	if cpu == "" {
		cpu = "/proc/stat"
	}
	if mem == "" {
		mem = "/proc/meminfo"
	}
	return "cpu " + cpu + ", memory " + mem
}

func (m *cgroupMetrics) Sample(now time.Time, vcpu int) (float64, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var util float64
	if m.procStat {
		busy, total, ok := readProcStat()
		if ok && m.hasPrior && total > m.lastTot {
			util = (busy - m.lastCPU) / (total - m.lastTot)
		}
		m.lastCPU, m.lastTot, m.hasPrior = busy, total, ok
	} else {
		secs, ok := m.cpuSeconds()
		if ok && m.hasPrior && vcpu > 0 {
			if el := now.Sub(m.lastAt).Seconds(); el > 0 {
				util = (secs - m.lastCPU) / el / float64(vcpu)
			}
		}
		m.lastCPU, m.hasPrior = secs, ok
	}
	m.lastAt = now
	return max(util, 0), m.memUsedMB()
}

func (m *cgroupMetrics) cpuSeconds() (float64, bool) {
	data, err := os.ReadFile(m.cpuFile)
	if err != nil {
		return 0, false
	}
	if !m.cpuV2 {
		ns, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
		return float64(ns) / 1e9, err == nil
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return float64(us) / 1e6, err == nil
		}
	}
	return 0, false
}

func (m *cgroupMetrics) memUsedMB() int {
	if m.memFile != "" {
		if data, err := os.ReadFile(m.memFile); err == nil {
			if b, err := strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64); err == nil {
				return int(b >> 20)
			}
		}
	}
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var total, avail uint64
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = v
		case "MemAvailable:":
			avail = v
		}
	}
	if avail > total {
		return 0
	}
	return int((total - avail) >> 10)
}

// readProcStat returns the busy and total jiffies of all CPUs.
func readProcStat() (busy, total float64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, s := range fields[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, true
}

// inInstanceCgroup reports whether the process whose cgroup file is path
// runs in the cgroup the local fleet confines instance id to
// ("…/instance-<id>", fleet.Local).
func inInstanceCgroup(path, id string) bool {
	own, _ := cgroupfs.ReadMembership(path)
	for _, p := range own {
		if slices.Contains(strings.Split(p, "/"), "instance-"+id) {
			return true
		}
	}
	return false
}

// cgroupMemoryBytes reads the memory in use of a cgroup directory, v1 or v2.
func cgroupMemoryBytes(dir string) (uint64, bool) {
	for _, f := range []string{"memory.usage_in_bytes", "memory.current"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
			v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// openFDs counts the descriptors of this process and of every other process
// in the cgroup directories.
func openFDs(cgroups []string) int {
	n := countDir("/proc/self/fd")
	self := strconv.Itoa(os.Getpid())
	for _, d := range cgroups {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			if pid != self {
				n += countDir("/proc/" + pid + "/fd")
			}
		}
	}
	return n
}

// countDir counts the entries of a directory, 0 if it cannot be read.
func countDir(dir string) int {
	f, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return len(names)
}
