//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/internal/sched"
)

// How a process is started (Linux).
//
// os/exec runs no code of ours between fork and exec, so everything the child must
// inherit is set up on a dedicated OS thread that then forks it:
//
//	launcher goroutine ── LockOSThread (never unlocked: the thread dies with the goroutine)
//	  │ isolated: unshare(CLONE_NEWNS|CLONE_FS); / made rprivate; CodeDir bound read-only
//	  │           on TaskRoot, RuntimeDir on /var/runtime, OptDir on /opt, TmpDir on /tmp,
//	  │           a fresh /dev/shm; no_new_privs
//	  │ cgroup v1: the thread joins the sandbox's cgroups (tasks file)
//	  │ Batch: the thread takes the SCHED_BATCH policy, which the child inherits
//	  │ cmd.Start: clone(CLONE_NEWPID|NEWIPC|NEWUTS [+CLONE_INTO_CGROUP on v2]), setuid,
//	  │           PTRACE_TRACEME, exec: the child stops before its first instruction
//	  │ cgroup v1: the thread goes back to its own cgroups
//	  │ isolated: a procfs of the child's pid namespace is mounted on /proc (the procfs
//	  │           "pidns" option of recent kernels), then the child is let go (PTRACE_DETACH)
//	  └ waits for Close, then exits
//
// The child is therefore inside its cgroups, mount namespace and own /proc before its
// first instruction: limits apply from the start, with no window where it runs unconfined.
// The thread lives as long as the sandbox because Pdeathsig fires when the thread that
// forked the child exits: closing the sandbox, or the death of shoal, kills the child.

// platformState is the Linux part of Sandbox, guarded by Sandbox.mu.
type platformState struct {
	release chan struct{} // closed by Close: the launcher thread exits
}

// probeProcPidns checks once whether procfs takes the "pidns" option (recent kernels), which
// lets a /proc showing only the sandbox's processes be mounted from outside its pid
// namespace.
var probeProcPidns = sync.OnceValue(func() error {
	nsfd, err := unix.Open("/proc/self/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen proc: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetFd(fsfd, "pidns", nsfd); err != nil {
		return fmt.Errorf("procfs pidns option: %w", err)
	}
	return nil
})

// probeIsolation checks once that this process may create mount namespaces.
var probeIsolation = sync.OnceValue(func() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread's namespace changes
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("make / private: %w", err)
			return
		}
		errc <- nil
	}()
	return <-errc
})

func (s *Sandbox) setup() error {
	root := os.Geteuid() == 0
	if s.cfg.Isolate {
		if !root {
			s.limitedf("isolation needs root: running a plain process as uid %d", os.Geteuid())
		} else if err := probeIsolation(); err != nil {
			s.limitedf("isolation unavailable (%v): running a plain process", err)
		} else {
			s.isolated = true
			if err := probeProcPidns(); err != nil {
				s.limitedf("the host's /proc stays visible inside the sandbox (%v)", err)
			} else {
				s.ownProc = true
			}
		}
	}
	if s.isolated && s.cfg.UID == 0 {
		lease, err := leaseUID()
		if err != nil {
			return err
		}
		s.uid = lease
		s.cfg.UID, s.cfg.GID = lease.id, lease.id
	} else if s.isolated && s.cfg.GID == 0 {
		s.cfg.GID = s.cfg.UID
	}
	if s.isolated && s.cfg.NetNS == 0 {
		s.limitedf("shares the host's network namespace")
	}
	if err := s.setupCgroup(); err != nil {
		s.limitedf("no cgroup limits (%v)", err)
	}
	if s.isolated {
		if err := s.prepareHost(); err != nil {
			s.uid.close()
			if s.cg != nil {
				_ = s.cg.remove()
			}
			return err
		}
	}
	return nil
}

func (s *Sandbox) setupCgroup() error {
	h, err := detectCgroups()
	if err != nil {
		return err
	}
	if h.v2 {
		cg, err := newCgroupV2(h, s.cfg)
		if err != nil {
			return err
		}
		s.cg = cg
	} else {
		cg, err := newCgroupV1(h, s.cfg)
		if err != nil {
			return err
		}
		s.cg = cg
	}
	if len(h.missing) > 0 {
		s.limitedf("cgroup controllers missing: %s", strings.Join(h.missing, ", "))
	}
	return nil
}

