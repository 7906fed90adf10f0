//go:build linux

package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/internal/poll"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var idSeq int

// testID returns a sandbox ID unique across test processes running at once.
func testID(t testing.TB) string {
	idSeq++
	return fmt.Sprintf("test-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, idSeq)
}

// codeDir makes a code directory holding hello.txt.
func codeDir(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "code")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from code\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newSandbox(t testing.TB, cfg Config) *Sandbox {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = testID(t)
	}
	if cfg.CodeDir == "" {
		cfg.CodeDir = codeDir(t)
	}
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func requireRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// requireIsolation skips unless the sandbox can isolate.
func requireIsolation(t testing.TB, s *Sandbox) {
	t.Helper()
	if !s.Isolated() {
		t.Skipf("isolation unavailable: %s", s.Limited())
	}
}

func requireCgroup(t testing.TB, s *Sandbox) {
	t.Helper()
	if s.CgroupPath() == "" {
		t.Skipf("no cgroup: %s", s.Limited())
	}
}

// run starts sh -c script in s and returns its stdout after it exits.
func run(t *testing.T, s *Sandbox, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = s.TaskRoot()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := s.Start(cmd); err != nil {
		t.Fatalf("Start: %v", err)
	}
	err := cmd.Wait()
	if errb.Len() > 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return out.String(), err
}

// fields parses "key=value" lines.
func fields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestConfigValidate(t *testing.T) {
	ok := Config{ID: "fn-1.v2_x", CodeDir: "/code"}
	tests := []struct {
		name   string
		modify func(*Config)
		valid  bool
	}{
		{name: "minimal", modify: func(*Config) {}, valid: true},
		{name: "full", modify: func(c *Config) {
			c.MemoryMB, c.CPUs, c.PidsMax, c.TaskRoot, c.RuntimeDir, c.TmpDir, c.Isolate = 128, 0.07, 64, "/opt/task", "/rt", "/t", true
		}, valid: true},
		{name: "empty id", modify: func(c *Config) { c.ID = "" }},
		{name: "slash in id", modify: func(c *Config) { c.ID = "a/b" }},
		{name: "dotdot id", modify: func(c *Config) { c.ID = ".." }},
		{name: "negative memory", modify: func(c *Config) { c.MemoryMB = -1 }},
		{name: "negative cpus", modify: func(c *Config) { c.CPUs = -0.5 }},
		{name: "negative pids", modify: func(c *Config) { c.PidsMax = -1 }},
		{name: "no code dir", modify: func(c *Config) { c.CodeDir = "" }},
		{name: "relative code dir", modify: func(c *Config) { c.CodeDir = "code" }},
		{name: "task root /", modify: func(c *Config) { c.TaskRoot = "/" }},
		{name: "relative task root", modify: func(c *Config) { c.TaskRoot = "var/task" }},
		{name: "relative tmp", modify: func(c *Config) { c.TmpDir = "tmp" }},
		{name: "relative runtime", modify: func(c *Config) { c.RuntimeDir = "rt" }},
		{name: "relative opt", modify: func(c *Config) { c.OptDir = "opt" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.modify(&c)
			err := c.Validate()
			if tt.valid != (err == nil) {
				t.Fatalf("Validate() = %v, want valid=%v", err, tt.valid)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

// TestIsolated checks what an isolated function sees: its own /tmp, read-only code at
// /var/task, the unprivileged user, pid 1 in its own pid namespace, its cgroup.
func TestIsolated(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, Config{MemoryMB: 128, Isolate: true})
	requireIsolation(t, s)
	if s.TaskRoot() != DefaultTaskRoot || s.TmpDir() != "/tmp" {
		t.Fatalf("TaskRoot, TmpDir = %q, %q", s.TaskRoot(), s.TmpDir())
	}
	hostMarker := filepath.Join(os.TempDir(), "shoal-sandbox-test-"+s.Config().ID)
	defer os.Remove(hostMarker)
	script := fmt.Sprintf(`
echo uid=$(id -u)
echo gid=$(id -g)
echo pid=$$
echo tmp=$(ls -A /tmp | tr '\n' ' ')
echo fromtmp > /tmp/written && echo tmpwrite=ok
touch %s 2>/dev/null; echo hostmarker=$?
echo code=$(cat /var/task/hello.txt)
echo cwd=$(pwd)
touch /var/task/new 2>/dev/null && echo codewrite=ok || echo codewrite=denied
echo cgroup=$(grep -E '^[0-9]+:(memory|[^:]*):' /proc/self/cgroup | grep -E 'memory|^0::' | head -1)
echo ns=$(readlink /proc/self/ns/pid)
echo nnp=$(grep NoNewPrivs /proc/self/status | tr -d ' \t' | cut -d: -f2)
echo capeff=$(grep CapEff /proc/self/status | tr -d ' \t' | cut -d: -f2)
echo proc1=$(tr '\0' ' ' < /proc/1/cmdline)
echo nprocs=$(ls /proc | grep -c '^[0-9]')
`, hostMarker)
	out, err := run(t, s, script)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	t.Logf("inside the sandbox:\n%s", out)
	got := fields(out)
	hostNS, _ := os.Readlink("/proc/self/ns/pid")
	checks := []struct{ key, want string }{
		{"uid", strconv.Itoa(s.UID())},
		{"gid", strconv.Itoa(s.GID())},
		{"pid", "1"},
		{"tmp", ""},
		{"tmpwrite", "ok"},
		{"code", "hello from code"},
		{"cwd", "/var/task"},
		{"nnp", "1"},
		{"capeff", "0000000000000000"},
		{"codewrite", "denied"},
	}
	for _, c := range checks {
		if got[c.key] != c.want {
			t.Errorf("%s = %q, want %q\n%s", c.key, got[c.key], c.want, out)
		}
	}
	if s.ownProc {
		// Its /proc shows its own pid namespace: sh as 1, a handful of processes.
		if !strings.HasPrefix(got["proc1"], "/bin/sh -c") {
			t.Errorf("/proc/1/cmdline = %q, want the sandbox's shell", got["proc1"])
		}
		if n, _ := strconv.Atoi(got["nprocs"]); n < 1 || n > 5 {
			t.Errorf("/proc lists %s processes, want only the sandbox's", got["nprocs"])
		}
	} else {
		t.Logf("no private /proc: %s", s.Limited())
	}
	if got["ns"] == hostNS || got["ns"] == "" {
		t.Errorf("pid namespace %q, host %q: not a new namespace", got["ns"], hostNS)
	}
	if s.CgroupPath() != "" && !strings.HasSuffix(got["cgroup"], "/shoal/"+s.Config().ID) {
		t.Errorf("cgroup line %q does not name the sandbox's cgroup", got["cgroup"])
	}
	// The function's /tmp is the sandbox's TmpDir; the host's /tmp is untouched.
	if b, err := os.ReadFile(filepath.Join(s.HostTmpDir(), "written")); err != nil || string(b) != "fromtmp\n" {
		t.Errorf("TmpDir/written = %q, %v", b, err)
	}
	if _, err := os.Stat("/tmp/written"); err == nil {
		t.Errorf("/tmp/written exists on the host")
	}
	if _, err := os.Stat(hostMarker); err == nil && got["hostmarker"] == "0" {
		// The path is under the host's temp dir; inside, it lands in the private /tmp.
		t.Errorf("the function wrote %s on the host", hostMarker)
	}
	if _, err := os.Stat(filepath.Join(s.Config().CodeDir, "new")); err == nil {
		t.Errorf("the function wrote into the code dir")
	}
}

// optDir makes a layers directory holding bin/tool.
func optDir(t testing.TB) string {
	dir := filepath.Join(t.TempDir(), "opt")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("#!/bin/sh\necho from the layer\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // the sandbox makes it readable
		t.Fatal(err)
	}
	return dir
}

// TestIsolatedOpt: an isolated function sees OptDir, read-only, at /opt, and only it.
func TestIsolatedOpt(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, Config{Isolate: true, OptDir: optDir(t)})
	requireIsolation(t, s)
	if s.OptRoot() != "/opt" {
		t.Fatalf("OptRoot = %q", s.OptRoot())
	}
	out, err := run(t, s, `
echo tool=$(/opt/bin/tool)
echo ls=$(ls -A /opt | tr '\n' ' ')
touch /opt/new 2>/dev/null && echo optwrite=ok || echo optwrite=denied
`)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	got := fields(out)
	for _, c := range []struct{ key, want string }{{"tool", "from the layer"}, {"ls", "bin"}, {"optwrite", "denied"}} {
		if got[c.key] != c.want {
			t.Errorf("%s = %q, want %q\n%s", c.key, got[c.key], c.want, out)
		}
	}
}

// TestPlain runs without isolation: the function sees the host paths and runs as us.
func TestPlain(t *testing.T) {
	s := newSandbox(t, Config{MemoryMB: 64})
	if s.Isolated() {
		t.Fatal("isolated without Isolate")
	}
	if s.TaskRoot() != s.Config().CodeDir || s.TmpDir() != s.HostTmpDir() || s.OptRoot() != "/opt" {
		t.Fatalf("TaskRoot, TmpDir, OptRoot = %q, %q, %q", s.TaskRoot(), s.TmpDir(), s.OptRoot())
	}
	if opt := optDir(t); newSandbox(t, Config{OptDir: opt}).OptRoot() != opt {
		t.Errorf("a plain sandbox does not show its layers where they are")
	}
	out, err := run(t, s, fmt.Sprintf(`echo uid=$(id -u); echo code=$(cat %s/hello.txt); echo cg=$(cat /proc/self/cgroup | grep memory)`, s.TaskRoot()))
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	got := fields(out)
	if got["uid"] != strconv.Itoa(os.Getuid()) || got["code"] != "hello from code" {
		t.Errorf("got %v", got)
	}
	if s.CgroupPath() != "" && !strings.HasSuffix(got["cg"], "/shoal/"+s.Config().ID) && got["cg"] != "" {
		t.Errorf("cgroup %q does not name the sandbox", got["cg"])
	}
}

func TestStartTwiceAndCloseIdempotent(t *testing.T) {
	s := newSandbox(t, Config{})
	if _, err := run(t, s, "true"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(exec.Command("/bin/true")); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
	dir := s.HostTmpDir()
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("tmp dir %s still there: %v", dir, err)
	}
	if p := s.CgroupPath(); p != "" {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still there: %v", p, err)
		}
	}
	if err := s.Start(exec.Command("/bin/true")); !errors.Is(err, ErrStarted) {
		t.Fatalf("Start after Close = %v, want ErrStarted", err)
	}
}

// TestStaleCgroupReplaced creates a sandbox under the ID of one that was never closed
// (as after a crash): the leftover cgroup and its process are replaced.
func TestStaleCgroupReplaced(t *testing.T) {
	requireRoot(t)
	id := testID(t)
	old := newSandbox(t, Config{ID: id})
	requireCgroup(t, old)
	cmd := exec.Command("/bin/sleep", "1000")
	if err := old.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	s := newSandbox(t, Config{ID: id})
	if s.CgroupPath() != old.CgroupPath() {
		t.Fatalf("cgroup %q, want %q", s.CgroupPath(), old.CgroupPath())
	}
	if err := <-waited; err == nil {
		t.Fatal("the stale sandbox's process was not killed")
	}
	if out, err := run(t, s, "echo ok=1"); err != nil || fields(out)["ok"] != "1" {
		t.Fatalf("new sandbox: %v %q", err, out)
	}
}

// TestLauncherThreadsExit checks that closing sandboxes lets their launcher threads go.
func TestLauncherThreadsExit(t *testing.T) {
	threads := func() int {
		b, _ := os.ReadFile("/proc/self/status")
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		return 0
	}
	before := threads()
	const n = 8
	var boxes []*Sandbox
	var cmds []*exec.Cmd
	for range n {
		s := newSandbox(t, Config{})
		cmd := exec.Command("/bin/sleep", "1000")
		if err := s.Start(cmd); err != nil {
			t.Fatal(err)
		}
		boxes, cmds = append(boxes, s), append(cmds, cmd)
	}
	// Each running sandbox holds a thread (an idle one may have been taken for it).
	if during := threads(); during < n+1 {
		t.Fatalf("%d threads with %d sandboxes running", during, n)
	}
	for i, s := range boxes {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_ = cmds[i].Wait()
	}
	poll.Until(t, 10*time.Second, func() error {
		if now := threads(); now > before+2 {
			return fmt.Errorf("%d threads, %d before", now, before)
		}
		return nil
	})
}

func TestCallerTmpDirKept(t *testing.T) {
	tmp := t.TempDir()
	s := newSandbox(t, Config{TmpDir: tmp})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("caller's tmp dir removed: %v", err)
	}
}

// TestLimits checks the values the kernel reports for the sandbox's cgroup.
func TestLimits(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, Config{MemoryMB: 256, CPUs: 0.5, PidsMax: 77})
	requireCgroup(t, s)
	cg, ok := s.cg.(*cgroupV1)
	if !ok {
		t.Skip("checks cgroup v1 files")
	}
	want := map[string]string{
		"memory/memory.limit_in_bytes": strconv.Itoa(256 << 20),
		"cpu/cpu.cfs_quota_us":         "50000",
		"cpu/cpu.cfs_period_us":        "100000",
		"pids/pids.max":                "77",
	}
	for key, w := range want {
		ctrl, file, _ := strings.Cut(key, "/")
		dir, ok := cg.dirs[ctrl]
		if !ok {
			t.Logf("no %s controller", ctrl)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || strings.TrimSpace(string(b)) != w {
			t.Errorf("%s = %q, %v; want %s", key, b, err, w)
		}
	}
	// The cgroup holding all sandboxes weighs 8 host threads per CPU.
	if dir, ok := cg.dirs["cpu"]; ok {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "cpu.shares"))
		if got, want := strings.TrimSpace(string(b)), strconv.Itoa(min(8*1024*runtime.NumCPU(), 262144)); got != want {
			t.Errorf("shoal cpu.shares = %s, want %s", got, want)
		}
	}
}

