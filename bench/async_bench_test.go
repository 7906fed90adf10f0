package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/bus"
)

// BenchmarkAsync measures asynchronous invocation on one shoal (on-demand,
// the aws-lambda-go echo function, 1769 MB = 1 vCPU, environments as plain
// processes), in one run:
//
//   - sync/c=8: the synchronous warm rate at 8 clients, the baseline;
//   - accept/c=8: 202s per second at 8 clients sending InvocationType
//     Event, while the queue runs the events it takes; after the run every
//     accepted event must have run (the wait for that is not timed);
//   - start/c=1: from the 202 of one event to the function's start (the
//     function reports when it started, in the record of its success that
//     shoal sends to a NATS subject), one event at a time, p50 and p99.
func BenchmarkAsync(b *testing.B) {
	dataDir, metrics := b.TempDir(), freeAddr(b)
	endpoint, _, client := shoalUpIn(b, dataDir, "--isolate=false", "--metrics-listen", metrics)
	deployEcho(b, client, 1769)
	url := endpoint + "/2015-03-31/functions/echo/invocations"
	metricsURL := "http://" + metrics + "/metrics"

	b.Run("sync/c=8", func(b *testing.B) {
		load(b, url, 8, echoBody)
	})
	b.Run("accept/c=8", func(b *testing.B) {
		before := invocations(b, metricsURL)
		accepted := loadEvents(b, url, 8)
		// Every accepted event runs (not timed).
		deadline := time.Now().Add(5 * time.Minute)
		for invocations(b, metricsURL) < before+accepted {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d accepted events ran", invocations(b, metricsURL)-before, accepted)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	b.Run("start/c=1", func(b *testing.B) {
		if _, err := client.PutFunctionEventInvokeConfig(context.Background(), &lambda.PutFunctionEventInvokeConfigInput{
			FunctionName: aws.String("echo"), DestinationConfig: &types.DestinationConfig{OnSuccess: &types.OnSuccess{
				Destination: aws.String("arn:aws:nats:us-east-1:123456789012:lambda.bench.ok")}}}); err != nil {
			b.Fatal(err)
		}
		records := subscribeRecords(b, dataDir, "lambda.bench.ok")
		hc := &http.Client{Transport: signerFor(url, http.DefaultTransport)}
		send := func() (time.Time, string) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"op":"span","ms":0}`))
			req.Header.Set("X-Amz-Invocation-Type", "Event")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			at := time.Now()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", resp.StatusCode)
			}
			return at, resp.Header.Get("X-Amzn-Requestid")
		}
		wait := func(id string) time.Time {
			for {
				select {
				case r := <-records:
					if r.id == id {
						return r.start
					}
				case <-time.After(time.Minute):
					b.Fatalf("no record of %s", id)
				}
			}
		}
		for range 5 { // warm: an environment and the lane
			_, id := send()
			wait(id)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			at, id := send()
			lat = append(lat, wait(id).Sub(at))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	})
}

// loadEvents sends b.N asynchronous invocations from clients goroutines, each
// on its own keep-alive connection, and reports 202s per second and the
// latency of the answers. It returns how many were accepted; any other answer
// fails the benchmark.
func loadEvents(b *testing.B, url string, clients int) int {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: signerFor(url, tr)}
	post := func() (time.Duration, error) {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(echoBody))
		if err != nil {
			return 0, err
		}
		req.Header.Set("X-Amz-Invocation-Type", "Event")
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(t0), nil
	}
	for range clients { // one connection each
		if _, err := post(); err != nil {
			b.Fatal(err)
		}
	}
	warm := clients
	lat := make([][]time.Duration, clients)
	var failures sync.Map
	next := make(chan struct{}, clients)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for range next {
				d, err := post()
				if err != nil {
					failures.Store(err.Error(), true)
					continue
				}
				lat[i] = append(lat[i], d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	failed := b.N - len(all)
	failures.Range(func(k, _ any) bool { b.Logf("error (one of each kind): %v", k); return true })
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "202/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(failed), "errors")
	if failed > 0 {
		b.Errorf("%d of %d events were refused", failed, b.N)
	}
	return warm + len(all)
}

var invocationsRE = regexp.MustCompile(`^shoal_function_invocations_total\{function="echo",version="\$LATEST"\} (\S+)$`)

// invocations reads how many times shoal has run the echo function, from its
// Prometheus endpoint at url.
func invocations(b *testing.B, url string) int {
	b.Helper()
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := invocationsRE.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			return int(v)
		}
	}
	return 0
}

type started struct {
	id    string
	start time.Time
}

// subscribeRecords hears the success records sent to subject, with the key
// shoal writes for their readers, and reads from each the event's request id
// and when the function started (the "span" op's answer).
func subscribeRecords(b *testing.B, dataDir, subject string) <-chan started {
	b.Helper()
	seed, err := os.ReadFile(filepath.Join(dataDir, "lambda-destinations.nk"))
	if err != nil {
		b.Fatal(err)
	}
	addr, err := os.ReadFile(filepath.Join(dataDir, "nats.addr"))
	if err != nil {
		b.Fatal(err)
	}
	opts, err := bus.Credentials{Identity: bus.DestinationReader, Seed: bytes.TrimSpace(seed)}.Options()
	if err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect("nats://"+strings.TrimSpace(string(addr)), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	out := make(chan started, 1024)
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var rec struct {
			RequestContext struct {
				RequestID string `json:"requestId"`
			} `json:"requestContext"`
			ResponsePayload struct {
				Start int64 `json:"start"`
			} `json:"responsePayload"`
		}
		if json.Unmarshal(m.Data, &rec) == nil {
			out <- started{id: rec.RequestContext.RequestID, start: time.Unix(0, rec.ResponsePayload.Start)}
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return out
}