// prepareHost makes the mount points and gives the unprivileged user its /tmp and read
// access to the code.
func (s *Sandbox) prepareHost() error {
	points := []string{s.cfg.TaskRoot}
	if s.cfg.RuntimeDir != "" {
		points = append(points, RuntimeRoot)
	}
	if s.cfg.OptDir != "" {
		points = append(points, OptRoot)
	}
	for _, p := range points {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", p, err)
		}
	}
	if err := os.Chown(s.cfg.TmpDir, s.cfg.UID, s.cfg.GID); err != nil {
		return fmt.Errorf("chown tmp dir: %w", err)
	}
	if err := os.Chmod(s.cfg.TmpDir, 0o700); err != nil {
		return fmt.Errorf("chmod tmp dir: %w", err)
	}
	for _, dir := range []string{s.cfg.CodeDir, s.cfg.RuntimeDir, s.cfg.OptDir} {
		if dir == "" {
			continue
		}
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("code: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("code: %s is not a directory", dir)
		}
		if perm := info.Mode().Perm(); perm&0o005 != 0o005 {
			if err := os.Chmod(dir, perm|0o005); err != nil {
				return fmt.Errorf("make %s readable: %w", dir, err)
			}
		}
	}
	return nil
}

// Start starts cmd inside the sandbox: in its cgroup from birth, and when isolated in
// new mount/pid/ipc/uts namespaces as the unprivileged user, seeing CodeDir read-only at
// TaskRoot and its own /tmp. cmd.Path and cmd.Dir are resolved inside the sandbox (use
// TaskRoot/RuntimeRoot paths). Start may be called once; the caller waits for cmd.
func (s *Sandbox) Start(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return ErrStarted
	}
	s.started = true

	attr := cmd.SysProcAttr
	if attr == nil {
		attr = &syscall.SysProcAttr{}
		cmd.SysProcAttr = attr
	}
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
	if s.isolated {
		attr.Cloneflags |= syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS
		attr.Credential = &syscall.Credential{Uid: uint32(s.cfg.UID), Gid: uint32(s.cfg.GID)}
		// Stop the child at its exec until its /proc is mounted.
		attr.Ptrace = s.ownProc
	}
	if cg, ok := s.cg.(*cgroupV2); ok {
		attr.UseCgroupFD = true
		attr.CgroupFD = cg.fd
	}

	release := make(chan struct{})
	errc := make(chan error, 1)
	go s.launch(cmd, release, errc)
	if err := <-errc; err != nil {
		return err
	}
	s.cmd = cmd
	s.plat.release = release
	s.logger.Debug("sandbox started", "pid", cmd.Process.Pid, "isolated", s.isolated, "cgroup", s.CgroupPath())
	return nil
}

// launch runs on its own locked OS thread; see the comment at the top of this file.
func (s *Sandbox) launch(cmd *exec.Cmd, release <-chan struct{}, errc chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread's namespace and cgroups change
	if s.isolated && s.cfg.NetNS != 0 {
		if err := unix.Setns(s.cfg.NetNS, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join network namespace: %w", err)
			return
		}
	}
	if s.isolated {
		if err := s.mountPrivate(); err != nil {
			errc <- err
			return
		}
		// no_new_privs is per thread and inherited: setuid binaries cannot raise the
		// function's privileges back.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			errc <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
	}
	if s.cfg.Batch {
		// The policy is per thread and inherited by the child; this thread exits with
		// the sandbox, so it need not be restored.
		if err := sched.BatchThread(); err != nil {
			s.logger.Warn("cannot run the process under SCHED_BATCH", "err", err)
		}
	}
	var leave func()
	placeAfter := false
	if cg, ok := s.cg.(*cgroupV1); ok {
		var err error
		if leave, err = cg.enterThread(); err != nil {
			s.logger.Warn("cannot start inside the cgroup; moving the process after start", "err", err)
			placeAfter = true
		}
	}
	err := cmd.Start()
	if leave != nil {
		leave()
	}
	if err != nil {
		errc <- fmt.Errorf("start %s: %w", cmd.Path, err)
		return
	}
	if placeAfter {
		s.placeAfterStart(cmd.Process.Pid)
	}
	if cmd.SysProcAttr.Ptrace {
		if err := mountProcAndRelease(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			errc <- fmt.Errorf("start %s: %w", cmd.Path, err)
			return
		}
	}
	errc <- nil
	<-release
}