// TestCPUQuota runs a busy loop under the smallest quota: the kernel throttles it; after
// SetCPUs(0) the quota is gone.
func TestCPUQuota(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, Config{CPUs: 0.01})
	requireCgroup(t, s)
	cg, ok := s.cg.(*cgroupV1)
	if !ok || cg.dirs["cpu"] == "" {
		t.Skip("checks the cgroup v1 cpu controller")
	}
	quota := func() string {
		b, _ := os.ReadFile(filepath.Join(cg.dirs["cpu"], "cpu.cfs_quota_us"))
		return strings.TrimSpace(string(b))
	}
	if q := quota(); q != "1000" {
		t.Fatalf("quota %s, want the 1000 µs minimum", q)
	}
	if _, err := run(t, s, `i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done`); err != nil {
		t.Fatal(err)
	}
	if n, _ := readKey(cg.dirs["cpu"], "cpu.stat", "nr_throttled"); n == 0 {
		t.Errorf("busy loop under a 1%% quota was never throttled (cpu time %v)", s.CPUTime())
	}
	if err := s.SetCPUs(0); err != nil {
		t.Fatal(err)
	}
	if q := quota(); q != "-1" {
		t.Errorf("quota after SetCPUs(0) = %s, want -1", q)
	}
	if err := s.SetCPUs(2); err != nil || quota() != "200000" || s.Config().CPUs != 2 {
		t.Errorf("SetCPUs(2): %v, quota %s", err, quota())
	}
}

