package test

import (
	"bytes"
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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"

	"github.com/shoal-dev/shoal/internal/awscli"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// skewedSigner is the SDK's signer on a machine whose clock is off by skew.
type skewedSigner struct{ skew time.Duration }

func (s skewedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string,
	at time.Time, opts ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, payloadHash, service, region, at.Add(s.skew), opts...)
}

// TestSigV4SDK drives the API with the AWS SDK for Go v2: the key shoal wrote
// works; an unknown key, a wrong secret, a clock more than 5 minutes off and no
// signature each get Lambda's error, as the SDK reports it.
func TestSigV4SDK(t *testing.T) {
	s := startShoal(t)
	if _, err := s.client.ListFunctions(ctx(t), &lambda.ListFunctionsInput{}); err != nil {
		t.Fatalf("signed with the key of %s: %v", s.keys.file, err)
	}
	createGoFn(t, s, "signed")
	invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("signed"), Payload: []byte(`{"n":1}`)})

	right, _ := s.keys.creds.Retrieve(ctx(t))
	noRetry := func(o *lambda.Options) { o.RetryMaxAttempts = 1 }
	tests := []struct {
		name          string
		creds         aws.CredentialsProvider
		opts          []func(*lambda.Options)
		code, message string
	}{
		{name: "unknown access key", creds: credentials.NewStaticCredentialsProvider("AKIAUNKNOWNUNKNOWN00", right.SecretAccessKey, ""),
			code: "UnrecognizedClientException", message: "The security token included in the request is invalid."},
		{name: "wrong secret", creds: credentials.NewStaticCredentialsProvider(right.AccessKeyID, "wrong"+right.SecretAccessKey[5:], ""),
			code: "InvalidSignatureException", message: "The request signature we calculated does not match the signature you provided. " +
				"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."},
		{name: "clock 6 minutes slow", creds: s.keys.creds,
			opts: []func(*lambda.Options){func(o *lambda.Options) { o.HTTPSignerV4 = skewedSigner{-6 * time.Minute} }},
			code: "InvalidSignatureException", message: "Signature expired: "},
		{name: "clock 6 minutes fast", creds: s.keys.creds,
			opts: []func(*lambda.Options){func(o *lambda.Options) { o.HTTPSignerV4 = skewedSigner{6 * time.Minute} }},
			code: "InvalidSignatureException", message: "Signature not yet current: "},
		{name: "unsigned", creds: aws.AnonymousCredentials{},
			code: "MissingAuthenticationTokenException", message: "Missing Authentication Token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(s.endpoint, tt.creds, append(tt.opts, noRetry)...)
			for name, call := range map[string]func() error{
				"Invoke": func() error {
					_, err := c.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("signed"), Payload: []byte(`{}`)})
					return err
				},
				"DeleteFunction": func() error {
					_, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("signed")})
					return err
				},
			} {
				err := call()
				var apiErr smithy.APIError
				var respErr *awshttp.ResponseError
				if !errors.As(err, &apiErr) || !errors.As(err, &respErr) {
					t.Fatalf("%s: %v, want %s", name, err, tt.code)
				}
				if apiErr.ErrorCode() != tt.code || !strings.HasPrefix(apiErr.ErrorMessage(), tt.message) ||
					respErr.HTTPStatusCode() != http.StatusForbidden {
					t.Errorf("%s: %d %s: %q, want 403 %s: %q", name, respErr.HTTPStatusCode(), apiErr.ErrorCode(),
						apiErr.ErrorMessage(), tt.code, tt.message)
				}
			}
		})
	}
	// None of the refused calls deleted the function.
	invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("signed"), Payload: []byte(`{"n":2}`)})

	// GetFunction's Code.Location is presigned, as AWS's is: fetched without
	// credentials it gives the package; changed, it is refused.
	got, err := s.client.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("signed")})
	if err != nil {
		t.Fatal(err)
	}
	loc := aws.ToString(got.Code.Location)
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	zip, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(zip, goFnZip) {
		t.Errorf("GET Code.Location %s: %s, %d bytes", loc, resp.Status, len(zip))
	}
	resp, err = http.Get(strings.Replace(loc, "X-Amz-Expires=600", "X-Amz-Expires=601", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(loc, "X-Amz-Expires=600") {
		t.Errorf("GET a changed Code.Location: %s (%s)", resp.Status, loc)
	}
}

// TestShoalEndpointsNeedASignature: shoal's own endpoints refuse what the
// Lambda API refuses, and only the metrics listener answers without a
// signature.
func TestShoalEndpointsNeedASignature(t *testing.T) {
	s := startShoal(t)
	createGoFn(t, s, "ep")
	invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("ep"), Payload: []byte(`{}`)})
	wrong := &http.Client{Transport: &sigv4.Transport{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAUNKNOWNUNKNOWN00", "x", "")}}
	for _, path := range []string{"/shoal/v1/fleet", "/shoal/v1/usage", "/shoal/v1/functions/ep/logs",
		"/shoal/v1/metrics/targets", "/metrics", "/2015-03-31/functions"} {
		for _, c := range []struct {
			name   string
			client *http.Client
			code   string
		}{
			{"unsigned", http.DefaultClient, "MissingAuthenticationTokenException"},
			{"unknown key", wrong, "UnrecognizedClientException"},
		} {
			resp, err := c.client.Get(s.endpoint + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != c.code ||
				resp.Header.Get("X-Amzn-Requestid") == "" {
				t.Errorf("GET %s %s: %s %s %s", path, c.name, resp.Status, resp.Header.Get("X-Amzn-Errortype"), b)
			}
		}
	}
	for _, path := range []string{"/shoal/v1/fleet", "/shoal/v1/usage", "/shoal/v1/functions/ep/logs", "/shoal/v1/metrics/targets"} {
		resp, err := s.http.Get(s.endpoint + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s signed: %s", path, resp.Status)
		}
	}

	// The metrics listener serves Prometheus, which cannot sign, and the
	// scrape targets for its HTTP service discovery, the control plane first.
	m := scrapeMetrics(t, s.metricsURL())
	if got, _ := m.sum("shoal_function_invocations_total", promLabels("function", "ep")); got != 1 {
		t.Errorf("shoal_function_invocations_total of ep: %v, want 1", got)
	}
	resp, err := http.Get("http://" + s.srv.MetricsAddr() + "/shoal/v1/metrics/targets")
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	err = json.NewDecoder(resp.Body).Decode(&groups)
	resp.Body.Close()
	if err != nil || len(groups) == 0 || groups[0].Targets[0] != s.srv.MetricsAddr() || groups[0].Labels["component"] != "control-plane" {
		t.Errorf("scrape targets: %+v (%v)", groups, err)
	}
	// It serves nothing else.
	resp, err = http.Get("http://" + s.srv.MetricsAddr() + "/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the Lambda API on the metrics listener: %s", resp.Status)
	}
}

// TestCredentialsFileProfiles: every profile of the credentials file is a key
// the API accepts, including one added while shoal runs.
func TestCredentialsFileProfiles(t *testing.T) {
	s := startShoal(t)
	info, err := os.Stat(s.keys.file)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", s.keys.file, info.Mode().Perm())
	}
	if path, created := s.srv.CredentialsFile(); path != s.keys.file || !created {
		t.Errorf("CredentialsFile() = %s, %t", path, created)
	}
	ci := credentials.NewStaticCredentialsProvider("AKIACICICICICICICICI", "ci-secret-of-forty-characters-0123456789", "")
	c := newClient(s.endpoint, ci, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	if _, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{}); !isAPIError(err, "UnrecognizedClientException") {
		t.Fatalf("before it is in the file: %v", err)
	}
	f, err := os.OpenFile(s.keys.file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "\n[ci]\naws_access_key_id = AKIACICICICICICICICI\naws_secret_access_key = ci-secret-of-forty-characters-0123456789\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, func() error {
		_, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{})
		return err
	})
	if _, err := s.client.ListFunctions(ctx(t), &lambda.ListFunctionsInput{}); err != nil {
		t.Fatalf("the first key after adding a second: %v", err)
	}
}

