package controlplane

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestProvisionedShares(t *testing.T) {
	cases := []struct {
		name      string
		requested int
		weights   map[string]float64
		want      []provShare
	}{
		{"a version", 4, nil, []provShare{{"1", 4}}},
		{"half each", 4, map[string]float64{"2": 0.5}, []provShare{{"1", 2}, {"2", 2}}},
		{"a tenth of ten", 10, map[string]float64{"2": 0.1}, []provShare{{"1", 9}, {"2", 1}}},
		{"a tenth of four rounds to none", 4, map[string]float64{"2": 0.1}, []provShare{{"1", 4}}},
		{"nearest environment", 5, map[string]float64{"2": 0.3}, []provShare{{"1", 3}, {"2", 2}}},
		{"all on the additional version", 3, map[string]float64{"2": 1}, []provShare{{"2", 3}}},
		{"a zero weight", 3, map[string]float64{"2": 0}, []provShare{{"1", 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := provisionedShares(c.requested, "1", c.weights)
			if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(provShare{})); diff != "" {
				t.Errorf("shares (-want +got):\n%s", diff)
			}
			sum := 0
			for _, s := range got {
				sum += s.n
			}
			if sum != c.requested {
				t.Errorf("shares add up to %d of %d", sum, c.requested)
			}
		})
	}
}