// TestOOM allocates past the memory limit: the kernel kills the process and OOMKilled
// says so.
func TestOOM(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, Config{MemoryMB: 16, Isolate: true})
	requireCgroup(t, s)
	if _, ok := s.cg.(*cgroupV1); ok {
		if _, err := os.Stat(filepath.Join(s.CgroupPath(), "memory.oom_control")); err != nil {
			t.Skip("no memory controller")
		}
	}
	// dd fills a 64 MiB buffer from /dev/zero: every page is touched.
	out, err := run(t, s, "dd if=/dev/zero of=/dev/null bs=64M count=1 2>&1; echo survived")
	if strings.Contains(out, "survived") && !strings.Contains(out, "Killed") && err == nil && !s.OOMKilled() {
		t.Fatalf("dd with 64 MiB under a 16 MiB limit was not killed: %q", out)
	}
	t.Logf("dd: %v, output %q, peak %d bytes", err, out, s.MaxMemoryUsedBytes())
	if !s.OOMKilled() {
		t.Fatalf("OOMKilled() = false after %v, output %q", err, out)
	}
	if peak := s.MaxMemoryUsedBytes(); peak < 8<<20 || peak > 17<<20 {
		t.Errorf("MaxMemoryUsedBytes = %d, want between 8 MiB and the 16 MiB limit", peak)
	}
}

