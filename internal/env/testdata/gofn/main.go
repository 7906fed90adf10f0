// A test function built with aws-lambda-go. The event's "mode" picks what it
// does. INIT_PANIC=1 makes it panic during init, INIT_ERROR=1 report an init
// error, INIT_SLEEP_MS=n take n ms to initialise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Mode  string `json:"mode"`
	N     int    `json:"n"`
	Sleep int    `json:"sleepMs"`
	MB    int    `json:"mb"`
	// Lines are printed by mode "print", one a line.
	Lines []string `json:"lines"`
}

type failingReader struct{ msg string }

func (r failingReader) Read([]byte) (int, error) {
	if r.msg == "" {
		return 0, errors.New("stream broke")
	}
	return 0, errors.New(r.msg)
}

type myError struct{ msg string }

func (e myError) Error() string { return e.msg }

var hog [][]byte

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	_ = json.Unmarshal(raw, &ev)
	switch ev.Mode {
	case "error":
		return nil, myError{"it failed"}
	case "sleep":
		time.Sleep(time.Duration(ev.Sleep) * time.Millisecond)
		return "slept", nil
	case "exit":
		fmt.Println("exiting now")
		os.Exit(1)
	case "panic":
		// aws-lambda-go reports the panic as the invocation's error, then
		// ends the process.
		panic("handler panicked")
	case "oom":
		for i := 0; i < ev.MB; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			hog = append(hog, b)
		}
		return "survived", nil
	case "context":
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		return map[string]any{
			"requestId":     lc.AwsRequestID,
			"arn":           lc.InvokedFunctionArn,
			"clientContext": lc.ClientContext,
			"identity":      lc.Identity,
			"traceId":       ctx.Value("x-amzn-trace-id"),
			"deadlineSet":   !dl.IsZero(),
			"functionName":  lambdacontext.FunctionName,
			"memory":        lambdacontext.MemoryLimitInMB,
			"env": map[string]string{
				"AWS_REGION": os.Getenv("AWS_REGION"), "TZ": os.Getenv("TZ"), "_HANDLER": os.Getenv("_HANDLER"),
				"AWS_EXECUTION_ENV": os.Getenv("AWS_EXECUTION_ENV"), "USERVAR": os.Getenv("USERVAR"),
				"AWS_LAMBDA_MAX_CONCURRENCY":     os.Getenv("AWS_LAMBDA_MAX_CONCURRENCY"),
				"AWS_LAMBDA_RUNTIME_API":         os.Getenv("AWS_LAMBDA_RUNTIME_API"),
				"AWS_LAMBDA_INITIALIZATION_TYPE": os.Getenv("AWS_LAMBDA_INITIALIZATION_TYPE"),
				"AWS_LAMBDA_LOG_FORMAT":          os.Getenv("AWS_LAMBDA_LOG_FORMAT"),
				"AWS_LAMBDA_LOG_LEVEL":           os.Getenv("AWS_LAMBDA_LOG_LEVEL"),
			},
		}, nil
	case "print":
		for _, l := range ev.Lines {
			fmt.Println(l)
		}
		return len(ev.Lines), nil
	case "log":
		fmt.Println("hello from the function")
		fmt.Fprintln(os.Stderr, "and from stderr")
		return "logged", nil
	case "barrier":
		// Wait until N invocations are inside at once (they share /tmp).
		lc, _ := lambdacontext.FromContext(ctx)
		dir := os.TempDir()
		if err := os.WriteFile(dir+"/barrier-"+lc.AwsRequestID, nil, 0o644); err != nil {
			return nil, err
		}
		for {
			m, _ := filepath.Glob(dir + "/barrier-*")
			if len(m) >= ev.N {
				return len(m), nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			time.Sleep(2 * time.Millisecond)
		}
	case "stream":
		return strings.NewReader(strings.Repeat("chunk ", 5000)), nil
	case "streamfail":
		return io.MultiReader(strings.NewReader("partial "), failingReader{}), nil
	case "streamfailbig":
		// The error travels base64-encoded in a trailer line of ~4/3 N bytes.
		return io.MultiReader(strings.NewReader("partial "), failingReader{strings.Repeat("s", ev.N)}), nil
	case "errorbig":
		// aws-lambda-go sends the error's X-Ray cause, message included, in
		// a header line.
		return nil, myError{strings.Repeat("e", ev.N)}
	case "noop":
		return nil, nil
	}
	if ev.Mode == "errorsNew" {
		return nil, errors.New("plain")
	}
	return raw, nil
}

func main() {
	if os.Getenv("INIT_PANIC") == "1" {
		panic("init went wrong")
	}
	if ms, err := strconv.Atoi(os.Getenv("INIT_SLEEP_MS")); err == nil {
		fmt.Println("initialising slowly")
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	if os.Getenv("INIT_ERROR") == "1" {
		// What a runtime does when the function cannot start: report it on
		// the Runtime API's init/error, then stop.
		fmt.Println("the configuration is missing")
		body := `{"errorMessage":"the configuration is missing","errorType":"ConfigError"}`
		resp, err := http.Post("http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error",
			"application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	}
	lambda.Start(handle)
}
