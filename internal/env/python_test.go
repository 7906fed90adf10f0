package env

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func pySpec(name, handler, dir string) Spec {
	s := goSpec(name)
	s.Runtime = "python3.12"
	s.MemoryMB = 1769 // one vCPU: python start-up takes ~2 s of wall time at 128 MB's CPU share
	s.Handler = handler
	s.CodeDir = dir
	return s
}

const pyCode = `
import os
import logging
logger = logging.getLogger()
logger.setLevel(logging.INFO)

def echo(event, context):
    print("echo got", event)
    return event

def ctx(event, context):
    cc = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "custom": cc.custom if cc else None,
        "installation_id": cc.client.installation_id if cc and cc.client else None,
        "identity_id": context.identity.cognito_identity_id,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }

class CustomException(Exception):
    pass

def fails(event, context):
    logger.info("about to fail")
    raise CustomException("Handler fails")
`

func TestPythonHandlers(t *testing.T) {
	needTool(t, "python3")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"app.py": pyCode})

	t.Run("echo", func(t *testing.T) {
		env := h.startT(t, pySpec("py", "app.echo", dir))
		r := invoke(t, env, `{"a":[1,2]}`, true)
		if string(r.Payload) != `{"a": [1, 2]}` {
			t.Errorf("payload %s", r.Payload)
		}
		if !strings.Contains(string(r.LogTail), "echo got {'a': [1, 2]}") {
			t.Errorf("tail:\n%s", r.LogTail)
		}
		if r := invoke(t, env, `"two"`, false); string(r.Payload) != `"two"` {
			t.Errorf("second: %s", r.Payload)
		}
	})
	t.Run("context", func(t *testing.T) {
		spec := pySpec("pyctx", "app.ctx", dir)
		env := h.startT(t, spec)
		id := newReqID()
		r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{}`),
			InvokedARN:      spec.FunctionARN + ":7",
			ClientContext:   `{"custom":{"k":"v"},"client":{"installation_id":"i1"}}`,
			CognitoIdentity: `{"cognitoIdentityId":"cid"}`,
			TraceID:         "Root=1-abc",
		})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(r.Payload, &got); err != nil {
			t.Fatalf("%v: %s", err, r.Payload)
		}
		want := map[string]any{
			"aws_request_id": id, "function_name": "pyctx", "function_version": "$LATEST",
			"invoked_function_arn": spec.FunctionARN + ":7", "memory_limit_in_mb": "1769",
			"log_group_name": "/aws/lambda/pyctx", "log_stream_name": spec.LogStream,
			"installation_id": "i1", "identity_id": "cid", "trace": "Root=1-abc",
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		if rem, _ := got["remaining"].(float64); rem <= 0 || rem > 3000 {
			t.Errorf("remaining = %v", got["remaining"])
		}
		if c, _ := got["custom"].(map[string]any); c["k"] != "v" {
			t.Errorf("custom = %v", got["custom"])
		}
	})
	t.Run("exception", func(t *testing.T) {
		env := h.startT(t, pySpec("pyerr", "app.fails", dir))
		id := newReqID()
		r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{}`), TailLog: true})
		if err != nil {
			t.Fatal(err)
		}
		e := decodeErr(t, r.Payload)
		if r.FunctionError != "Unhandled" || r.ErrorType != "CustomException" || e.ErrorMessage != "Handler fails" ||
			e.RequestID == nil || *e.RequestID != id || len(e.StackTrace) != 1 ||
			!strings.Contains(e.StackTrace[0], `raise CustomException("Handler fails")`) {
			t.Errorf("result %+v payload %s", r, r.Payload)
		}
		tail := string(r.LogTail)
		if !strings.Contains(tail, "[INFO]\t") || !strings.Contains(tail, "\t"+id+"\tabout to fail") ||
			!strings.Contains(tail, "[ERROR] CustomException: Handler fails") {
			t.Errorf("tail:\n%s", tail)
		}
	})
}

