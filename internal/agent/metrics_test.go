package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCgroupParsing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name       string
		cgroup     string
		mountinfo  string
		wantOwn    map[string]string
		wantMounts map[string]string
	}{
		{
			name:   "v1 with named and v2 hierarchies",
			cgroup: "12:pids:/shoal/instance-i-1\n4:cpu,cpuacct:/shoal/instance-i-1\n3:memory:/process_api/x/shoal/instance-i-1\n1:name=systemd:/\n0::/\n",
			mountinfo: "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n" +
				"31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n" +
				"32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n" +
				"33 25 0:29 /sub /mnt/bind rw - cgroup cgroup rw,pids\n",
			wantOwn: map[string]string{"pids": "/shoal/instance-i-1", "cpu": "/shoal/instance-i-1", "cpuacct": "/shoal/instance-i-1",
				"memory": "/process_api/x/shoal/instance-i-1", "name=systemd": "/", "": "/"},
			wantMounts: map[string]string{"": "/sys/fs/cgroup/unified", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
				"cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"},
		},
		{
			name:       "pure v2",
			cgroup:     "0::/user.slice/a\n",
			mountinfo:  "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
			wantOwn:    map[string]string{"": "/user.slice/a"},
			wantMounts: map[string]string{"": "/sys/fs/cgroup"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.wantOwn, ownCgroups(write("cgroup", tc.cgroup))); d != "" {
				t.Errorf("own (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantMounts, cgroupMounts(write("mountinfo", tc.mountinfo))); d != "" {
				t.Errorf("mounts (-want +got):\n%s", d)
			}
		})
	}
}

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
