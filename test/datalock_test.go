package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
)

// TestSecondShoalOnOneDataDir: a second `shoal up` on a data directory that
// a running shoal holds exits at once with an error naming the holder's pid,
// and touches nothing: the first keeps serving, and its usage ledger keeps
// every invocation.
func TestSecondShoalOnOneDataDir(t *testing.T) {
	dataDir := t.TempDir()
	first := runShoalUp(t, dataDir, freePort(t))
	s := first.api(dataDir)
	start := time.Now()
	createGoFn(t, s, "held")
	const before, after = 20, 20
	for i := range before {
		invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}

	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secondAddr := freePort(t)
	cmd := exec.CommandContext(c, shoalBin, "up", "--data", dataDir, "--listen", secondAddr)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(t0)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("the second shoal up: %v, want a non-zero exit\n%s", err, out)
	}
	t.Logf("the second shoal up exited %d after %v: %s", ee.ExitCode(), took.Round(time.Millisecond), strings.TrimSpace(string(out)))
	if took > 2*time.Second {
		t.Errorf("the second shoal up took %v to give up, want at once (under 2 s)", took)
	}
	pid := strconv.Itoa(first.cmd.Process.Pid)
	if !strings.Contains(string(out), "pid "+pid) || !strings.Contains(string(out), dataDir) {
		t.Errorf("the second shoal up's error names neither the holder (pid %s) nor the directory:\n%s", pid, out)
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, "shoal.lock")); err != nil || strings.TrimSpace(string(b)) != pid {
		t.Errorf("lock file holds %q (%v), want the first shoal's pid %s", b, err, pid)
	}

	// The first one serves on, and its ledger has every invocation.
	if err := first.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the first shoal is gone: %v", err)
	}
	for i := range after {
		invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("held"), Payload: []byte(fmt.Sprintf(`{"m":%d}`, i))})
	}
	poll.Until(t, 30*time.Second, func() error {
		events, err := ledgerSince(s.http, first.endpoint, start)
		if err != nil {
			return err
		}
		n := 0
		for _, ev := range events {
			if ev.Kind == meter.KindInvocation && ev.Function == "held" {
				n++
			}
		}
		if n != before+after {
			return fmt.Errorf("the ledger holds %d invocations of held, want %d", n, before+after)
		}
		return nil
	})
	first.stop(t)
}
