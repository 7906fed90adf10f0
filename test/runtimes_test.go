package test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func createSourceFn(t *testing.T, s *shoal, name string, runtime types.Runtime, handler string, files map[string]string, layers ...string) {
	t.Helper()
	_, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: runtime, Handler: aws.String(handler), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: zipSources(files)}, Timeout: aws.Int32(10), Layers: layers,
	})
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
}

func TestNodeHandlers(t *testing.T) {
	s := startShoal(t)
	createSourceFn(t, s, "node-async", types.RuntimeNodejs20x, "index.handler", map[string]string{
		"index.js": `exports.handler = async (event, context) => ({
  got: event, fn: context.functionName, rid: context.awsRequestId, left: context.getRemainingTimeInMillis() > 0 });`,
	})
	createSourceFn(t, s, "node-callback", types.RuntimeNodejs20x, "app.handle", map[string]string{
		"app.js": `exports.handle = (event, context, callback) => { callback(null, {sum: event.a + event.b}); };`,
	})
	createSourceFn(t, s, "node-esm", types.RuntimeNodejs20x, "index.handler", map[string]string{
		"index.mjs": `export const handler = async (event) => ({ esm: true, n: event.n * 2 });`,
	})
	createSourceFn(t, s, "node-throw", types.RuntimeNodejs20x, "index.handler", map[string]string{
		"index.js": `class BadThing extends Error { constructor(m) { super(m); this.name = "BadThing"; } }
exports.handler = async () => { throw new BadThing("node failed"); };`,
	})

	m := decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("node-async"), Payload: []byte(`{"x":1}`)}).Payload)
	if got, _ := m["got"].(map[string]any); got["x"] != float64(1) || m["fn"] != "node-async" || m["left"] != true {
		t.Fatalf("async handler: %v", m)
	}
	if rid, _ := m["rid"].(string); len(rid) != 36 {
		t.Fatalf("awsRequestId %q", rid)
	}
	m = decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("node-callback"), Payload: []byte(`{"a":2,"b":3}`)}).Payload)
	if m["sum"] != float64(5) {
		t.Fatalf("callback handler: %v", m)
	}
	m = decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("node-esm"), Payload: []byte(`{"n":21}`)}).Payload)
	if m["esm"] != true || m["n"] != float64(42) {
		t.Fatalf("ESM handler: %v", m)
	}
	m = functionError(t, s, "node-throw", `{}`, "BadThing")
	if m["errorMessage"] != "node failed" {
		t.Fatalf("error payload %v", m)
	}
}

func TestPythonHandlers(t *testing.T) {
	s := startShoal(t)
	createSourceFn(t, s, "py-echo", types.RuntimePython311, "app.handler", map[string]string{
		"app.py": `
def handler(event, context):
    return {"got": event, "fn": context.function_name, "rid": context.aws_request_id,
            "mem": context.memory_limit_in_mb, "left": context.get_remaining_time_in_millis() > 0}
`,
	})
	createSourceFn(t, s, "py-raise", types.RuntimePython311, "app.handler", map[string]string{
		"app.py": `
class Boom(Exception):
    pass

def handler(event, context):
    raise Boom("python failed")
`,
	})
	createSourceFn(t, s, "py-import", types.RuntimePython311, "missing.handler", map[string]string{"app.py": "x = 1\n"})

	m := decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("py-echo"), Payload: []byte(`{"y":2}`)}).Payload)
	if got, _ := m["got"].(map[string]any); got["y"] != float64(2) || m["fn"] != "py-echo" || m["left"] != true {
		t.Fatalf("python handler: %v", m)
	}
	if m["mem"] != "128" && m["mem"] != float64(128) {
		t.Fatalf("memory_limit_in_mb = %v", m["mem"])
	}
	m = functionError(t, s, "py-raise", `{}`, "Boom")
	if m["errorMessage"] != "python failed" {
		t.Fatalf("error payload %v", m)
	}
	functionError(t, s, "py-import", `{}`, "Runtime.ImportModuleError")
}
