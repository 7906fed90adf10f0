package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

var echoBody = []byte(`{"hello":"world"}`)

// BenchmarkWarmInvoke compares a warm invoke of the no-op aws-lambda-go echo function
// on shoal (on-demand, one environment, 1769 MB = 1 vCPU) with a plain Go net/http
// echo server, at 1 client, in one run.
func BenchmarkWarmInvoke(b *testing.B) {
	b.Run("plain-net-http/c=1", func(b *testing.B) {
		url, _ := startEcho(b)
		load(b, url, 1, echoBody)
	})
	b.Run("shoal-on-demand/c=1", func(b *testing.B) {
		endpoint, _ := startShoal(b, 1769)
		load(b, endpoint+"/2015-03-31/functions/echo/invocations", 1, echoBody)
	})
}

// BenchmarkColdStart measures a cold start of the aws-lambda-go function: from the
// invoke request to its response, when no environment of the function's current
// configuration exists (each iteration changes the configuration first, which
// retires the warm environment).
func BenchmarkColdStart(b *testing.B) {
	_, client := startShoal(b, 1769)
	ctx := context.Background()
	b.ResetTimer()
	var total time.Duration
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
		total += time.Since(t0)
		if err != nil || out.FunctionError != nil {
			b.Fatalf("invoke: %v", err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/cold-start")
}
