//go:build linux

package sched

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// policies returns the policy of every thread of the current process.
func policies(t *testing.T) map[int]uint32 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]uint32{}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		if attr, err := unix.SchedGetAttr(tid, 0); err == nil {
			out[tid] = attr.Policy
		}
	}
	return out
}

// TestBatchProcess runs in a child process of the test binary, so that the
// policy it sets does not reach the other tests.
func TestBatchProcess(t *testing.T) {
	if os.Getenv("SCHED_TEST_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestBatchProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "SCHED_TEST_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestBatchProcess") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	// Several threads exist before the change (a locked one among them).
	locked := make(chan struct{})
	release := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		close(locked)
		<-release
	}()
	<-locked
	defer close(release)
	before := policies(t)
	if len(before) < 2 {
		t.Fatalf("only %d threads", len(before))
	}
	for tid, p := range before {
		if p != unix.SCHED_NORMAL {
			t.Fatalf("thread %d starts with policy %d", tid, p)
		}
	}
	if err := BatchProcess(); err != nil {
		t.Fatal(err)
	}
	for tid, p := range policies(t) {
		if p != unix.SCHED_BATCH {
			t.Errorf("thread %d has policy %d after BatchProcess", tid, p)
		}
	}
	// A process started afterwards inherits the policy.
	out, err := exec.Command("grep", "^policy", "/proc/self/sched").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(out)), ""); got != fmt.Sprintf("policy:%d", unix.SCHED_BATCH) {
		t.Errorf("child process: %q", got)
	}
}

func TestBatchThread(t *testing.T) {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := BatchThread(); err != nil {
			errc <- err
			return
		}
		attr, err := unix.SchedGetAttr(0, 0)
		if err == nil && attr.Policy != unix.SCHED_BATCH {
			err = fmt.Errorf("policy %d", attr.Policy)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Only that thread changed.
	if attr, err := unix.SchedGetAttr(0, 0); err != nil || attr.Policy != unix.SCHED_NORMAL {
		t.Fatalf("calling thread: %+v, %v", attr, err)
	}
}

func TestEnabled(t *testing.T) {
	t.Setenv(OptOut, "")
	if !Enabled() {
		t.Error("not enabled by default")
	}
	t.Setenv(OptOut, "normal")
	if Enabled() {
		t.Error("enabled with SHOAL_SCHED=normal")
	}
}
