package scaler_test

import (
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/internal/scaler"
)

// A loop feeds the decider what the agents report and applies the plan
// through the fleet; here one decision for a fresh capacity provider.
func ExampleDecider_Decide() {
	d, err := scaler.New(scaler.Config{
		Instance: scaler.InstanceShape{Type: "m7i.large", VCPU: 2, MemoryMiB: 8192},
	})
	if err != nil {
		panic(err)
	}
	snap := scaler.Snapshot{
		Versions: []scaler.Version{{
			Key: "orders:1", MinEnvironments: 3,
			EnvVCPU: 1, EnvMemoryMiB: 4096, EnvSlots: 64,
		}},
	}
	plan := d.Decide(snap, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, in := range plan.AddInstances {
		fmt.Println("launch", in.Type, "in", in.Zone, "—", in.Reason)
	}
	t := plan.Targets[0]
	fmt.Printf("%s: %d → %d environments, %d waiting for instances\n", t.Version, t.Current, t.Desired, t.Unplaced)
	// Output:
	// launch m7i.large in zone-a — minimum fleet: 0 of 3 instances across 3 zones
	// launch m7i.large in zone-b — minimum fleet: 1 of 3 instances across 3 zones
	// launch m7i.large in zone-c — minimum fleet: 2 of 3 instances across 3 zones
	// orders:1: 0 → 3 environments, 3 waiting for instances
}
