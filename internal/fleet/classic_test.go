package fleet

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/clock"
)

// TestHostCountsClassicEnvironments: a host's heartbeat names its classic
// agent and counts what its on-demand and provisioned environments take,
// and its free room is its capacity less those and its instances.
func TestHostCountsClassicEnvironments(t *testing.T) {
	l := &Local{insts: map[string]*localInst{
		"i-1": {info: Instance{ID: "i-1", State: StateRunning, VCPU: 2, MemoryMB: 8192}},
		"i-2": {info: Instance{ID: "i-2", State: StateTerminated, VCPU: 2, MemoryMB: 8192}},
	}}
	h := &Host{cfg: HostConfig{Name: "h1", Zone: "z", VCPU: 8, MemoryMB: 32768}, local: l, clock: clock.NewFake(time.Unix(0, 0))}
	h.SetClassic("classic-h1", func() ClassicUse { return ClassicUse{VCPU: 1.5, MemoryMB: 2048, Environments: 3} })
	st := h.Status()
	if st.Classic != "classic-h1" || st.ClassicVCPU != 1.5 || st.ClassicMemoryMB != 2048 || st.ClassicEnvironments != 3 ||
		st.UsedVCPU != 2 || st.UsedMemoryMB != 8192 {
		t.Fatalf("status %+v", st)
	}
	if vcpu, mem := h.Free(); vcpu != 4.5 || mem != 32768-8192-2048 {
		t.Fatalf("free %v vCPU, %d MiB", vcpu, mem)
	}
}

// TestPlacementCountsClassicEnvironments: the fleet places no instance on
// a host whose on-demand and provisioned environments leave it no room.
func TestPlacementCountsClassicEnvironments(t *testing.T) {
	for _, tc := range []struct {
		name        string
		classicVCPU float64
		classicMem  int
		want        string
	}{
		{"room left on the roomier host", 1, 4096, "big"},
		{"its environments' memory leaves no room", 0, 30000, "small"},
		{"part of a vCPU taken is a vCPU taken", 14.5, 0, "small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{records: map[string]record{}, reserved: map[string]reservation{}, hosts: map[string]*HostStatus{
				"big":   {Name: "big", Zone: "z", VCPU: 16, MemoryMB: 32768, State: HostUp, ClassicVCPU: tc.classicVCPU, ClassicMemoryMB: tc.classicMem},
				"small": {Name: "small", Zone: "z", VCPU: 4, MemoryMB: 8192, State: HostUp},
			}}
			if got := c.placeLocked(InstanceSpec{CapacityProvider: "cp", Zone: "z"}, 2, 4096); got != tc.want {
				t.Fatalf("placed on %q, want %q", got, tc.want)
			}
		})
	}
}
