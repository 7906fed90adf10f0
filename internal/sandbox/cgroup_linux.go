//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/internal/cgroupfs"
)

// v1Controllers are the cgroup v1 controllers a sandbox uses, in the order their
// directories are created.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids"}

// v1Hierarchy is one mounted v1 hierarchy.
type v1Hierarchy struct {
	mount string // mount point
	root  string // hierarchy path mounted there ("/" unless bind-mounted in a container)
	own   string // this process's cgroup directory
	base  string // <own>/shoal
}

// dirOf returns the directory of cgroup path p (as listed in /proc/*/cgroup).
func (h v1Hierarchy) dirOf(p string) string {
	rel := strings.TrimPrefix(p, h.root)
	return filepath.Join(h.mount, rel)
}

// cgroupHost is how this machine's cgroups are laid out, detected once per process.
type cgroupHost struct {
	v2 bool
	// v2: base is the directory under which "<ID>" cgroups are made ("…/shoal").
	base string
	// v1: controller → its hierarchy; sandboxes nest under this process's own cgroup.
	// Co-mounted controllers share a hierarchy.
	v1 map[string]v1Hierarchy
	// missing lists wanted controllers the host lacks.
	missing []string
}

var (
	hostOnce sync.Once
	hostCG   *cgroupHost
	hostErr  error
	// cgroupHostOverride, when set (by tests), replaces detection; with noCgroups set,
	// detection fails.
	cgroupHostOverride *cgroupHost
	noCgroups          bool
)

// detectCgroups finds the cgroup layout once: cgroup v2 when a cgroup2 mount offers the
// memory controller, else the v1 controllers, else an error.
func detectCgroups() (*cgroupHost, error) {
	if noCgroups {
		return nil, errors.New("cgroups disabled")
	}
	if cgroupHostOverride != nil {
		return cgroupHostOverride, nil
	}
	hostOnce.Do(func() { hostCG, hostErr = detectFrom("/proc/self/mountinfo", "/proc/self/cgroup") })
	return hostCG, hostErr
}

func detectFrom(mountinfo, selfCgroup string) (*cgroupHost, error) {
	mounts, err := cgroupfs.ReadMounts(mountinfo)
	if err != nil {
		return nil, err
	}
	own, err := cgroupfs.ReadMembership(selfCgroup)
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		if !m.V2 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.Point, "cgroup.controllers"))
		if err != nil || !hasWord(string(b), "memory") {
			continue
		}
		h := &cgroupHost{v2: true, base: filepath.Join(m.Point, "shoal")}
		for _, c := range []string{"cpu", "pids"} {
			if !hasWord(string(b), c) {
				h.missing = append(h.missing, c)
			}
		}
		return h, nil
	}
	h := &cgroupHost{v1: map[string]v1Hierarchy{}}
	for _, c := range v1Controllers {
		found := false
		for _, m := range mounts {
			if m.V2 || !contains(m.Controllers, c) {
				continue
			}
			hier := v1Hierarchy{mount: m.Point, root: m.Root}
			hier.own = hier.dirOf(own[c])
			hier.base = filepath.Join(hier.own, "shoal")
			h.v1[c] = hier
			found = true
			break
		}
		if !found {
			h.missing = append(h.missing, c)
		}
	}
	if len(h.v1) == 0 {
		return nil, errors.New("no cgroup v2 memory controller and no cgroup v1 controllers mounted")
	}
	return h, nil
}

func hasWord(s, w string) bool { return contains(strings.Fields(s), w) }

func contains(list []string, w string) bool {
	for _, x := range list {
		if x == w {
			return true
		}
	}
	return false
}

// writeFile writes one cgroup control file.
func writeCG(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("write %s %q: %w", file, value, err)
	}
	return nil
}

func readUint(dir, file string) (uint64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v, err == nil
}

// readKey returns the value of "key N" in a flat-keyed file such as memory.events.
func readKey(dir, file, key string) (uint64, bool) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

func readProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killWait bounds how long killProcs waits for the killed processes to leave.
const killWait = 5 * time.Second

