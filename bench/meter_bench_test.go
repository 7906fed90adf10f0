package bench

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
)

// BenchmarkMeteringOverhead measures warm invoke throughput of the no-op
// aws-lambda-go function at 8 clients with the usage ledger on and off, in
// one run: on-demand (the control plane journals and publishes every
// invocation) and Managed Instances (the agent does). Metering off is
// `shoal up --no-meter`, through SHOAL_NO_METER in the process's environment.
//
// The two settings alternate over three rounds, so that a drift of the
// machine's speed during the run weighs on both alike; compare the means.
func BenchmarkMeteringOverhead(b *testing.B) {
	for _, compute := range []string{"on-demand", "managed-instances"} {
		for i := range 6 {
			metered := i%2 == 0
			name := fmt.Sprintf("%s/metered=%t/c=8/round=%d", compute, metered, i/2+1)
			b.Run(name, func(b *testing.B) {
				benchEnv := ""
				if !metered {
					benchEnv = "SHOAL_NO_METER=1"
				}
				b.Setenv("SHOAL_BENCH_ENV", benchEnv)
				if compute == "on-demand" {
					endpoint, _ := startShoal(b, 1769)
					url := endpoint + "/2015-03-31/functions/echo/invocations"
					// The environments start with the first invocations; the
					// front is this process's newest `shoal` child.
					warmUp(b, url, 8)
					kids := children(os.Getpid())
					front := kids[len(kids)-1]
					load(b, url, 8, echoBody, watched{name: "front", pids: []int{front}},
						watched{name: "function", pids: descendants(front)})
					return
				}
				url, procs := startManaged(b, 8, goFn)
				load(b, url, 8, echoBody, procs...)
			})
		}
	}
}

// warmUp sends a few invocations from n clients at once, so that n
// environments are running before their processes are counted.
func warmUp(b *testing.B, url string, n int) {
	b.Helper()
	hc := &http.Client{Transport: signerFor(url, http.DefaultTransport)}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range 20 {
				resp, err := hc.Post(url, "application/json", bytes.NewReader(echoBody))
				if err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
}