// TestCredentialsFlag: shoal up --credentials uses a file of the operator's,
// with several keys, and writes none into the data directory.
func TestCredentialsFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("[alice]\naws_access_key_id = AKIAALICEALICEALICE0\naws_secret_access_key = alice\n"+
		"[bob]\naws_access_key_id = AKIABOBBOBBOBBOBBOB0\naws_secret_access_key = bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startShoal(t, func(c *serverConfig) { c.CredentialsFile = file })
	if path, created := s.srv.CredentialsFile(); path != file || created {
		t.Errorf("CredentialsFile() = %s, %t", path, created)
	}
	for _, k := range [][2]string{{"AKIAALICEALICEALICE0", "alice"}, {"AKIABOBBOBBOBBOBBOB0", "bob"}} {
		c := newClient(s.endpoint, credentials.NewStaticCredentialsProvider(k[0], k[1], ""))
		if _, err := c.ListFunctions(ctx(t), &lambda.ListFunctionsInput{}); err != nil {
			t.Errorf("%s: %v", k[0], err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "credentials")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a credentials file in the data directory: %v", err)
	}
}

// TestAuthNone: shoal up --auth none takes requests signed or not.
func TestAuthNone(t *testing.T) {
	s := startShoal(t, withAuthNone)
	if path, _ := s.srv.CredentialsFile(); path != "" {
		t.Errorf("credentials file %q with --auth none", path)
	}
	createGoFn(t, s, "open") // unsigned
	invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("open"), Payload: []byte(`{}`)})
	anyKey := newClient(s.endpoint, credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "whatever", ""))
	if _, err := anyKey.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("open")}); err != nil {
		t.Fatalf("signed with any key: %v", err)
	}
	resp, err := http.Get(s.endpoint + "/shoal/v1/fleet")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /shoal/v1/fleet unsigned: %s", resp.Status)
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "credentials")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--auth none wrote a credentials file: %v", err)
	}
}

