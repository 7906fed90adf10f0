package lambdaapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// What the recorded scenarios send: the calls of LocalStack's test_lambda_api.py and
// of the fixtures it creates functions with, rebuilt from reading them.

// replayRole is the execution role the scenarios give their functions.
const replayRole = "arn:aws:iam::" + recordingsAccount + ":role/lambda-test-role"

// Code packages: an echo handler and a second one, so that a code update changes the
// CodeSha256.
const (
	echoHandler    = "import json\n\ndef handler(event, context):\n    return event\n"
	versionHandler = "def handler(event, context):\n    return {\"version\": \"version0\"}\n"
)

// zipSeq makes every package built differ, as the recordings' did (LocalStack
// zips a fresh copy each time, with its own timestamps): the same handler packaged
// twice has two CodeSha256s there.
var zipSeq atomic.Int64

func echoZip(t testing.TB) []byte {
	n := fmt.Sprintf("# package %d\n", zipSeq.Add(1))
	return makeZip(t, map[string]string{"handler.py": echoHandler + n, "index.py": echoHandler + n})
}

func versionZip(t testing.TB) []byte {
	n := fmt.Sprintf("# package %d\n", zipSeq.Add(1))
	return makeZip(t, map[string]string{"handler.py": versionHandler + n, "index.py": versionHandler + n})
}

// fixtureInput is what LocalStack's create_lambda_function fixture sends:
// handler.handler, a 30 s timeout, empty environment and tags, unless the scenario
// changes them.
func (r *replay) fixtureInput(name string, mods ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionInput {
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimePython312,
		Handler:      aws.String("handler.handler"),
		Role:         aws.String(replayRole),
		Code:         &types.FunctionCode{ZipFile: echoZip(r.t)},
		Timeout:      aws.Int32(30),
		Environment:  &types.Environment{Variables: map[string]string{}},
		Tags:         map[string]string{},
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

// fixtureCreate creates a function as the fixture does; its recorded answer wraps
// the response in CreateFunctionResponse. A failed creation is recorded as it is.
func (r *replay) fixtureCreate(step, name string, mods ...func(*lambda.CreateFunctionInput)) map[string]any {
	r.t.Helper()
	in := r.fixtureInput(name, mods...)
	resp := r.do("", func(ctx context.Context, c *lambda.Client) error {
		_, err := c.CreateFunction(ctx, in)
		return err
	})
	out := resp
	if _, failed := resp["Error"]; !failed {
		out = map[string]any{"CreateFunctionResponse": resp, "CreateEventSourceMappingResponse": nil}
	}
	if step != "" {
		r.record(step, out)
	}
	return resp
}

// awsInput is what create_lambda_function_aws callers send: index.handler,
// PackageType Zip, python3.12.
func (r *replay) awsInput(name string, mods ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionInput {
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Handler:      aws.String("index.handler"),
		Code:         &types.FunctionCode{ZipFile: echoZip(r.t)},
		PackageType:  types.PackageTypeZip,
		Role:         aws.String(replayRole),
		Runtime:      types.RuntimePython312,
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

// create sends a CreateFunction as given.
func (r *replay) create(step string, in *lambda.CreateFunctionInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.CreateFunction(ctx, in)
		return err
	})
}

func (r *replay) getFunction(step, name string, qualifier ...string) map[string]any {
	r.t.Helper()
	in := &lambda.GetFunctionInput{FunctionName: aws.String(name)}
	if len(qualifier) > 0 {
		in.Qualifier = aws.String(qualifier[0])
	}
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetFunction(ctx, in)
		return err
	})
}

func (r *replay) getConfiguration(step, name string, qualifier ...string) map[string]any {
	r.t.Helper()
	in := &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)}
	if len(qualifier) > 0 {
		in.Qualifier = aws.String(qualifier[0])
	}
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetFunctionConfiguration(ctx, in)
		return err
	})
}

func (r *replay) updateConfiguration(step string, in *lambda.UpdateFunctionConfigurationInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.UpdateFunctionConfiguration(ctx, in)
		return err
	})
}

func (r *replay) updateCode(step string, in *lambda.UpdateFunctionCodeInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.UpdateFunctionCode(ctx, in)
		return err
	})
}

func (r *replay) deleteFunction(step, name string, qualifier ...string) map[string]any {
	r.t.Helper()
	in := &lambda.DeleteFunctionInput{FunctionName: aws.String(name)}
	if len(qualifier) > 0 {
		in.Qualifier = aws.String(qualifier[0])
	}
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.DeleteFunction(ctx, in)
		return err
	})
}

func (r *replay) publish(step string, in *lambda.PublishVersionInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.PublishVersion(ctx, in)
		return err
	})
}

func (r *replay) listVersions(step, name string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name)})
		return err
	})
}

// ok fails the scenario when a response is an error.
func (r *replay) ok(resp map[string]any) map[string]any {
	r.t.Helper()
	if e, failed := resp["Error"]; failed {
		r.t.Fatalf("unexpected error %v", e)
	}
	return resp
}

// field reads a string member of a response ("Configuration.RevisionId").
func field(resp map[string]any, path ...string) string {
	var cur any = resp
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
