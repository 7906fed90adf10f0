package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

// linuxOnly stands in for a command that runs execution environments (`shoal
// up`, `shoal agent`) where it cannot run: it takes any flags and says
// so. The client commands work on every system.
func linuxOnly(name, short string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              short + " (Linux only)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("shoal %s needs Linux: it runs execution environments as Linux processes, "+
				"in cgroups and namespaces, and this system is %s. The client commands (fn, cp, fleet, top, cost) "+
				"work here: point them at a shoal running on Linux with --endpoint-url or SHOAL_ENDPOINT_URL", name, runtime.GOOS)
		},
	}
}