// TestOOMLeader is the case the agent sees: the started process itself is killed.
func TestOOMLeader(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t, Config{MemoryMB: 16, Isolate: true})
	requireCgroup(t, s)
	_, err := run(t, s, "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("dd: %v, want it killed", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("dd ended with %v, want SIGKILL", ws)
	}
	if !s.OOMKilled() {
		t.Fatal("OOMKilled() = false")
	}
}

func TestUsage(t *testing.T) {
	s := newSandbox(t, Config{MemoryMB: 128})
	requireCgroup(t, s)
	if s.OOMKilled() {
		t.Fatal("OOMKilled before start")
	}
	out, err := run(t, s, `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null; echo done`)
	if err != nil || !strings.Contains(out, "done") {
		t.Fatalf("script: %v %q", err, out)
	}
	if s.CPUTime() <= 0 {
		t.Errorf("CPUTime = %v after a busy loop", s.CPUTime())
	}
	if s.MaxMemoryUsedBytes() < 8<<20 {
		t.Errorf("MaxMemoryUsedBytes = %d after an 8 MiB buffer", s.MaxMemoryUsedBytes())
	}
	if s.OOMKilled() {
		t.Error("OOMKilled without OOM")
	}
}

// TestKillTree starts sh with background sleeps (one in its own session) and checks
// Kill leaves none of them alive.
func TestKillTree(t *testing.T) {
	for _, isolate := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolate=%v", isolate), func(t *testing.T) {
			s := newSandbox(t, Config{Isolate: isolate})
			if isolate {
				requireIsolation(t, s)
			}
			cmd := exec.Command("/bin/sh", "-c", `sleep 1000 & sleep 1000 & setsid sleep 1000 & (sleep 1000 &) ; echo ready; wait`)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(cmd); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() {
				buf := make([]byte, 64)
				n, _ := stdout.Read(buf)
				if !strings.Contains(string(buf[:n]), "ready") {
					t.Errorf("output %q", buf[:n])
				}
				waited <- cmd.Wait()
			}()
			// Every sleep is a descendant we can find through /proc.
			var tree []int
			poll.Until(t, 10*time.Second, func() error {
				tree = descendants(cmd.Process.Pid)
				if len(tree) < 4 {
					return fmt.Errorf("%d descendants so far", len(tree))
				}
				return nil
			})
			t.Logf("process tree: leader %d, sleeps %v", cmd.Process.Pid, tree)
			if s.CgroupPath() != "" {
				procs, err := s.cg.procs()
				if err != nil || len(procs) < 5 {
					t.Errorf("cgroup procs = %v, %v; want the shell and 4 sleeps", procs, err)
				}
			}
			if err := s.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			<-waited
			poll.Until(t, 10*time.Second, func() error {
				for _, pid := range tree {
					if alive(pid) {
						return fmt.Errorf("pid %d still alive", pid)
					}
				}
				if s.CgroupPath() != "" {
					if procs, _ := s.cg.procs(); len(procs) > 0 {
						return fmt.Errorf("cgroup still has %v", procs)
					}
				}
				return nil
			})
		})
	}
}

