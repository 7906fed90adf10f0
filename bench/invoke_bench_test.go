package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var echoBody = []byte(`{"hello":"world"}`)

// isolation are the two ways shoal runs environments: each in its own
// namespaces (network included), under a uid of its own, with a /tmp of its
// size (the default, as root); or as plain processes (--isolate=false).
var isolation = []struct {
	name  string
	flags []string
}{
	{"isolation-off", []string{"--isolate=false"}},
	{"isolation-on", nil},
}

func needIsolation(b *testing.B, name string) {
	if name == "isolation-on" && os.Geteuid() != 0 {
		b.Skip("isolation needs root")
	}
}

// BenchmarkWarmInvoke compares a warm invoke of the no-op aws-lambda-go echo function
// on shoal (on-demand, one environment, 1769 MB = 1 vCPU), isolated and not, with a
// plain Go net/http echo server, at 1 client, in one run.
func BenchmarkWarmInvoke(b *testing.B) {
	b.Run("plain-net-http/c=1", func(b *testing.B) {
		url, _ := startEcho(b)
		load(b, url, 1, echoBody)
	})
	for _, iso := range isolation {
		b.Run("shoal-on-demand/"+iso.name+"/c=1", func(b *testing.B) {
			needIsolation(b, iso.name)
			endpoint, _ := startShoal(b, 1769, iso.flags...)
			load(b, endpoint+"/2015-03-31/functions/echo/invocations", 1, echoBody)
		})
	}
}

// BenchmarkColdStart measures a cold start of the aws-lambda-go function: from the
// invoke request to its response, when no environment of the function's current
// configuration exists (each iteration changes the configuration first, which
// retires the warm environment), isolated and not, in one run. It reports the
// median and the 99th percentile.
func BenchmarkColdStart(b *testing.B) {
	for _, iso := range isolation {
		b.Run(iso.name, func(b *testing.B) {
			needIsolation(b, iso.name)
			_, client := startShoal(b, 1769, iso.flags...)
			ctx := context.Background()
			durations := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if _, err := client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
					FunctionName: aws.String("echo"),
					Environment:  &types.Environment{Variables: map[string]string{"ITER": fmt.Sprint(i)}},
				}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0 := time.Now()
				out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), Payload: echoBody})
				durations = append(durations, time.Since(t0))
				if err != nil || out.FunctionError != nil {
					b.Fatalf("invoke: %v", err)
				}
			}
			b.StopTimer()
			slices.Sort(durations)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(durations[len(durations)/2]), "ms-p50")
			b.ReportMetric(ms(durations[len(durations)*99/100]), "ms-p99")
		})
	}
}
