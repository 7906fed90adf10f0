package env

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/internal/sandbox"
)

// Sandbox is the process container of one environment: what an environment needs
// of internal/sandbox.
type Sandbox interface {
	Start(cmd *exec.Cmd) error
	TaskRoot() string
	RuntimeRoot() string
	OptRoot() string
	TmpDir() string
	MaxMemoryUsedBytes() uint64
	OOMKilled() bool
	CPUTime() time.Duration
	Pid() int
	Kill() error
	Close() error
	Limited() string
	CgroupPath() string
}

var _ Sandbox = (*sandbox.Sandbox)(nil)

// SandboxFactory creates the sandbox of one environment.
type SandboxFactory func(cfg sandbox.Config, logger *slog.Logger) (Sandbox, error)

// DefaultSandboxes creates sandboxes with internal/sandbox.
func DefaultSandboxes(cfg sandbox.Config, logger *slog.Logger) (Sandbox, error) {
	return sandbox.New(cfg, logger)
}

// memReader reads a sandbox's peak memory on the invoke path: one pread of a
// cgroup file kept open (cgroup files regenerate on a read at offset 0)
// instead of open, read and close each time.
//
// A cgroup read costs about ten microseconds, a tenth of a warm invoke, so
// invocations shorter than memFreshShort reuse a reading younger than
// memFreshAge: the peak only grows, and a short invocation adds little.
type memReader struct {
	f      *os.File // nil: no cgroup file found
	fd     int      // f's descriptor, read with pread
	box    Sandbox
	last   atomic.Uint64 // bytes at the last reading
	lastAt atomic.Int64  // unix nanoseconds of the last reading
}

const (
	memFreshShort = time.Millisecond
	memFreshAge   = 100 * time.Millisecond
)

// peakFor returns the peak for an invocation of duration d ending at now.
func (m *memReader) peakFor(now time.Time, d time.Duration) uint64 {
	if d < memFreshShort {
		if at := m.lastAt.Load(); at != 0 && now.UnixNano()-at < int64(memFreshAge) {
			return m.last.Load()
		}
	}
	v := m.peak()
	if v == 0 { // the sandbox is gone: keep the last reading
		return m.last.Load()
	}
	m.last.Store(v)
	m.lastAt.Store(now.UnixNano())
	return v
}

func newMemReader(box Sandbox) *memReader {
	m := &memReader{box: box}
	if dir := box.CgroupPath(); dir != "" {
		for _, name := range []string{"memory.max_usage_in_bytes", "memory.peak"} {
			if f, err := os.Open(dir + "/" + name); err == nil {
				m.f, m.fd = f, int(f.Fd())
				break
			}
		}
	}
	return m
}

// peak returns the peak memory use in bytes.
func (m *memReader) peak() uint64 {
	if m.f != nil {
		// One pread: File.ReadAt would read again to reach end of file.
		var buf [32]byte
		n, _ := syscall.Pread(m.fd, buf[:], 0)
		if v, err := strconv.ParseUint(string(bytes.TrimSpace(buf[:max(n, 0)])), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return peakMemory(m.box)
}

func (m *memReader) close() {
	if m.f != nil {
		m.f.Close()
	}
}

// peakMemory returns the sandbox's peak memory use, falling back to the main
// process's high-water mark when the sandbox has no memory cgroup.
func peakMemory(box Sandbox) uint64 {
	if b := box.MaxMemoryUsedBytes(); b > 0 {
		return b
	}
	pid := box.Pid()
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Bytes()
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
