// Package sandbox confines one execution environment: a process tree in its own cgroup
// (memory, CPU quota, pids; v1 or v2, detected once per process), and, when running as
// root on Linux, in private mount/pid/ipc/uts namespaces under an unprivileged user, with
// its own /tmp, the function code mounted read-only at /var/task and its layers at
// /opt. It also unpacks
// deployment packages (Unzip) with Lambda's size limits.
//
// The package owns the cgroups it creates ("shoal/<ID>") and the mounts made for a
// sandbox; it does not know about Lambda functions, the Runtime API or logs, and it never
// waits for (reaps) the process it starts: the caller owns the exec.Cmd and calls Wait.
//
// Without root, without cgroups or on other systems, a sandbox still runs its process as
// a plain child and Limited says why it is not confined.
//
// On Linux an isolated function also gets a /proc showing only its own processes (where
// the kernel supports procfs's "pidns" option), a private /dev/shm and no_new_privs. It
// shares the host's network namespace (it must reach its Runtime API on loopback) and
// the same unprivileged uid as other sandboxes. Each started sandbox holds one OS thread
// of the calling process until Close (see sandbox_linux.go for why).
package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPidsMax  = 1024
	DefaultTaskRoot = "/var/task"
	// RuntimeRoot is where RuntimeDir appears inside an isolated sandbox.
	RuntimeRoot = "/var/runtime"
	// OptRoot is where OptDir appears inside an isolated sandbox, as Lambda's layers do.
	OptRoot = "/opt"
	// MiBPerVCPU is Lambda's memory-to-CPU ratio: 1769 MB of memory buys one vCPU.
	MiBPerVCPU = 1769
)

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("invalid sandbox config")

// ErrStarted is returned by Start when the sandbox already started a process, or was closed.
var ErrStarted = errors.New("sandbox already started or closed")

// Config describes one sandbox. It is copied by New and never changed afterwards.
type Config struct {
	// ID names the sandbox; its cgroups are "shoal/<ID>". Letters, digits, '.', '_', '-'.
	// It must be unique among live sandboxes: a cgroup found under the same ID is taken
	// for a leftover of an earlier run, and its processes are killed.
	ID string
	// MemoryMB is the memory limit in MiB (swap off where the kernel allows); 0 = no limit.
	MemoryMB int
	// CPUs is the CPU quota in vCPUs (Lambda: MemoryMB/1769 for on-demand); 0 = no quota.
	CPUs float64
	// PidsMax limits the number of tasks in the sandbox; 0 = DefaultPidsMax.
	PidsMax int
	// CodeDir holds the unpacked code; exposed read-only to the function at TaskRoot.
	CodeDir string
	// TaskRoot is where an isolated function sees CodeDir; "" = DefaultTaskRoot. A
	// sandbox that is not isolated exposes CodeDir itself (see Sandbox.TaskRoot).
	TaskRoot string
	// RuntimeDir optionally holds bootstrap files, exposed read-only at RuntimeRoot when
	// isolated.
	RuntimeDir string
	// OptDir optionally holds the function's layers, exposed read-only at OptRoot
	// when isolated (in place of the host's /opt).
	OptDir string
	// TmpDir is the per-environment writable directory seen as /tmp when isolated. When
	// empty, New creates one and Close removes it; a caller-provided TmpDir is left in place.
	TmpDir string
	// Isolate asks for namespaces, an unprivileged user and private mounts (root only).
	// Without root the sandbox runs a plain process and Limited says so.
	Isolate bool
	// UID and GID are the identity of an isolated function; 0 gives the sandbox
	// an id of its own from [UIDRangeStart, UIDRangeStart+UIDRangeSize), as both
	// its user and group id, for as long as it lives.
	UID, GID int
	// NetNS is a network namespace (an open file descriptor, see
	// internal/envnet) that an isolated process joins; 0 leaves it in the
	// caller's.
	NetNS int
	// Batch runs the process, and every thread and process it starts, under the
	// kernel's SCHED_BATCH policy (Linux; elsewhere ignored): it keeps its fair share
	// of the CPU, but its wake-ups do not preempt the task running on the CPU. See
	// docs/decisions/environment-scheduling.md.
	Batch bool
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// Validate reports whether c can be used; errors wrap ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case !idPattern.MatchString(c.ID) || c.ID == "." || c.ID == "..":
		return bad("id %q must be 1-128 letters, digits, '.', '_' or '-'", c.ID)
	case c.MemoryMB < 0:
		return bad("memory %d MB is negative", c.MemoryMB)
	case c.CPUs < 0:
		return bad("cpus %g is negative", c.CPUs)
	case c.PidsMax < 0:
		return bad("pids max %d is negative", c.PidsMax)
	case c.UID < 0 || c.GID < 0:
		return bad("uid/gid %d/%d is negative", c.UID, c.GID)
	case c.CodeDir == "":
		return bad("code dir is required")
	case !filepath.IsAbs(c.CodeDir):
		return bad("code dir %q is not absolute", c.CodeDir)
	case c.TaskRoot != "" && (!filepath.IsAbs(c.TaskRoot) || filepath.Clean(c.TaskRoot) == "/"):
		return bad("task root %q must be an absolute path other than /", c.TaskRoot)
	case c.RuntimeDir != "" && !filepath.IsAbs(c.RuntimeDir):
		return bad("runtime dir %q is not absolute", c.RuntimeDir)
	case c.OptDir != "" && !filepath.IsAbs(c.OptDir):
		return bad("opt dir %q is not absolute", c.OptDir)
	case c.TmpDir != "" && !filepath.IsAbs(c.TmpDir):
		return bad("tmp dir %q is not absolute", c.TmpDir)
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.PidsMax == 0 {
		c.PidsMax = DefaultPidsMax
	}
	if c.TaskRoot == "" {
		c.TaskRoot = DefaultTaskRoot
	}
	c.TaskRoot = filepath.Clean(c.TaskRoot)
	return c
}

