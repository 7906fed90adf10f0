package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// createURL gives a function a URL and returns its address.
func createURL(t *testing.T, s *shoal, name, qualifier string, auth types.FunctionUrlAuthType, mode types.InvokeMode, cors *types.Cors) string {
	t.Helper()
	in := &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name), AuthType: auth, InvokeMode: mode, Cors: cors}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := s.client.CreateFunctionUrlConfig(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.FunctionUrl)
}

// allowPublic adds the statement a URL with AuthType NONE needs.
func allowPublic(t *testing.T, s *shoal, name, qualifier string) {
	t.Helper()
	in := &lambda.AddPermissionInput{FunctionName: aws.String(name), StatementId: aws.String("FunctionURLAllowPublicAccess"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), FunctionUrlAuthType: types.FunctionUrlAuthTypeNone}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	if _, err := s.client.AddPermission(ctx(t), in); err != nil {
		t.Fatal(err)
	}
}

// urlID is the id in a FunctionUrl of the path form (http://host:port/<id>/).
func urlID(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Trim(p.Path, "/")
	if len(id) != 32 {
		t.Fatalf("FunctionUrl %q has no id", u)
	}
	return id
}

type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, req *http.Request) httpAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpAnswer{resp.StatusCode, resp.Header, b}
}

func newRequest(t *testing.T, method, u string, body []byte) *http.Request {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestFunctionURL drives function URLs with net/http and curl: GET and POST,
// headers, cookies, base64 bodies both ways, errors, auth and CORS.
func TestFunctionURL(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "web")
	base := createURL(t, s, "web", "", types.FunctionUrlAuthTypeNone, "", &types.Cors{
		AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"GET", "POST"},
		AllowHeaders: []string{"x-custom"}, ExposeHeaders: []string{"x-echo"}, MaxAge: aws.Int32(600), AllowCredentials: aws.Bool(true)})
	id := urlID(t, base)

	t.Run("forbidden without a policy", func(t *testing.T) {
		a := do(t, newRequest(t, "GET", base, nil))
		if a.status != 403 || a.header.Get("X-Amzn-ErrorType") != "AccessDeniedException" ||
			!strings.Contains(string(a.body), "Forbidden. For troubleshooting Function URL authorization issues") {
			t.Fatalf("%d %v %s", a.status, a.header, a.body)
		}
		// A statement for another action, or with a condition nobody anonymous meets, is not enough.
		if _, err := s.client.AddPermission(ctx(t), &lambda.AddPermissionInput{FunctionName: aws.String("web"), StatementId: aws.String("acct"),
			Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"), SourceAccount: aws.String("123456789012")}); err != nil {
			t.Fatal(err)
		}
		if a := do(t, newRequest(t, "GET", base, nil)); a.status != 403 {
			t.Fatalf("with a source-account statement: %d %s", a.status, a.body)
		}
	})
	allowPublic(t, s, "web", "")

	t.Run("GET with headers, query and cookies", func(t *testing.T) {
		req := newRequest(t, "GET", base+"some/pa%2Fth?a=1&a=2&b=x%20y", nil)
		req.Header.Add("X-Multi", "one")
		req.Header.Add("X-Multi", "two")
		req.Header.Set("Cookie", "c1=v1; c2=v2")
		req.Header.Set("User-Agent", "shoal-test")
		a := do(t, req)
		if a.status != 200 || a.header.Get("X-Echo") != "yes" || a.header.Get("X-Amzn-Requestid") == "" {
			t.Fatalf("%d %v %s", a.status, a.header, a.body)
		}
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(a.body, &ev); err != nil {
			t.Fatalf("event %s: %v", a.body, err)
		}
		rc := ev.RequestContext
		if ev.Version != "2.0" || ev.RawPath != "/some/pa%2Fth" || ev.RawQueryString != "a=1&a=2&b=x%20y" ||
			ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "x y" ||
			ev.Headers["x-multi"] != "one,two" || ev.Headers["user-agent"] != "shoal-test" || ev.Headers["cookie"] != "" ||
			strings.Join(ev.Cookies, "|") != "c1=v1|c2=v2" || ev.Body != "" || ev.IsBase64Encoded ||
			rc.HTTP.Method != "GET" || rc.HTTP.Path != "/some/pa%2Fth" || rc.HTTP.UserAgent != "shoal-test" || rc.HTTP.SourceIP != "127.0.0.1" ||
			rc.APIID != id || rc.DomainPrefix != id || rc.DomainName != id+".lambda-url.us-east-1.on.aws" ||
			rc.AccountID != "anonymous" || rc.RequestID != a.header.Get("X-Amzn-Requestid") || rc.TimeEpoch == 0 {
			t.Errorf("event %s", a.body)
		}
		if rc.HTTP.Protocol != "HTTP/1.1" || ev.Headers["x-forwarded-proto"] != "http" || !strings.HasPrefix(ev.Headers["x-amzn-trace-id"], "Root=1-") {
			t.Errorf("event %s", a.body)
		}
	})

	t.Run("POST text and binary bodies", func(t *testing.T) {
		req := newRequest(t, "POST", base, []byte(`{"n":1}`))
		req.Header.Set("Content-Type", "application/json")
		var ev events.LambdaFunctionURLRequest
		a := do(t, req)
		if err := json.Unmarshal(a.body, &ev); err != nil || ev.Body != `{"n":1}` || ev.IsBase64Encoded || ev.RequestContext.HTTP.Method != "POST" {
			t.Errorf("text body: %s %v", a.body, err)
		}
		bin := []byte{0, 1, 2, 0xfe, 0xff}
		req = newRequest(t, "POST", base, bin)
		req.Header.Set("Content-Type", "application/octet-stream")
		a = do(t, req)
		if err := json.Unmarshal(a.body, &ev); err != nil || !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString(bin) {
			t.Errorf("binary body: %s %v", a.body, err)
		}
	})

	t.Run("status, headers and cookies of the answer", func(t *testing.T) {
		a := do(t, newRequest(t, "GET", base+"?op=status&code=418", nil))
		if a.status != 418 || string(a.body) != "status 418" || a.header.Get("X-Custom") != "custom value" ||
			a.header.Get("Content-Type") != "text/plain" || strings.Join(a.header.Values("Set-Cookie"), "|") != "a=1; Path=/|b=2; HttpOnly" {
			t.Errorf("%d %v %q", a.status, a.header, a.body)
		}
	})

	t.Run("a base64 answer is sent decoded", func(t *testing.T) {
		a := do(t, newRequest(t, "GET", base+"?op=binary", nil))
		want := make([]byte, 256)
		for i := range want {
			want[i] = byte(i)
		}
		if a.status != 200 || !bytes.Equal(a.body, want) || a.header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("%d %v %q", a.status, a.header, a.body)
		}
	})

	t.Run("JSON without statusCode is 200 application/json", func(t *testing.T) {
		a := do(t, newRequest(t, "GET", base+"?op=raw", nil))
		if a.status != 200 || a.header.Get("Content-Type") != "application/json" || string(a.body) != `{"hello":"world","n":1}` {
			t.Errorf("%d %v %q", a.status, a.header, a.body)
		}
	})

	t.Run("a function error is 502", func(t *testing.T) {
		a := do(t, newRequest(t, "GET", base+"?op=error", nil))
		if a.status != 502 || string(a.body) != "Internal Server Error" {
			t.Errorf("%d %v %q", a.status, a.header, a.body)
		}
	})

	t.Run("CORS", func(t *testing.T) {
		pre := newRequest(t, "OPTIONS", base, nil)
		pre.Header.Set("Origin", "https://app.example")
		pre.Header.Set("Access-Control-Request-Method", "POST")
		pre.Header.Set("Access-Control-Request-Headers", "x-custom")
		a := do(t, pre)
		if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			a.header.Get("Access-Control-Allow-Methods") != "GET,POST" || a.header.Get("Access-Control-Allow-Headers") != "x-custom" ||
			a.header.Get("Access-Control-Max-Age") != "600" || a.header.Get("Access-Control-Allow-Credentials") != "true" || len(a.body) != 0 {
			t.Errorf("preflight: %d %v %q", a.status, a.header, a.body)
		}
		pre.Header.Set("Origin", "https://evil.example")
		if a := do(t, pre); a.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from another origin: %v", a.header)
		}
		req := newRequest(t, "GET", base, nil)
		req.Header.Set("Origin", "https://app.example")
		a = do(t, req)
		if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "https://app.example" || a.header.Get("Access-Control-Expose-Headers") != "x-echo" {
			t.Errorf("request: %d %v", a.status, a.header)
		}
	})

	t.Run("by host name", func(t *testing.T) {
		req := newRequest(t, "GET", "http://"+s.srv.URLAddr()+"/by/host?x=1", nil)
		req.Host = id + ".lambda-url.us-east-1.on.aws"
		a := do(t, req)
		var ev events.LambdaFunctionURLRequest
		if err := json.Unmarshal(a.body, &ev); err != nil || a.status != 200 || ev.RawPath != "/by/host" || ev.Headers["host"] != req.Host {
			t.Errorf("%d %s %v", a.status, a.body, err)
		}
	})

	t.Run("an unknown URL", func(t *testing.T) {
		a := do(t, newRequest(t, "GET", "http://"+s.srv.URLAddr()+"/"+strings.Repeat("0", 32)+"/", nil))
		if a.status != 403 || string(a.body) != `{"Message":null}` || a.header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("%d %v %q", a.status, a.header, a.body)
		}
	})

	t.Run("curl", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl is not installed")
		}
		out, err := exec.Command(curl, "-sS", "-i", "-X", "POST", "-H", "Content-Type: text/plain", "-H", "Cookie: k=v",
			"-H", "Host: "+id+".lambda-url.us-east-1.on.aws", "--data-binary", "hello curl",
			"http://"+s.srv.URLAddr()+"/from/curl?q=1").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		head, body, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
		var ev events.LambdaFunctionURLRequest
		if !strings.HasPrefix(head, "HTTP/1.1 200") || json.Unmarshal([]byte(body), &ev) != nil ||
			ev.Body != "hello curl" || ev.RawPath != "/from/curl" || strings.Join(ev.Cookies, ",") != "k=v" || !strings.Contains(ev.Headers["user-agent"], "curl/") {
			t.Errorf("curl got:\n%s", out)
		}
		out, err = exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", base+"?op=error").CombinedOutput()
		if err != nil || string(out) != "502" {
			t.Errorf("curl of a failing function: %s %v", out, err)
		}
		out, err = exec.Command(curl, "-sS", base+"?op=binary").CombinedOutput()
		if err != nil || len(out) != 256 || out[255] != 255 {
			t.Errorf("curl of a binary answer: %d bytes %v", len(out), err)
		}
	})

	t.Run("alias URL and deletion", func(t *testing.T) {
		if _, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("web")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("web"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
			t.Fatal(err)
		}
		live := createURL(t, s, "web", "live", types.FunctionUrlAuthTypeNone, "", nil)
		if a := do(t, newRequest(t, "GET", live, nil)); a.status != 403 {
			t.Fatalf("the alias has no policy of its own yet: %d", a.status)
		}
		allowPublic(t, s, "web", "live")
		a := do(t, newRequest(t, "GET", live+"?op=status&code=201", nil))
		if a.status != 201 {
			t.Fatalf("alias URL: %d %s", a.status, a.body)
		}
		if _, err := s.client.DeleteAlias(ctx(t), &lambda.DeleteAliasInput{FunctionName: aws.String("web"), Name: aws.String("live")}); err != nil {
			t.Fatal(err)
		}
		if a := do(t, newRequest(t, "GET", live, nil)); a.status != 403 {
			t.Errorf("the URL of a deleted alias answers %d", a.status)
		}
		if _, err := s.client.DeleteFunctionUrlConfig(ctx(t), &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("web")}); err != nil {
			t.Fatal(err)
		}
		if a := do(t, newRequest(t, "GET", base, nil)); a.status != 403 || string(a.body) != `{"Message":null}` {
			t.Errorf("a deleted URL answers %d %s", a.status, a.body)
		}
	})
}

