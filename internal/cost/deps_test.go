package cost_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCostEngineImportsNoPlatform keeps the cost engine pure: pricing, cost,
// cost/replay, billing and trace answer "what would this cost" on a laptop,
// without the bus, the sandbox, the Runtime API or any process code.
func TestCostEngineImportsNoPlatform(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"github.com/shoal-dev/shoal/internal/pricing",
		"github.com/shoal-dev/shoal/internal/cost/...",
		"github.com/shoal-dev/shoal/internal/billing",
		"github.com/shoal-dev/shoal/internal/trace",
	).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list listed only %d packages: %s", len(deps), out)
	}
	forbidden := []string{
		"github.com/nats-io/",
		"github.com/shoal-dev/shoal/internal/bus",
		"github.com/shoal-dev/shoal/internal/ledger",
		"github.com/shoal-dev/shoal/internal/sandbox",
		"github.com/shoal-dev/shoal/internal/runtimeapi",
		"github.com/shoal-dev/shoal/internal/runtimes",
		"github.com/shoal-dev/shoal/internal/env",
		"github.com/shoal-dev/shoal/internal/agent",
		"github.com/shoal-dev/shoal/internal/fleet",
		"github.com/shoal-dev/shoal/internal/registry",
		"github.com/shoal-dev/shoal/internal/router",
		"github.com/shoal-dev/shoal/internal/controlplane",
		"github.com/shoal-dev/shoal/internal/wire",
		"os/exec",
		"net/http",
	}
	var found []string
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
				found = append(found, d)
			}
		}
	}
	if len(found) > 0 {
		t.Errorf("the cost engine depends on platform code: %s", strings.Join(found, ", "))
	}
}