// CPUsForMemory returns Lambda's vCPU share for an on-demand function of memoryMB.
func CPUsForMemory(memoryMB int) float64 {
	return float64(memoryMB) / MiBPerVCPU
}

// Sandbox is one confined process tree.
//
// cfg (except cfg.CPUs), logger, isolated, limited, ownTmp and the cgroup handle are set
// by New and immutable afterwards. mu guards cfg.CPUs and the lifecycle fields (started,
// closed, cmd, and the platform's launcher state). All methods are safe for concurrent use.
type Sandbox struct {
	cfg      Config
	logger   *slog.Logger
	isolated bool      // namespaces, private mounts and unprivileged user are applied
	ownProc  bool      // isolated with a /proc of its own pid namespace
	limited  string    // why the sandbox is not fully confined; "" when it is
	ownTmp   bool      // New created cfg.TmpDir and Close removes it
	uid      *uidLease // the id leased for an isolated sandbox; nil when Config.UID was given
	cg       cgroup    // nil without cgroups

	mu      sync.Mutex
	started bool
	closed  bool
	cmd     *exec.Cmd
	plat    platformState
}

// cgroup is the per-sandbox cgroup, v1 (one directory per controller) or v2.
type cgroup interface {
	// path names the cgroup for logs.
	path() string
	maxMemoryUsed() uint64
	oomKilled() bool
	cpuTime() time.Duration
	// procs lists the processes in the cgroup.
	procs() ([]int, error)
	// kill sends SIGKILL to every process in the cgroup.
	kill() error
	// remove deletes the cgroup directories; it fails while processes remain.
	remove() error
	// setCPUs changes the CPU quota (0 = none).
	setCPUs(cpus float64) error
}

// New validates cfg, applies defaults, creates the sandbox's TmpDir when none is given
// and its cgroups. Without root or cgroups it still succeeds: the sandbox then runs a
// plain process, logs a warning and Limited says why. logger may be nil.
func New(cfg Config, logger *slog.Logger) (*Sandbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Sandbox{
		cfg:    cfg.withDefaults(),
		logger: logger.With("component", "sandbox", "sandbox", cfg.ID),
	}
	if s.cfg.TmpDir == "" {
		dir, err := os.MkdirTemp("", "shoal-tmp-"+cfg.ID+"-")
		if err != nil {
			return nil, fmt.Errorf("create tmp dir: %w", err)
		}
		s.cfg.TmpDir = dir
		s.ownTmp = true
	}
	if err := s.setup(); err != nil {
		s.cleanupTmp()
		return nil, err
	}
	return s, nil
}

