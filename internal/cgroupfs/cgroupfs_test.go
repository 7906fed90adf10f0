package cgroupfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name           string
		cgroup         string
		mountinfo      string
		wantMembership map[string]string
		wantMounts     []Mount
		wantPoints     map[string]string
	}{
		{
			name:   "v1 with named and v2 hierarchies",
			cgroup: "12:pids:/shoal/instance-i-1\n4:cpu,cpuacct:/shoal/instance-i-1\n3:memory:/process_api/x/shoal/instance-i-1\n1:name=systemd:/\n0::/\n",
			mountinfo: "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n" +
				"31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n" +
				"32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n" +
				"33 25 0:29 /sub /mnt/bind rw - cgroup cgroup rw,pids\n" +
				"34 25 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup ro,xattr,name=systemd\n" +
				"35 25 0:31 / /sys/fs/cgroup/memory2 rw - cgroup cgroup rw,memory\n" +
				"36 25 0:32 / /proc rw - proc proc rw\n",
			wantMembership: map[string]string{"pids": "/shoal/instance-i-1", "cpu": "/shoal/instance-i-1", "cpuacct": "/shoal/instance-i-1",
				"memory": "/process_api/x/shoal/instance-i-1", "name=systemd": "/", "": "/"},
			wantMounts: []Mount{
				{Root: "/", Point: "/sys/fs/cgroup/unified", V2: true},
				{Root: "/", Point: "/sys/fs/cgroup/cpu,cpuacct", Controllers: []string{"cpu", "cpuacct"}},
				{Root: "/", Point: "/sys/fs/cgroup/memory", Controllers: []string{"memory"}},
				{Root: "/sub", Point: "/mnt/bind", Controllers: []string{"pids"}},
				{Root: "/", Point: "/sys/fs/cgroup/systemd", Controllers: []string{"xattr", "name=systemd"}},
				{Root: "/", Point: "/sys/fs/cgroup/memory2", Controllers: []string{"memory"}},
			},
			wantPoints: map[string]string{"": "/sys/fs/cgroup/unified", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
				"cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory",
				"xattr": "/sys/fs/cgroup/systemd", "name=systemd": "/sys/fs/cgroup/systemd"},
		},
		{
			name:           "pure v2",
			cgroup:         "0::/user.slice/a\n",
			mountinfo:      "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
			wantMembership: map[string]string{"": "/user.slice/a"},
			wantMounts:     []Mount{{Root: "/", Point: "/sys/fs/cgroup", V2: true}},
			wantPoints:     map[string]string{"": "/sys/fs/cgroup"},
		},
		{
			name:           "escaped mount point, optional fields, a line cut short",
			cgroup:         "garbage\n4:memory:/outer/inner\n",
			mountinfo:      "34 30 0:31 /outer /sys/fs/cgroup/mem\\040ory rw,relatime shared:5 - cgroup cgroup rw,memory\n30 25 0:26 / /x\n",
			wantMembership: map[string]string{"memory": "/outer/inner"},
			wantMounts:     []Mount{{Root: "/outer", Point: "/sys/fs/cgroup/mem ory", Controllers: []string{"memory"}}},
			wantPoints:     map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.wantMembership, ParseMembership(tc.cgroup)); d != "" {
				t.Errorf("membership (-want +got):\n%s", d)
			}
			mounts := ParseMounts(tc.mountinfo)
			if d := cmp.Diff(tc.wantMounts, mounts); d != "" {
				t.Errorf("mounts (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantPoints, Points(mounts)); d != "" {
				t.Errorf("points (-want +got):\n%s", d)
			}
		})
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	mountinfo, cgroup := filepath.Join(dir, "mountinfo"), filepath.Join(dir, "cgroup")
	if _, err := ReadMounts(mountinfo); err == nil {
		t.Error("ReadMounts of a missing file: no error")
	}
	if _, err := ReadMembership(cgroup); err == nil {
		t.Error("ReadMembership of a missing file: no error")
	}
	if err := os.WriteFile(mountinfo, []byte("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cgroup, []byte("0::/a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts, err := ReadMounts(mountinfo)
	if err != nil || len(mounts) != 1 || !mounts[0].V2 {
		t.Errorf("ReadMounts = %+v, %v", mounts, err)
	}
	own, err := ReadMembership(cgroup)
	if err != nil || own[""] != "/a" {
		t.Errorf("ReadMembership = %v, %v", own, err)
	}
}

// TestThisMachine reads this process's own files, as the agent and the
// sandbox do: the process is in a cgroup and a hierarchy is mounted.
func TestThisMachine(t *testing.T) {
	mounts, err := ReadMounts("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	own, err := ReadMembership("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if len(own) == 0 || len(mounts) == 0 {
		t.Fatalf("membership %v, mounts %+v", own, mounts)
	}
}