// descendants lists the live descendants of pid (the orphans that sh's subshells leave
// are found through the sandbox's cgroup or pid namespace instead).
func descendants(root int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	rootNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", root))
	rootPgid, _ := syscall.Getpgid(root)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == root {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+2:]
		f := strings.Fields(rest)
		if len(f) < 3 || f[0] == "Z" || !strings.Contains(s, "(sleep)") {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgid, _ := strconv.Atoi(f[2])
		parent[pid] = ppid
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		hostNS, _ := os.Readlink("/proc/self/ns/pid")
		sameNS := rootNS != hostNS && ns == rootNS
		if ppid == root || pgid == rootPgid || sameNS || inCgroupOf(pid, root) {
			out = append(out, pid)
		}
	}
	return out
}

// inCgroupOf reports whether pid shares root's memory (or v2) cgroup, when that is a
// sandbox cgroup.
func inCgroupOf(pid, root int) bool {
	a, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", root))
	return len(b) > 0 && strings.Contains(string(b), "/shoal/") && string(a) == string(b)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// TestCgroupV2 exercises the v2 code path (CLONE_INTO_CGROUP, cgroup.kill, removal) on
// the machine's cgroup2 mount, whatever controllers it offers.
func TestCgroupV2(t *testing.T) {
	requireRoot(t)
	mount := ""
	for _, m := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(m, "cgroup.subtree_control")); err == nil {
			mount = m
			break
		}
	}
	if mount == "" {
		t.Skip("no cgroup2 mount")
	}
	base := filepath.Join(mount, "shoal-test")
	cgroupHostOverride = &cgroupHost{v2: true, base: base}
	defer func() {
		cgroupHostOverride = nil
		_ = syscall.Rmdir(base)
	}()
	for _, isolate := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolate=%v", isolate), func(t *testing.T) {
			s := newSandbox(t, Config{MemoryMB: 64, CPUs: 0.25, PidsMax: 50, Isolate: isolate})
			requireCgroup(t, s)
			rel := strings.TrimPrefix(s.CgroupPath(), mount)
			cmd := exec.Command("/bin/sh", "-c", `sleep 1000 & echo cg=$(grep '^0::' /proc/self/cgroup | cut -d: -f3); wait`)
			stdout, _ := cmd.StdoutPipe()
			if err := s.Start(cmd); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			n, _ := stdout.Read(buf)
			if got := fields(string(buf[:n]))["cg"]; got != rel {
				t.Errorf("process cgroup %q, want %q", got, rel)
			}
			poll.Until(t, 10*time.Second, func() error {
				if procs, _ := s.cg.procs(); len(procs) < 2 {
					return fmt.Errorf("procs %v", procs)
				}
				return nil
			})
			if err := s.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			poll.Until(t, 10*time.Second, func() error {
				if procs, _ := s.cg.procs(); len(procs) > 0 {
					return fmt.Errorf("procs %v", procs)
				}
				return nil
			})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(s.CgroupPath()); !os.IsNotExist(err) {
				t.Errorf("cgroup dir left: %v", err)
			}
		})
	}
}