// killProcs SIGKILLs the processes listed in dirs until none is left (a process that
// forks while being killed shows up in the next round). It never signals this process,
// whose launcher thread may sit in the cgroup for a moment during Start. A killed
// process stays listed until the kernel has torn it down, which for a large runtime
// on a loaded machine takes longer than a hundred short rounds: the rounds go on,
// backing off, for up to killWait.
func killProcs(dirs []string) error {
	self := os.Getpid()
	deadline := time.Now().Add(killWait)
	delay := 100 * time.Microsecond
	for {
		alive := 0
		for _, dir := range dirs {
			pids, err := readProcs(dir)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				return fmt.Errorf("list processes: %w", err)
			}
			for _, pid := range pids {
				if pid == self {
					continue
				}
				if err := unix.Kill(pid, unix.SIGKILL); err == nil {
					alive++
				}
			}
		}
		if alive == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes still in the cgroup %v after SIGKILL", alive, killWait)
		}
		time.Sleep(delay) // let the kernel finish the exits before re-listing
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// removeDirs removes cgroup directories, retrying while the kernel finishes tearing
// down exited processes (rmdir answers EBUSY until then).
func removeDirs(dirs []string) error {
	deadline := time.Now().Add(5 * time.Second)
	delay := 100 * time.Microsecond
	for _, dir := range dirs {
		for {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", dir, err)
			}
			_ = killProcs([]string{dir})
			time.Sleep(delay)
			delay = min(2*delay, 50*time.Millisecond)
		}
	}
	return nil
}

// baseWeight is the CPU weight of the cgroup holding all sandboxes, in host threads:
// together the sandboxes weigh as much as 8 busy threads per CPU. With the default
// weight of one thread, a freshly created sandbox is starved by busy host processes
// until the kernel's load averages for its group warm up (measured: /bin/true took
// twice as long on a loaded host); each sandbox's quota still caps what it uses.
var baseWeight = 8 * runtime.NumCPU()

var preparedBases sync.Map // base dir → func() error, run once per process

// prepareBase creates the v1 directory holding the sandboxes of one hierarchy and, for
// the cpu controller, raises its weight (once per process).
func prepareBase(base string, cpu bool) error {
	f, _ := preparedBases.LoadOrStore(base, sync.OnceValue(func() error {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", base, err)
		}
		if cpu {
			shares := min(1024*baseWeight, 262144) // the kernel's maximum
			if err := writeCG(base, "cpu.shares", strconv.Itoa(shares)); err != nil {
				return err
			}
		}
		return nil
	}))
	return f.(func() error)()
}

// mkdirFresh creates a cgroup directory; one left by an earlier run of shoal under the
// same ID is emptied and replaced.
func mkdirFresh(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		_ = killProcs([]string{dir})
		if err := removeDirs([]string{dir}); err != nil {
			return fmt.Errorf("replace stale cgroup: %w", err)
		}
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return fmt.Errorf("create cgroup %s: %w", dir, err)
	}
	return nil
}

// cgroupV1 is a sandbox's directory in each v1 controller.
type cgroupV1 struct {
	dirs map[string]string // controller → <own cgroup>/shoal/<ID>
	uniq []string          // distinct dirs, creation order
	cpu  *statFile         // cpuacct.usage, read on the invoke path
}

var _ cgroup = (*cgroupV1)(nil)

func newCgroupV1(h *cgroupHost, cfg Config) (*cgroupV1, error) {
	cg := &cgroupV1{dirs: map[string]string{}}
	for _, c := range v1Controllers {
		hier, ok := h.v1[c]
		if !ok {
			continue
		}
		base := hier.base
		dir := filepath.Join(base, cfg.ID)
		cg.dirs[c] = dir
		if contains(cg.uniq, dir) {
			continue
		}
		if err := prepareBase(base, c == "cpu"); err != nil {
			_ = cg.remove()
			return nil, err
		}
		if err := mkdirFresh(dir); err != nil {
			_ = cg.remove()
			return nil, err
		}
		cg.uniq = append(cg.uniq, dir)
	}
	if err := cg.limit(cfg); err != nil {
		_ = cg.remove()
		return nil, err
	}
	if dir, ok := cg.dirs["cpuacct"]; ok {
		cg.cpu = newStatFile(filepath.Join(dir, "cpuacct.usage"))
	}
	return cg, nil
}

