package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHostMetricsMeasure(t *testing.T) {
	m := newHostMetrics()
	t0 := time.Now()
	m.Sample(t0, 2)
	// Burn some CPU in this process so the next sample has something to see.
	end := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	cpu, mem := m.Sample(time.Now(), 2)
	t.Logf("source %s: cpu %.2f, memory %d MB (%d)", m.Source(), cpu, mem, x)
	if cpu <= 0 || mem <= 0 {
		t.Errorf("cpu %.3f, memory %d MB: want both positive", cpu, mem)
	}
}

func TestInInstanceCgroup(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    bool
	}{
		{"4:memory:/shoal/instance-i-1\n3:cpu,cpuacct:/shoal/instance-i-1\n", true},
		{"0::/user.slice/shoal/instance-i-1\n", true},
		{"0::/user.slice/session-2.scope\n", false},
		{"4:memory:/shoal/instance-i-10\n", false},
	} {
		p := filepath.Join(dir, "cgroup")
		if err := os.WriteFile(p, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := inInstanceCgroup(p, "i-1"); got != tc.want {
			t.Errorf("%q: confined %v, want %v", tc.content, got, tc.want)
		}
	}
}
