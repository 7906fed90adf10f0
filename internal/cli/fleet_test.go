package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestFleetShowsRotation: shoal fleet shows each instance's age and when its
// rotation is due.
func TestFleetShowsRotation(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	launched := now.Add(-25 * time.Hour)
	var b bytes.Buffer
	err := writeInstances(&b, []fleetInstance{
		{ID: "i-1", CapacityProvider: "cp", Type: "m7i.large", Zone: "z", State: "running", LaunchedAt: launched,
			RotationDue: launched.Add(14 * 24 * time.Hour)},
		{ID: "i-2", CapacityProvider: "cp", Type: "m7i.large", Zone: "z", State: "running", LaunchedAt: launched,
			RotationDue: now.Add(-time.Second)},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if !strings.Contains(lines[0], "AGE") || !strings.Contains(lines[0], "ROTATION DUE") {
		t.Fatalf("header %q", lines[0])
	}
	if !strings.Contains(lines[1], "1d01h") || !strings.Contains(lines[1], "in 12d23h") {
		t.Errorf("instance due in 13 days less an hour: %q", lines[1])
	}
	if !strings.Contains(lines[2], " now ") {
		t.Errorf("instance past its lifetime: %q", lines[2])
	}
}