func TestPythonInitErrors(t *testing.T) {
	needTool(t, "python3")
	h := newHarness(t)
	cases := []struct {
		name, handler string
		files         map[string]string
		wantType      string
		wantMsg       string
	}{
		{"missing module", "nothere.handler", nil, "Runtime.ImportModuleError", "Unable to import module 'nothere': No module named 'nothere'"},
		{"missing handler", "app.nope", map[string]string{"app.py": pyCode}, "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"},
		{"syntax error", "bad.handler", map[string]string{"bad.py": "def handler(e, c):\n  return (\n"}, "Runtime.UserCodeSyntaxError", "Syntax error in module 'bad'"},
		{"raises at import", "boom.handler", map[string]string{"boom.py": "raise Exception(\"Runtime startup fails\")\n"}, "Exception", "Runtime startup fails"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Start(context.Background(), pySpec("pyinit", c.handler, writeCode(t, c.files)), h.deps)
			var ie *InitError
			if !errors.As(err, &ie) {
				t.Fatalf("Start: %v", err)
			}
			e := decodeErr(t, ie.Payload)
			if ie.ErrorType != c.wantType || e.ErrorType != c.wantType || !strings.Contains(e.ErrorMessage, c.wantMsg) ||
				e.RequestID == nil || *e.RequestID != "" {
				t.Errorf("init error %s: %s\nlog:\n%s", ie.ErrorType, ie.Payload, ie.Log)
			}
		})
	}
}

const pyLogCode = `
import logging
import time

logger = logging.getLogger()

def logs(event, context):
    print("printed", event["n"])
    logger.debug("debug %s", event["n"])
    logger.info("log %s", event["n"])
    logging.getLogger("mine").warning("warn %s", event["n"], extra={"k": event["n"]})
    time.sleep(event.get("wait", 0) / 1000)
    logger.info("after %s", event["n"])
    logger.critical("critical %s", event["n"])
    return context.aws_request_id

def fails(event, context):
    raise ValueError("nope")
`

func TestPythonJSONLogs(t *testing.T) {
	needTool(t, "python3")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"app.py": pyLogCode})
	env := h.start(jsonSpec(pySpec("pyjson", "app.logs", dir), "INFO", "INFO"))
	id, r := invokeTail(t, env, `{"n":1}`)
	tail := string(r.LogTail)
	// print() output stays a plain line, as Lambda's Python runtime leaves it.
	if !strings.Contains(tail, "\nprinted 1\n") {
		t.Errorf("print line missing:\n%s", tail)
	}
	recs := appRecords(t, tail, func(l string) bool { return l == "printed 1" })
	var got []string
	for _, rec := range recs {
		if rec.RequestID != id {
			t.Errorf("record of request %q, want %q", rec.RequestID, id)
		}
		got = append(got, rec.Level+" "+rec.Logger+" "+fmt.Sprint(rec.Message))
	}
	want := []string{"INFO root log 1", "WARNING mine warn 1", "INFO root after 1", "CRITICAL root critical 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("records (-want +got):\n%s\n%s", diff, tail)
	}
	// extra= fields are keys of the record.
	if !strings.Contains(tail, `"logger": "mine", "requestId": "`+id+`", "k": 1}`) {
		t.Errorf("extra field missing:\n%s", tail)
	}

	// The bootstrap honours AWS_LAMBDA_LOG_LEVEL (the user's here, while the
	// agent keeps every line); a handler's exception is an ERROR record.
	spec := jsonSpec(pySpec("pyjson", "app.logs", dir), "TRACE", "INFO")
	spec.Environment = map[string]string{"AWS_LAMBDA_LOG_LEVEL": "ERROR"}
	env = h.start(spec)
	r = invoke(t, env, `{"n":2}`, true)
	recs = appRecords(t, string(r.LogTail), func(l string) bool { return l == "printed 2" })
	if len(recs) != 1 || recs[0].Level != "CRITICAL" {
		t.Errorf("records at AWS_LAMBDA_LOG_LEVEL=ERROR: %+v\n%s", recs, r.LogTail)
	}
	spec.Handler = "app.fails"
	env = h.start(spec)
	id, r = invokeTail(t, env, `{}`)
	recs = appRecords(t, string(r.LogTail), nil)
	if len(recs) != 1 || recs[0].Level != "ERROR" || recs[0].ErrorType != "ValueError" || recs[0].ErrorMessage != "nope" ||
		recs[0].RequestID != id || len(recs[0].StackTrace) == 0 {
		t.Errorf("error records %+v\n%s", recs, r.LogTail)
	}
}

// Each worker process of a multi-concurrent Python environment logs with the
// id of the invocation it serves.
func TestPythonJSONLogsMultiConcurrency(t *testing.T) {
	needTool(t, "python3")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"app.py": pyLogCode})
	env := h.start(jsonSpec(multiSpec(pySpec("pyjsonmulti", "app.logs", dir), 3), "INFO", "INFO"))
	checkRequestIDs(t, h, env, 3)
}
