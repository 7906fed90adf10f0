package agent

import (
	"runtime"
	"testing"
)

func TestAgentProcs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		env  string
		want int
	}{
		{name: "small instance", cfg: Config{Type: "m7i.large"}, want: 1},
		{name: "one per 8 vCPUs", cfg: Config{Type: "m7i.4xlarge"}, want: min(2, runtime.NumCPU())},
		{name: "capped by the host", cfg: Config{Type: "m7i.16xlarge"}, want: min(8, runtime.NumCPU())},
		{name: "explicit", cfg: Config{Type: "m7i.large", Procs: 3}, want: 3},
		{name: "environment wins over the default", cfg: Config{Type: "m7i.large"}, env: "4", want: 0},
		{name: "explicit wins over the environment", cfg: Config{Type: "m7i.large", Procs: 2}, env: "4", want: 2},
		{name: "unknown type", cfg: Config{Type: "nope"}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tc.env)
			if got := agentProcs(&tc.cfg); got != tc.want {
				t.Errorf("agentProcs = %d, want %d", got, tc.want)
			}
		})
	}
}
