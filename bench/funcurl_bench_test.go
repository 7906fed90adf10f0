package bench

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// BenchmarkFunctionURLWarmInvoke compares a warm request to a function URL
// (BUFFERED, AuthType NONE: the aws-lambda-go test function answers the
// request's body) on shoal, on-demand, one environment of 1769 MB (1 vCPU), isolated, with
// the plain Go net/http echo server, at 1 client, in one run. The path is the
// URL front door (payload format 2.0 event, response mapping) on top of the
// warm invoke path.
func BenchmarkFunctionURLWarmInvoke(b *testing.B) {
	b.Logf("cpu: %s", cpuModel())
	b.Run("plain-net-http/c=1", func(b *testing.B) {
		url, _ := startEcho(b)
		load(b, url, 1, echoBody)
	})
	b.Run("shoal-function-url/c=1", func(b *testing.B) {
		needIsolation(b, "isolation-on")
		urlAddr := freeAddr(b)
		_, client := startShoal(b, 1769, "--url-listen", urlAddr)
		ctx := context.Background()
		out, err := client.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{
			FunctionName: aws.String("echo"), AuthType: types.FunctionUrlAuthTypeNone})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String("echo"),
			StatementId: aws.String("public"), Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"),
			FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}); err != nil {
			b.Fatal(err)
		}
		load(b, aws.ToString(out.FunctionUrl)+"?op=body", 1, echoBody)
	})
}

// cpuModel is the machine's CPU model, as /proc/cpuinfo names it.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
