package runtimes

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var execLookPath = exec.LookPath

var (
	pyOnce sync.Once
	pyPath string
	pyErr  error
)

// realPython resolves python3 past a pyenv shim, once per process.
func realPython() (string, error) {
	pyOnce.Do(func() {
		p, err := exec.LookPath("python3")
		if err != nil {
			pyErr = err
			return
		}
		if !strings.Contains(p, "/shims/") {
			pyPath = p
			return
		}
		out, err := exec.Command("python3", "-c", "import sys; print(sys.executable)").Output()
		if err != nil {
			pyErr = err
			return
		}
		real := strings.TrimSpace(string(out))
		if st, err := os.Stat(real); err != nil || st.IsDir() {
			pyErr = os.ErrNotExist
			return
		}
		pyPath = filepath.Clean(real)
	})
	return pyPath, pyErr
}