// TestNoCgroups checks that a sandbox without cgroups still runs, and says why it is
// limited.
func TestNoCgroups(t *testing.T) {
	noCgroups = true
	defer func() { noCgroups = false }()
	s := newSandbox(t, Config{MemoryMB: 128})
	if s.Limited() == "" || s.CgroupPath() != "" {
		t.Fatalf("Limited() = %q, CgroupPath = %q", s.Limited(), s.CgroupPath())
	}
	out, err := run(t, s, "echo ok=yes")
	if err != nil || fields(out)["ok"] != "yes" {
		t.Fatalf("run: %v %q", err, out)
	}
	if s.MaxMemoryUsedBytes() != 0 || s.OOMKilled() || s.CPUTime() != 0 {
		t.Error("usage reported without a cgroup")
	}
}

func TestDetectFrom(t *testing.T) {
	dir := t.TempDir()
	mountinfo := filepath.Join(dir, "mountinfo")
	self := filepath.Join(dir, "cgroup")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mountinfo, `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 /outer /sys/fs/cgroup/mem\040ory rw,relatime shared:5 - cgroup cgroup rw,memory
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`)
	write(self, "4:memory:/outer/inner\n2:cpu,cpuacct:/\n0::/\n")
	h, err := detectFrom(mountinfo, self)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory":  "/sys/fs/cgroup/mem ory/inner/shoal",
		"cpu":     "/sys/fs/cgroup/cpu,cpuacct/shoal",
		"cpuacct": "/sys/fs/cgroup/cpu,cpuacct/shoal",
	}
	if h.v2 || len(h.v1) != 3 {
		t.Fatalf("host %+v", h)
	}
	for c, w := range want {
		if h.v1[c].base != w {
			t.Errorf("%s base = %q, want %q", c, h.v1[c].base, w)
		}
	}
	if strings.Join(h.missing, ",") != "pids" {
		t.Errorf("missing = %v", h.missing)
	}
}

