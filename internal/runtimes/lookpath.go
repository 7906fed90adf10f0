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

// realPython resolves python3 past a pyenv shim, once per process. An
// interpreter that the unprivileged user of an isolated environment can run is
// preferred: a pyenv under /root (mode 0700) is not one, Debian's /usr/bin/python3 is.
func realPython() (string, error) {
	pyOnce.Do(func() {
		defer func() {
			if pyPath != "" && worldExecutable(pyPath) {
				return
			}
			for _, alt := range []string{"/usr/local/bin/python3", "/usr/bin/python3"} {
				if worldExecutable(alt) {
					pyPath, pyErr = alt, nil
					return
				}
			}
		}()
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

// worldExecutable reports whether any user can run path: the file and every
// directory above it are executable by others.
func worldExecutable(path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	st, err := os.Stat(real)
	if err != nil || st.IsDir() || st.Mode().Perm()&0o001 == 0 {
		return false
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" || dir == "." {
			return true
		}
	}
}