func (s *Sandbox) cleanupTmp() {
	if s.ownTmp {
		if err := os.RemoveAll(s.cfg.TmpDir); err != nil {
			s.logger.Warn("remove tmp dir", "dir", s.cfg.TmpDir, "err", err)
		}
	}
}

// TaskRoot returns where the function sees its code: Config.TaskRoot when isolated,
// else CodeDir.
func (s *Sandbox) TaskRoot() string {
	if s.isolated {
		return s.cfg.TaskRoot
	}
	return s.cfg.CodeDir
}

// RuntimeRoot returns where the function sees RuntimeDir: RuntimeRoot when isolated,
// else RuntimeDir itself ("" when none was configured).
func (s *Sandbox) RuntimeRoot() string {
	if s.isolated && s.cfg.RuntimeDir != "" {
		return RuntimeRoot
	}
	return s.cfg.RuntimeDir
}

// OptRoot returns where the function sees its layers: OptRoot when isolated, else
// OptDir itself; "/opt", as Lambda sets its paths, when there are none.
func (s *Sandbox) OptRoot() string {
	if s.isolated || s.cfg.OptDir == "" {
		return OptRoot
	}
	return s.cfg.OptDir
}

// TmpDir returns the function's /tmp as the function sees it: "/tmp" when isolated,
// else the host directory (set TMPDIR to it for a plain process).
func (s *Sandbox) TmpDir() string {
	if s.isolated {
		return "/tmp"
	}
	return s.cfg.TmpDir
}

// HostTmpDir returns the host directory backing the function's /tmp.
func (s *Sandbox) HostTmpDir() string { return s.cfg.TmpDir }

// Isolated reports whether namespaces, private mounts and the unprivileged user apply.
func (s *Sandbox) Isolated() bool { return s.isolated }

// UID and GID are the identity an isolated sandbox's processes run as.
func (s *Sandbox) UID() int { return s.cfg.UID }

// GID is the group id of an isolated sandbox's processes.
func (s *Sandbox) GID() int { return s.cfg.GID }

// Limited returns "" when the sandbox is fully confined (cgroup limits, and isolation
// when Config.Isolate asked for it), else why not.
func (s *Sandbox) Limited() string { return s.limited }

// Config returns the configuration with defaults applied.
func (s *Sandbox) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// CgroupPath returns the sandbox's cgroup directory (for v1, the memory controller's),
// or "" without cgroups.
func (s *Sandbox) CgroupPath() string {
	if s.cg == nil {
		return ""
	}
	return s.cg.path()
}

// MaxMemoryUsedBytes returns the peak memory use of the sandbox, 0 if unknown.
func (s *Sandbox) MaxMemoryUsedBytes() uint64 {
	if s.cg == nil {
		return 0
	}
	return s.cg.maxMemoryUsed()
}

// OOMKilled reports whether the kernel killed a process of the sandbox for exceeding
// the memory limit.
func (s *Sandbox) OOMKilled() bool {
	if s.cg == nil {
		return false
	}
	return s.cg.oomKilled()
}

// CPUTime returns the CPU time used by the sandbox's processes, 0 if unknown.
func (s *Sandbox) CPUTime() time.Duration {
	if s.cg == nil {
		return 0
	}
	return s.cg.cpuTime()
}

// SetCPUs changes the CPU quota of a running sandbox (0 removes it). A Lambda-sized
// quota is small (128 MB buys 7.2 ms of CPU per 100 ms), so a caller may start a sandbox
// without a quota, let the runtime initialise at full speed, then apply the share.
// Without a cgroup it does nothing.
func (s *Sandbox) SetCPUs(cpus float64) error {
	if cpus < 0 {
		return fmt.Errorf("%w: cpus %g is negative", ErrInvalidConfig, cpus)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cg == nil || s.closed {
		return nil
	}
	if err := s.cg.setCPUs(cpus); err != nil {
		return fmt.Errorf("set cpu quota: %w", err)
	}
	s.cfg.CPUs = cpus
	return nil
}

// Pid returns the pid (in the host's namespace) of the started process, 0 before Start.
func (s *Sandbox) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// limitedf appends a reason to s.limited and logs it as a warning.
func (s *Sandbox) limitedf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if s.limited == "" {
		s.limited = msg
	} else {
		s.limited += "; " + msg
	}
	s.logger.Warn("sandbox not fully confined", "reason", msg)
}
