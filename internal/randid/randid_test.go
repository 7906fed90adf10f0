package randid

import (
	"regexp"
	"testing"
	"time"
)

func TestForms(t *testing.T) {
	now := time.Date(2026, 11, 26, 23, 30, 0, 0, time.FixedZone("x", -3*3600))
	for _, tc := range []struct {
		name string
		make func() string
		want *regexp.Regexp
	}{
		{"hex 1", func() string { return Hex(1) }, regexp.MustCompile(`^[0-9a-f]{2}$`)},
		{"hex 8", func() string { return Hex(8) }, regexp.MustCompile(`^[0-9a-f]{16}$`)},
		{"hex 9", func() string { return Hex(9) }, regexp.MustCompile(`^[0-9a-f]{18}$`)},
		{"uuid", UUID, regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
		{"log stream", func() string { return LogStream(now, "3") }, regexp.MustCompile(`^2026/11/27/\[3\][0-9a-f]{32}$`)},
		{"log stream of $LATEST", func() string { return LogStream(now, "") }, regexp.MustCompile(`^2026/11/27/\[\$LATEST\][0-9a-f]{32}$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 1000 {
				id := tc.make()
				if !tc.want.MatchString(id) {
					t.Fatalf("%q does not match %s", id, tc.want)
				}
				seen[id] = true
			}
			// One random byte repeats within 1000 draws; longer ids do not.
			if tc.name != "hex 1" && len(seen) != 1000 {
				t.Errorf("%d distinct ids in 1000", len(seen))
			}
		})
	}
}

func BenchmarkUUID(b *testing.B) {
	for b.Loop() {
		_ = UUID()
	}
}
