package funcurl

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/registry"
)

// The answers AWS recorded for a Python function's return values through a
// function URL (testdata/aws-recordings, TestLambdaURL::test_lambda_url_invocation):
// mapResponse must give the same status, content type, length and body for
// what the Python runtime sends (json.dumps of the value).
func TestMapResponseAsRecorded(t *testing.T) {
	b, err := os.ReadFile("../../testdata/aws-recordings/test_lambda.snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Content map[string]json.RawMessage `json:"recorded-content"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	// What json.dumps sends for each parametrised return value.
	sent := map[string]string{
		"dict":               `{"hello": "world"}`,
		"http-response":      `{"statusCode": 200, "body": "body123"}`,
		"http-response-json": `{"statusCode": 200, "body": "{\"hello\": \"world\"}"}`,
		"list-mixed":         `["hello", 3, true]`,
		"string":             `"hello"`,
		"integer":            `3`,
		"float":              `3.1`,
		"boolean":            `true`,
	}
	for param, payload := range sent {
		t.Run(param, func(t *testing.T) {
			rec, ok := all["tests/aws/services/lambda_/test_lambda.py::TestLambdaURL::test_lambda_url_invocation["+param+"]"]
			if !ok {
				t.Fatal("not recorded")
			}
			var want struct {
				Content    json.RawMessage   `json:"content"`
				Headers    map[string]string `json:"headers"`
				StatusCode int               `json:"statuscode"`
			}
			if err := json.Unmarshal(rec.Content["lambda_url_invocation"], &want); err != nil {
				t.Fatal(err)
			}
			status, headers, _, body, err := mapResponse([]byte(payload))
			if err != nil {
				t.Fatal(err)
			}
			ct := headers["content-type"]
			if ct == "" {
				ct = "application/json" // the front door's default
			}
			// The recording shows the body as text, or parsed when it was JSON.
			var wantBody string
			if json.Unmarshal(want.Content, &wantBody) != nil {
				var v any
				_ = json.Unmarshal(want.Content, &v)
				var got any
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q is not the recorded JSON %s", body, want.Content)
				}
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(v)
				if string(g) != string(w) {
					t.Errorf("body %s, AWS %s", body, want.Content)
				}
			} else if string(body) != wantBody {
				t.Errorf("body %q, AWS %q", body, wantBody)
			}
			if status != want.StatusCode || ct != want.Headers["Content-Type"] || strconv.Itoa(len(body)) != want.Headers["Content-Length"] {
				t.Errorf("status %d, %s, %d bytes; AWS %d, %s, %s bytes", status, ct, len(body), want.StatusCode, want.Headers["Content-Type"], want.Headers["Content-Length"])
			}
		})
	}
}

func TestMapResponseFormat(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		status        int
		headers       map[string]string
		cookies       string
		body          string
		fails         bool
	}{
		{"string status", `{"statusCode":"418","body":"i'm a teapot"}`, 418, nil, "", "i'm a teapot", false},
		{"headers and cookies", `{"statusCode":201,"headers":{"X-A":"b","n":1},"cookies":["a=1","b=2"],"body":"x"}`, 201,
			map[string]string{"X-A": "b", "n": "1"}, "a=1|b=2", "x", false},
		{"base64", `{"statusCode":200,"body":"AAEC","isBase64Encoded":true}`, 200, nil, "", "\x00\x01\x02", false},
		{"object body", `{"statusCode":200,"body":{"k": [1, 2]}}`, 200, nil, "", `{"k":[1,2]}`, false},
		{"no body", `{"statusCode":204}`, 204, nil, "", "", false},
		{"null", `null`, 200, nil, "", "", false},
		{"bad status", `{"statusCode":"teapot"}`, 0, nil, "", "", true},
		{"not JSON", `hello`, 0, nil, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, headers, cookies, body, err := mapResponse([]byte(tc.payload))
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v", err)
			}
			if tc.fails {
				return
			}
			if status != tc.status || string(body) != tc.body || strings.Join(cookies, "|") != tc.cookies || len(headers) != len(tc.headers) {
				t.Errorf("got %d %v %v %q", status, headers, cookies, body)
			}
			for k, v := range tc.headers {
				if headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, headers[k], v)
				}
			}
		})
	}
}

func TestAllowsEveryone(t *testing.T) {
	st := func(action string, p registry.Principal, c *registry.Condition) *registry.Policy {
		return &registry.Policy{Statements: []registry.Statement{{Sid: "s", Effect: "Allow", Principal: p, Action: action, Condition: c}}}
	}
	none := &registry.Condition{StringEquals: &registry.StringEquals{FunctionURLAuthType: "NONE"}}
	for _, tc := range []struct {
		name string
		p    *registry.Policy
		want bool
	}{
		{"no policy", nil, false},
		{"url, everyone, NONE", st("lambda:InvokeFunctionUrl", registry.Everyone, none), true},
		{"url, everyone", st("lambda:InvokeFunctionUrl", registry.Everyone, nil), true},
		{"every lambda action", st("lambda:*", registry.Everyone, nil), true},
		{"invoke only", st("lambda:InvokeFunction", registry.Everyone, none), false},
		{"an account", st("lambda:InvokeFunctionUrl", registry.Principal{AWS: "arn:aws:iam::123456789012:root"}, none), false},
		{"a service", st("lambda:InvokeFunctionUrl", registry.Principal{Service: "s3.amazonaws.com"}, nil), false},
		{"for AWS_IAM", st("lambda:InvokeFunctionUrl", registry.Everyone,
			&registry.Condition{StringEquals: &registry.StringEquals{FunctionURLAuthType: "AWS_IAM"}}), false},
		{"a source ARN", st("lambda:InvokeFunctionUrl", registry.Everyone,
			&registry.Condition{ArnLike: &registry.ArnLike{SourceArn: "arn:aws:s3:::b"}}), false},
	} {
		if got := allowsEveryone(tc.p); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRoute(t *testing.T) {
	s, err := New(Config{Region: "eu-west-1"}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("a1", 16)
	for _, tc := range []struct {
		host, target string
		id, path     string
		ok           bool
	}{
		{id + ".lambda-url.eu-west-1.on.aws", "/x/y?q=1", id, "/x/y", true},
		{strings.ToUpper(id) + ".LAMBDA-URL.eu-west-1.on.aws:443", "/", id, "/", true},
		{id + ".lambda-url.us-east-1.on.aws", "/x", "", "", false}, // another region
		{"127.0.0.1:9002", "/" + id + "/x%2Fy", id, "/x%2Fy", true},
		{"127.0.0.1:9002", "/" + id, id, "/", true},
		{"127.0.0.1:9002", "/" + id + "x", "", "", false},
		{"127.0.0.1:9002", "/short/", "", "", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://placeholder"+tc.target, nil)
		r.Host = tc.host
		gotID, path, ok := s.route(r)
		if ok != tc.ok || gotID != tc.id || path != tc.path {
			t.Errorf("%s%s: %q %q %v, want %q %q %v", tc.host, tc.target, gotID, path, ok, tc.id, tc.path, tc.ok)
		}
	}
}

func TestIsText(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/plain": true, "text/html; charset=utf-8": true, "application/json": true, "application/vnd.api+json": true,
		"application/xml": true, "image/svg+xml": true, "application/x-www-form-urlencoded": true,
		"application/octet-stream": false, "multipart/form-data; boundary=x": false, "image/png": false, "": false,
	} {
		if got := isText(ct); got != want {
			t.Errorf("isText(%q) = %v", ct, got)
		}
	}
}