func (cg *cgroupV1) limit(cfg Config) error {
	if dir, ok := cg.dirs["memory"]; ok && cfg.MemoryMB > 0 {
		bytes := strconv.FormatInt(int64(cfg.MemoryMB)<<20, 10)
		if err := writeCG(dir, "memory.limit_in_bytes", bytes); err != nil {
			return err
		}
		// Memory+swap equal to memory turns swap off; the file exists only with swap
		// accounting, and swappiness 0 covers the rest.
		if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
			if err := writeCG(dir, "memory.memsw.limit_in_bytes", bytes); err != nil {
				return err
			}
		}
		_ = writeCG(dir, "memory.swappiness", "0")
	}
	if cfg.CPUs > 0 {
		if err := cg.setCPUs(cfg.CPUs); err != nil {
			return err
		}
	}
	if dir, ok := cg.dirs["pids"]; ok {
		if err := writeCG(dir, "pids.max", strconv.Itoa(cfg.PidsMax)); err != nil {
			return err
		}
	}
	return nil
}

func (cg *cgroupV1) setCPUs(cpus float64) error {
	dir, ok := cg.dirs["cpu"]
	if !ok {
		return nil
	}
	if cpus == 0 {
		return writeCG(dir, "cpu.cfs_quota_us", "-1")
	}
	if err := writeCG(dir, "cpu.cfs_period_us", strconv.Itoa(cfsPeriodUS)); err != nil {
		return err
	}
	return writeCG(dir, "cpu.cfs_quota_us", strconv.Itoa(cfsQuotaUS(cpus)))
}

const cfsPeriodUS = 100000

// cfsQuotaUS converts vCPUs to a CFS quota per 100 ms period (at least 1 ms, the kernel's
// minimum).
func cfsQuotaUS(cpus float64) int {
	return max(int(cpus*cfsPeriodUS+0.5), 1000)
}

func (cg *cgroupV1) path() string {
	if d, ok := cg.dirs["memory"]; ok {
		return d
	}
	if len(cg.uniq) > 0 {
		return cg.uniq[0]
	}
	return ""
}

func (cg *cgroupV1) maxMemoryUsed() uint64 {
	v, _ := readUint(cg.dirs["memory"], "memory.max_usage_in_bytes")
	return v
}

func (cg *cgroupV1) oomKilled() bool {
	n, _ := readKey(cg.dirs["memory"], "memory.oom_control", "oom_kill")
	return n > 0
}

func (cg *cgroupV1) cpuTime() time.Duration {
	if cg.cpu == nil {
		return 0
	}
	return time.Duration(cg.cpu.uint())
}

func (cg *cgroupV1) procs() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	for _, dir := range cg.uniq {
		pids, err := readProcs(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, p := range pids {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func (cg *cgroupV1) kill() error { return killProcs(cg.uniq) }

func (cg *cgroupV1) remove() error {
	if cg.cpu != nil {
		cg.cpu.close()
	}
	return removeDirs(cg.uniq)
}

// enterThread moves the calling OS thread (locked by the caller) into the sandbox's
// cgroups, so a process it forks is born there; it returns a function that moves the
// thread back to this process's cgroups. Writing "0" to a tasks file moves just the
// writing thread.
func (cg *cgroupV1) enterThread() (leave func(), err error) {
	var back []string // tasks files to return to
	leave = func() {
		for _, tasks := range back {
			_ = os.WriteFile(tasks, []byte("0"), 0)
		}
	}
	for _, dir := range cg.uniq {
		if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte("0"), 0); err != nil {
			leave()
			return nil, fmt.Errorf("move launcher thread into %s: %w", dir, err)
		}
		back = append(back, filepath.Join(filepath.Dir(filepath.Dir(dir)), "tasks"))
	}
	return leave, nil
}

// cgroupV2 is a sandbox's cgroup v2 directory.
type cgroupV2 struct {
	dir string
	fd  int       // O_PATH descriptor for CLONE_INTO_CGROUP; -1 when closed
	cpu *statFile // cpu.stat, read on the invoke path
}

var _ cgroup = (*cgroupV2)(nil)

var enableOnce sync.Map // base → error, subtree controllers enabled once per base

func newCgroupV2(h *cgroupHost, cfg Config) (*cgroupV2, error) {
	errv, _ := enableOnce.LoadOrStore(h.base, sync.OnceValue(func() error { return enableV2(h.base) }))
	if err := errv.(func() error)(); err != nil {
		return nil, err
	}
	cg := &cgroupV2{dir: filepath.Join(h.base, cfg.ID), fd: -1}
	cg.cpu = newStatFile(filepath.Join(cg.dir, "cpu.stat"))
	if err := mkdirFresh(cg.dir); err != nil {
		return nil, err
	}
	if err := cg.limit(cfg); err != nil {
		_ = cg.remove()
		return nil, err
	}
	fd, err := unix.Open(cg.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = cg.remove()
		return nil, fmt.Errorf("open cgroup %s: %w", cg.dir, err)
	}
	cg.fd = fd
	return cg, nil
}

// enableV2 creates base and turns on the memory, cpu and pids controllers for its
// children (and for base itself in its parent).
func enableV2(base string) error {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", base, err)
	}
	for _, dir := range []string{filepath.Dir(base), base} {
		avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("read controllers of %s: %w", dir, err)
		}
		var want []string
		for _, c := range []string{"memory", "cpu", "pids"} {
			if hasWord(string(avail), c) {
				want = append(want, "+"+c)
			}
		}
		if len(want) == 0 {
			continue
		}
		if err := writeCG(dir, "cgroup.subtree_control", strings.Join(want, " ")); err != nil {
			return err
		}
	}
	if exists(base, "cpu.weight") {
		if err := writeCG(base, "cpu.weight", strconv.Itoa(min(100*baseWeight, 10000))); err != nil {
			return err
		}
	}
	return nil
}

