// Command gofn is the aws-lambda-go function the end-to-end tests and benchmarks
// deploy. What it does depends on the event's "op": echo (the default: returns the
// event), sleep, error, panic, crash, oom, env, context, tmp, mark, and the streamed
// answers stream, streambig and streamfail (stream.go). A function URL's event
// is answered by url.go.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Op    string `json:"op"`
	Ms    int    `json:"ms"`
	MB    int    `json:"mb"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

func init() {
	if os.Getenv("FAIL_INIT") != "" {
		fmt.Fprintln(os.Stderr, "init failing as asked")
		os.Exit(3)
	}
}

var sink [][]byte

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	if isURLEvent(raw) {
		return handleURL(ctx, raw)
	}
	var ev event
	_ = json.Unmarshal(raw, &ev)
	switch ev.Op {
	case "", "echo":
		return raw, nil
	case "noop":
		return nil, nil
	case "span":
		start := time.Now()
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return map[string]any{"start": start.UnixNano(), "end": time.Now().UnixNano(),
			"max_concurrency": os.Getenv("AWS_LAMBDA_MAX_CONCURRENCY")}, nil
	case "sleep":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		return map[string]any{"slept_ms": ev.Ms}, nil
	case "error":
		return nil, errors.New("something went wrong")
	case "panic":
		// aws-lambda-go reports the panic as the invocation's error, then
		// ends the process (in every worker's turn, when several run).
		panic("handler panicked")
	case "crash":
		fmt.Println("about to crash")
		os.Exit(1)
	case "oom":
		for i := 0; ; i++ {
			b := make([]byte, 16<<20)
			for j := 0; j < len(b); j += 4096 { // touch every page, so the memory is really used
				b[j] = byte(j)
			}
			sink = append(sink, b)
			if ev.MB > 0 && (i+1)*16 >= ev.MB {
				return map[string]any{"allocated_mb": (i + 1) * 16}, nil
			}
		}
	case "env":
		time.Sleep(time.Duration(ev.Ms) * time.Millisecond)
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		return env, nil
	case "context":
		lc, _ := lambdacontext.FromContext(ctx)
		deadline, _ := ctx.Deadline()
		out := map[string]any{
			"request_id":    lc.AwsRequestID,
			"function_arn":  lc.InvokedFunctionArn,
			"client_custom": lc.ClientContext.Custom,
			"remaining_ms":  time.Until(deadline).Milliseconds(),
			"function_name": lambdacontext.FunctionName,
			"version":       lambdacontext.FunctionVersion,
			"memory_mb":     lambdacontext.MemoryLimitInMB,
		}
		return out, nil
	case "big":
		return strings.Repeat("x", ev.MB<<20), nil
	case "stream", "streambig", "streamfail":
		return stream(ev)
	case "log":
		fmt.Println("hello from the function:", ev.Value)
		return "logged", nil
	case "mark":
		// Leaves a trace of each run in $MARK_DIR (a directory of the host,
		// for tests of functions that run without isolation): a line in
		// <key>.start when it starts and in <key>.done when it returns. With
		// value "wait" it waits, between the two, until $MARK_DIR/release
		// exists.
		lc, _ := lambdacontext.FromContext(ctx)
		dir := os.Getenv("MARK_DIR")
		if err := appendLine(dir+"/"+ev.Key+".start", lc.AwsRequestID); err != nil {
			return nil, err
		}
		for ev.Value == "wait" {
			if _, err := os.Stat(dir + "/release"); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := appendLine(dir+"/"+ev.Key+".done", lc.AwsRequestID); err != nil {
			return nil, err
		}
		return map[string]string{"marked": ev.Key, "request_id": lc.AwsRequestID}, nil
	case "tmp":
		if ev.Value != "" {
			if err := os.WriteFile("/tmp/"+ev.Key, []byte(ev.Value), 0o644); err != nil {
				return nil, err
			}
			return "written", nil
		}
		b, err := os.ReadFile("/tmp/" + ev.Key)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return nil, fmt.Errorf("unknown op %q", ev.Op)
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// main starts the function. GOFN_IDLE_CONNS, when set, is how many idle
// connections aws-lambda-go's Runtime API client keeps (Go's default is 2),
// for benchmarks that compare its connection churn at high concurrency.
func main() {
	if n, err := strconv.Atoi(os.Getenv("GOFN_IDLE_CONNS")); err == nil {
		http.DefaultTransport.(*http.Transport).MaxIdleConnsPerHost = n
	}
	lambda.Start(handle)
}
