package sandbox_test

import (
	"log/slog"
	"os"
	"os/exec"

	"github.com/shoal-dev/shoal/internal/sandbox"
)

// An execution environment: unpack the code, confine a runtime, read its usage.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	zipData, _ := os.ReadFile("function.zip")
	codeDir := "/var/lib/shoal/code/my-function-1"
	if err := sandbox.Unzip(zipData, codeDir, sandbox.UnzipLimits{}); err != nil {
		logger.Error("bad package", "err", err) // errors.Is(err, sandbox.ErrInvalidZip / ErrTooLarge)
		return
	}
	box, err := sandbox.New(sandbox.Config{
		ID:       "my-function-1-env-1",
		MemoryMB: 128,
		CPUs:     sandbox.CPUsForMemory(128),
		CodeDir:  codeDir,
		Isolate:  true,
	}, logger)
	if err != nil {
		logger.Error("sandbox", "err", err)
		return
	}
	defer box.Close()
	if why := box.Limited(); why != "" {
		logger.Warn("running without full confinement", "reason", why)
	}
	// Paths are the ones the function sees.
	cmd := exec.Command(box.TaskRoot() + "/bootstrap")
	cmd.Dir = box.TaskRoot()
	cmd.Env = []string{"LAMBDA_TASK_ROOT=" + box.TaskRoot(), "TMPDIR=" + box.TmpDir()}
	if err := box.Start(cmd); err != nil {
		logger.Error("start", "err", err)
		return
	}
	err = cmd.Wait()
	logger.Info("exited", "err", err, "oom", box.OOMKilled(),
		"max_memory", box.MaxMemoryUsedBytes(), "cpu", box.CPUTime())
}