func isAPIError(err error, code string) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
}

// TestSigV4AWSCLI runs the aws CLI v2 (Debian's) and v1 (which knows the
// capacity-provider commands) against shoal: the key of its credentials file
// works, and an unknown key, a wrong secret and a clock 10 minutes off each get
// Lambda's error.
func TestSigV4AWSCLI(t *testing.T) {
	clis := map[string]func(testing.TB) awscli.CLI{"v2": awscli.V2, "v1": awscli.V1}
	s := startShoal(t)
	right, _ := s.keys.creds.Retrieve(ctx(t))
	dir := t.TempDir()
	writeKeys := func(name, id, secret string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("[default]\naws_access_key_id = "+id+"\naws_secret_access_key = "+secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	unknown := writeKeys("unknown", "AKIAUNKNOWNUNKNOWN00", right.SecretAccessKey)
	wrongSecret := writeKeys("wrong-secret", right.AccessKeyID, "wrong"+right.SecretAccessKey[5:])
	skew := func(d time.Duration) string {
		return "SHOAL_TEST_CLOCK_SKEW=" + strconv.Itoa(int(d.Seconds()))
	}
	pythonPath := "PYTHONPATH=" + filepath.Join(moduleRoot, "test", "testdata", "skewclock")
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, goFnZip, 0o644); err != nil {
		t.Fatal(err)
	}
	for version, find := range clis {
		t.Run(version, func(t *testing.T) {
			bin := find(t).Path
			fn := "cli-" + version
			out, code := runAWS(t, bin, s, "lambda", "create-function", "--function-name", fn, "--runtime", "provided.al2023",
				"--handler", "bootstrap", "--role", role, "--zip-file", "fileb://"+zipPath)
			if code != 0 {
				t.Fatalf("create-function with the key of %s: exit %d: %s", s.keys.file, code, out)
			}
			out, code = runAWSWith(t, bin, s.endpoint, []string{"AWS_SHARED_CREDENTIALS_FILE=" + s.keys.file, pythonPath,
				skew(4 * time.Minute)}, "lambda", "get-function", "--function-name", fn)
			if code != 0 {
				t.Fatalf("get-function 4 minutes ahead: exit %d: %s", code, out)
			}
			tests := []struct {
				name string
				env  []string
				want string
			}{
				{"unknown key", []string{"AWS_SHARED_CREDENTIALS_FILE=" + unknown},
					"An error occurred (UnrecognizedClientException) when calling the ListFunctions operation: " +
						"The security token included in the request is invalid."},
				{"wrong secret", []string{"AWS_SHARED_CREDENTIALS_FILE=" + wrongSecret},
					"An error occurred (InvalidSignatureException) when calling the ListFunctions operation: " +
						"The request signature we calculated does not match the signature you provided."},
				{"clock 10 minutes slow", []string{"AWS_SHARED_CREDENTIALS_FILE=" + s.keys.file, pythonPath, skew(-10 * time.Minute)},
					"An error occurred (InvalidSignatureException) when calling the ListFunctions operation: Signature expired: "},
				{"clock 10 minutes fast", []string{"AWS_SHARED_CREDENTIALS_FILE=" + s.keys.file, pythonPath, skew(10 * time.Minute)},
					"An error occurred (InvalidSignatureException) when calling the ListFunctions operation: Signature not yet current: "},
			}
			for _, tt := range tests {
				out, code := runAWSWith(t, bin, s.endpoint, tt.env, "lambda", "list-functions")
				if code == 0 || !strings.Contains(out, tt.want) {
					t.Errorf("%s: exit %d: %s\nwant %q", tt.name, code, out, tt.want)
				}
			}
			if out, code := runAWS(t, bin, s, "lambda", "delete-function", "--function-name", fn); code != 0 {
				t.Errorf("delete-function: exit %d: %s", code, out)
			}
		})
	}
}

// TestUpSaysHowToSign runs the shoal binary: its banner names the credentials
// file with the line that makes the AWS SDKs and the aws CLI use it, and that
// line works as printed; --auth none warns at start.
func TestUpSaysHowToSign(t *testing.T) {
	dataDir := t.TempDir()
	p := runShoalUp(t, dataDir, freePort(t))
	want := "  export AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dataDir, "credentials") + " AWS_DEFAULT_REGION=us-east-1\n"
	var line string
	poll.Until(t, 10*time.Second, func() error {
		out := p.output.String()
		if i := strings.Index(out, want); i >= 0 {
			line = strings.TrimSpace(out[i : i+len(want)])
			return nil
		}
		return fmt.Errorf("the banner lacks %q:\n%s", want, out)
	})
	if strings.Contains(p.output.String(), "warning") {
		t.Errorf("a warning with the API signed:\n%s", p.output)
	}
	// The exported variables, as printed, are all the aws CLI needs.
	env := strings.Fields(strings.TrimPrefix(line, "export "))
	if out, code := runAWSWith(t, awscli.V2(t).Path, p.endpoint, env, "lambda", "list-functions"); code != 0 {
		t.Fatalf("aws lambda list-functions with %v: exit %d: %s", env, code, out)
	}
	p.stop(t)

	open := runShoalUp(t, t.TempDir(), freePort(t), "--auth", "none")
	defer open.stop(t)
	poll.Until(t, 10*time.Second, func() error {
		out := open.output.String()
		if !strings.Contains(out, "warning: --auth none: the API accepts every request, signed or not") ||
			!strings.Contains(out, "The API takes any request (--auth none).") {
			return fmt.Errorf("no warning:\n%s", out)
		}
		return nil
	})
	resp, err := http.Get(open.endpoint + "/2015-03-31/functions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("unsigned ListFunctions with --auth none: %s", resp.Status)
	}
}
