package bench

import (
	"fmt"
	"testing"
)

// BenchmarkMeteringOverhead measures warm invoke throughput of the no-op
// aws-lambda-go function at 8 clients with the usage ledger on and off, in
// one run: on-demand (the control plane journals and publishes every
// invocation) and Managed Instances (the agent does). Metering off is
// `shoal up --no-meter`, through SHOAL_NO_METER in the process's environment.
func BenchmarkMeteringOverhead(b *testing.B) {
	for _, compute := range []string{"on-demand", "managed-instances"} {
		for _, metered := range []bool{true, false} {
			name := fmt.Sprintf("%s/metered=%t/c=8", compute, metered)
			b.Run(name, func(b *testing.B) {
				env := ""
				if !metered {
					env = "SHOAL_NO_METER=1"
				}
				b.Setenv("SHOAL_BENCH_ENV", env)
				if compute == "on-demand" {
					endpoint, _ := startShoal(b, 1769)
					load(b, endpoint+"/2015-03-31/functions/echo/invocations", 8, echoBody)
					return
				}
				url, procs := startManaged(b, 8)
				load(b, url, 8, echoBody, procs...)
			})
		}
	}
}