// Codes of siginfo_t.si_code for SIGCHLD.
const (
	cldTrapped = 4
	cldStopped = 5
)

// mountProcAndRelease waits for the traced child pid to stop at its exec, mounts a procfs
// of its pid namespace on /proc (in the mount namespace the calling thread shares with
// it), and detaches from it. It must run on the thread that started the child.
func mountProcAndRelease(pid int) error {
	var info unix.Siginfo
	for {
		// WNOWAIT: an exit stays for the caller's Wait to collect.
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT|unix.WALL, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for exec stop: %w", err)
		}
	}
	if info.Code != cldTrapped && info.Code != cldStopped {
		return nil // it died before running anything; Wait reports how
	}
	if err := mountProc(pid); err != nil {
		return err
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("release process: %w", err)
	}
	return nil
}

func mountProc(pid int) error {
	nsfd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open pid namespace: %w", err)
	}
	defer unix.Close(nsfd)
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen proc: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetFd(fsfd, "pidns", nsfd); err != nil {
		return fmt.Errorf("procfs pidns: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create procfs: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("fsmount proc: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, "/proc", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return nil
}

// placeAfterStart writes pid to each v1 cgroup.procs (the racy fallback).
func (s *Sandbox) placeAfterStart(pid int) {
	cg := s.cg.(*cgroupV1)
	for _, dir := range cg.uniq {
		if err := writeCG(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			s.logger.Warn("process not placed in its cgroup", "dir", dir, "err", err)
		}
	}
}

// mountPrivate gives the calling (locked) thread a private mount namespace with the
// sandbox's view of the file system.
func (s *Sandbox) mountPrivate() error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	// Code first: CodeDir may itself live under the host's /tmp.
	if err := bind(s.cfg.CodeDir, s.cfg.TaskRoot, true); err != nil {
		return err
	}
	if s.cfg.RuntimeDir != "" {
		if err := bind(s.cfg.RuntimeDir, RuntimeRoot, true); err != nil {
			return err
		}
	}
	if s.cfg.OptDir != "" {
		if err := bind(s.cfg.OptDir, OptRoot, true); err != nil {
			return err
		}
	}
	if err := bind(s.cfg.TmpDir, "/tmp", false); err != nil {
		return err
	}
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount("shm", "/dev/shm", "tmpfs", flags, "mode=1777"); err != nil {
			return fmt.Errorf("mount /dev/shm: %w", err)
		}
	}
	return nil
}

// bind mounts src on dst, nosuid and nodev, read-only when ro.
func bind(src, dst string, ro bool) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV)
	if ro {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dst, err)
	}
	return nil
}

// Kill sends SIGKILL to every process of the sandbox: the whole cgroup, and the process
// group (plain) or pid namespace (isolated) of the started process. Without a cgroup or
// pid namespace it also kills the started process's descendants found through /proc
// (a daemon that left both the group and the tree cannot be found then). It does not
// wait for them to exit; Close does.
func (s *Sandbox) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

func (s *Sandbox) killLocked() error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		p := s.cmd.Process
		// Signal 0 fails once the caller has reaped the leader, after which its pid (and
		// process group id) may belong to someone else.
		if p.Signal(syscall.Signal(0)) == nil && !s.isolated {
			if s.cg == nil {
				killDescendants(p.Pid)
			}
			_ = unix.Kill(-p.Pid, unix.SIGKILL)
		}
		// In a pid namespace, the death of its first process kills all the others.
		if err := p.Kill(); err != nil && !isProcessDone(err) {
			errs = append(errs, fmt.Errorf("kill %d: %w", p.Pid, err))
		}
	}
	if s.cg != nil {
		if err := s.cg.kill(); err != nil {
			errs = append(errs, fmt.Errorf("kill cgroup %s: %w", s.cg.path(), err))
		}
	}
	return errors.Join(errs...)
}

// Close kills the sandbox's processes, waits for them to leave the cgroup, removes the
// cgroup and the tmp dir New created, and lets the launcher thread (and with it the
// private mount namespace) go. It is idempotent.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	errs := []error{s.killLocked()}
	if s.plat.release != nil {
		close(s.plat.release)
	}
	if s.cg != nil {
		errs = append(errs, s.cg.remove())
	}
	s.cleanupTmp()
	// The processes are gone with the cgroup; without one, the id may still
	// have a straggler, but its pid namespace died with its first process.
	s.uid.close()
	return errors.Join(errs...)
}