// TestBatch checks that Batch starts the process, and the threads and processes it
// starts, under SCHED_BATCH, and that without it the process keeps the usual policy.
func TestBatch(t *testing.T) {
	policyOf := func(t *testing.T, batch bool) (string, string) {
		s := newSandbox(t, Config{Batch: batch})
		// The shell reports its own policy and that of a child it starts; /proc's
		// sched file names the policy in its "policy" line.
		out, err := run(t, s, `grep '^policy' /proc/self/sched | tr -d ' '; sh -c "grep '^policy' /proc/self/sched | tr -d ' '"`)
		if err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		lines := strings.Fields(out)
		if len(lines) != 2 {
			t.Fatalf("output %q", out)
		}
		return lines[0], lines[1]
	}
	self, child := policyOf(t, true)
	if want := fmt.Sprintf("policy:%d", unix.SCHED_BATCH); self != want || child != want {
		t.Errorf("with Batch: process %s, its child %s; want %s", self, child, want)
	}
	self, child = policyOf(t, false)
	if want := fmt.Sprintf("policy:%d", unix.SCHED_NORMAL); self != want || child != want {
		t.Errorf("without Batch: process %s, its child %s; want %s", self, child, want)
	}
	// The launcher's policy does not leak into the test process's other threads.
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if attr.Policy != unix.SCHED_NORMAL {
		t.Errorf("calling thread's policy %d", attr.Policy)
	}
}

// TestOwnUIDs: every isolated sandbox runs under an id of its own from the
// range, and the id is free again once the sandbox is closed.
func TestOwnUIDs(t *testing.T) {
	requireRoot(t)
	a := newSandbox(t, Config{Isolate: true})
	requireIsolation(t, a)
	b := newSandbox(t, Config{Isolate: true})
	for _, s := range []*Sandbox{a, b} {
		if s.UID() < UIDRangeStart || s.UID() >= UIDRangeStart+UIDRangeSize || s.GID() != s.UID() {
			t.Fatalf("sandbox %s runs as %d:%d, outside the range", s.Config().ID, s.UID(), s.GID())
		}
	}
	if a.UID() == b.UID() {
		t.Fatalf("two sandboxes share uid %d", a.UID())
	}
	out, err := run(t, b, "id -u")
	if err != nil || strings.TrimSpace(out) != strconv.Itoa(b.UID()) {
		t.Fatalf("id -u = %q (%v), want %d", out, err, b.UID())
	}
	id := a.UID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(uidLockDir, strconv.Itoa(id)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("uid %d is still held after its sandbox closed: %v", id, err)
	}
}
