package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStatFile(t *testing.T) {
	dir := t.TempDir()
	stat := filepath.Join(dir, "cpu.stat")
	if err := os.WriteFile(stat, []byte("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newStatFile(stat)
	if got := f.key("usage_usec"); got != 1234 {
		t.Errorf("usage_usec = %d", got)
	}
	if got := f.key("system_usec"); got != 234 {
		t.Errorf("system_usec = %d", got)
	}
	if got := f.key("nope"); got != 0 {
		t.Errorf("missing key = %d", got)
	}
	// The file changes under the open descriptor, as a cgroup file does.
	if err := os.WriteFile(stat, []byte("usage_usec 99999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := f.key("usage_usec"); got != 99999 {
		t.Errorf("after a change: %d", got)
	}
	f.close()
	if got := f.key("usage_usec"); got != 0 {
		t.Errorf("after close: %d", got)
	}

	usage := filepath.Join(dir, "cpuacct.usage")
	if err := os.WriteFile(usage, []byte("5000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := newStatFile(usage)
	defer u.close()
	if got := u.uint(); got != 5000000 {
		t.Errorf("cpuacct.usage = %d", got)
	}
	if got := newStatFile(filepath.Join(dir, "missing")).uint(); got != 0 {
		t.Errorf("missing file = %d", got)
	}
}