// TestFunctionURLIAM: an AWS_IAM URL serves requests signed with a key of the
// credentials file, as the aws CLI and SDK signers make them, and tells the
// function who signed; unsigned and wrongly signed requests get Lambda's 403.
func TestFunctionURLIAM(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "secure")
	u := createURL(t, s, "secure", "", types.FunctionUrlAuthTypeAwsIam, "", nil)

	if a := do(t, newRequest(t, "GET", u, nil)); a.status != 403 || a.header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
		t.Fatalf("unsigned: %d %v %s", a.status, a.header, a.body)
	}
	right, err := s.keys.creds.Retrieve(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// A signer of its own: the SDK's caches signing keys by access key id, and
	// would sign with the right secret after a request signed with it.
	wrongReq := newRequest(t, "POST", u+"?x=1", []byte(`{"k":"v"}`))
	sum := sha256.Sum256([]byte(`{"k":"v"}`))
	wrongCreds := aws.Credentials{AccessKeyID: right.AccessKeyID, SecretAccessKey: "wrong" + right.SecretAccessKey[5:]}
	if err := v4.NewSigner().SignHTTP(ctx(t), wrongCreds, wrongReq, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if a := do(t, wrongReq); a.status != 403 {
		t.Errorf("signed with a wrong secret: %d", a.status)
	}
	allowPublic(t, s, "secure", "")
	if a := do(t, newRequest(t, "GET", u, nil)); a.status != 403 {
		t.Errorf("unsigned, with a public policy: %d", a.status)
	}

	resp, err := s.keys.http.Post(u+"p?x=1", "application/json", strings.NewReader(`{"k":"v"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signed: %d %s", resp.StatusCode, body)
	}
	var ev events.LambdaFunctionURLRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("event %s: %v", body, err)
	}
	az := ev.RequestContext.Authorizer
	if az == nil || az.IAM == nil || az.IAM.AccessKey != right.AccessKeyID || az.IAM.AccountID != "123456789012" ||
		!strings.HasPrefix(az.IAM.UserARN, "arn:aws:iam::123456789012:user/") || ev.Body != `{"k":"v"}` || ev.RawPath != "/p" {
		t.Errorf("event of a signed request: %s", body)
	}
}

// TestFunctionURLAPI exercises the five URL configuration operations and the
// three policy ones with the SDK, against a running shoal.
func TestFunctionURLAPI(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "conf")
	u := createURL(t, s, "conf", "", types.FunctionUrlAuthTypeAwsIam, types.InvokeModeResponseStream, nil)
	got, err := s.client.GetFunctionUrlConfig(ctx(t), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("conf")})
	if err != nil || aws.ToString(got.FunctionUrl) != u || got.AuthType != types.FunctionUrlAuthTypeAwsIam || got.InvokeMode != types.InvokeModeResponseStream {
		t.Fatalf("get: %+v %v", got, err)
	}
	if !strings.HasPrefix(u, "http://"+s.srv.URLAddr()+"/") {
		t.Errorf("FunctionUrl %s is not on the URL listener %s", u, s.srv.URLAddr())
	}
	up, err := s.client.UpdateFunctionUrlConfig(ctx(t), &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String("conf"),
		AuthType: types.FunctionUrlAuthTypeNone, Cors: &types.Cors{AllowOrigins: []string{"*"}}})
	if err != nil || up.AuthType != types.FunctionUrlAuthTypeNone || up.Cors == nil || up.Cors.AllowOrigins[0] != "*" {
		t.Fatalf("update: %+v %v", up, err)
	}
	list, err := s.client.ListFunctionUrlConfigs(ctx(t), &lambda.ListFunctionUrlConfigsInput{FunctionName: aws.String("conf")})
	if err != nil || len(list.FunctionUrlConfigs) != 1 || aws.ToString(list.FunctionUrlConfigs[0].FunctionUrl) != u {
		t.Fatalf("list: %+v %v", list, err)
	}
	allowPublic(t, s, "conf", "")
	pol, err := s.client.GetPolicy(ctx(t), &lambda.GetPolicyInput{FunctionName: aws.String("conf")})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"lambda:FunctionUrlAuthType":"NONE"`) {
		t.Fatalf("policy: %v %v", aws.ToString(pol.Policy), err)
	}
	if _, err := s.client.RemovePermission(ctx(t), &lambda.RemovePermissionInput{FunctionName: aws.String("conf"),
		StatementId: aws.String("FunctionURLAllowPublicAccess"), RevisionId: pol.RevisionId}); err != nil {
		t.Fatal(err)
	}
	var conflict *types.ResourceConflictException
	allowPublic(t, s, "conf", "")
	_, err = s.client.AddPermission(ctx(t), &lambda.AddPermissionInput{FunctionName: aws.String("conf"), StatementId: aws.String("FunctionURLAllowPublicAccess"),
		Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*")})
	if !isErrAs(err, &conflict) {
		t.Errorf("a duplicate statement id: %v", err)
	}
	if _, err := s.client.DeleteFunctionUrlConfig(ctx(t), &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String("conf")}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := s.client.GetFunctionUrlConfig(ctx(t), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String("conf")}); !isErrAs(err, &nf) {
		t.Errorf("get after delete: %v", err)
	}
}