func (cg *cgroupV2) limit(cfg Config) error {
	if cfg.MemoryMB > 0 && exists(cg.dir, "memory.max") {
		if err := writeCG(cg.dir, "memory.max", strconv.FormatInt(int64(cfg.MemoryMB)<<20, 10)); err != nil {
			return err
		}
		if exists(cg.dir, "memory.swap.max") {
			if err := writeCG(cg.dir, "memory.swap.max", "0"); err != nil {
				return err
			}
		}
		// Out of memory, the whole environment dies, not just its largest process.
		if exists(cg.dir, "memory.oom.group") {
			if err := writeCG(cg.dir, "memory.oom.group", "1"); err != nil {
				return err
			}
		}
	}
	if cfg.CPUs > 0 {
		if err := cg.setCPUs(cfg.CPUs); err != nil {
			return err
		}
	}
	if exists(cg.dir, "pids.max") {
		if err := writeCG(cg.dir, "pids.max", strconv.Itoa(cfg.PidsMax)); err != nil {
			return err
		}
	}
	return nil
}

func (cg *cgroupV2) setCPUs(cpus float64) error {
	if !exists(cg.dir, "cpu.max") {
		return nil
	}
	v := fmt.Sprintf("max %d", cfsPeriodUS)
	if cpus > 0 {
		v = fmt.Sprintf("%d %d", cfsQuotaUS(cpus), cfsPeriodUS)
	}
	return writeCG(cg.dir, "cpu.max", v)
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

func (cg *cgroupV2) path() string { return cg.dir }

func (cg *cgroupV2) maxMemoryUsed() uint64 {
	v, _ := readUint(cg.dir, "memory.peak")
	return v
}

func (cg *cgroupV2) oomKilled() bool {
	n, _ := readKey(cg.dir, "memory.events", "oom_kill")
	return n > 0
}

func (cg *cgroupV2) cpuTime() time.Duration {
	if cg.cpu == nil {
		return 0
	}
	return time.Duration(cg.cpu.key("usage_usec")) * time.Microsecond
}

func (cg *cgroupV2) procs() ([]int, error) { return readProcs(cg.dir) }

func (cg *cgroupV2) kill() error {
	// cgroup.kill (Linux 5.14) kills the whole subtree atomically.
	if err := writeCG(cg.dir, "cgroup.kill", "1"); err == nil {
		return nil
	}
	return killProcs([]string{cg.dir})
}

func (cg *cgroupV2) remove() error {
	cg.cpu.close()
	if cg.fd >= 0 {
		_ = unix.Close(cg.fd)
		cg.fd = -1
	}
	return removeDirs([]string{cg.dir})
}
