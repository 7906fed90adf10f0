package env_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

// A router starts an environment per function version, invokes it while it
// has a free slot, answers an init failure as a function error, and drops an
// environment whose result says Replace.
func ExampleStart() {
	ctx := context.Background()
	spec := env.Spec{
		FunctionName: "echo",
		FunctionARN:  "arn:aws:lambda:us-east-1:123456789012:function:echo",
		Runtime:      "provided.al2023",
		Handler:      "bootstrap",
		MemoryMB:     128,
		Timeout:      3 * time.Second,
		CodeDir:      "/var/lib/shoal/code/echo-1", // the unpacked package
	}
	e, err := env.Start(ctx, spec, env.Deps{Logger: slog.Default()})
	var initErr *env.InitError
	if errors.As(err, &initErr) {
		// Answer the invocation that caused the cold start:
		// X-Amz-Function-Error: Unhandled, body initErr.ForRequest(requestID).
		return
	}
	if err != nil {
		return
	}
	defer e.Close(ctx)

	res, err := e.Invoke(ctx, env.Invocation{RequestID: "c0ffee00-0000-4000-8000-000000000001", Payload: []byte(`{}`), TailLog: true})
	switch {
	case errors.Is(err, env.ErrBusy):
		// Every slot is taken: try another environment or start one.
	case err != nil:
		// The caller went away, or the environment is closing.
	default:
		fmt.Printf("%s %s %v\n", res.Payload, res.FunctionError, res.Replace)
		if res.Replace {
			// The environment is finished (timeout, crash, out of memory):
			// forget it; it is already closing (watch env.Done()).
		}
	}
}
