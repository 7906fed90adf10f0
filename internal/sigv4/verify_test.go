package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/encoding/httpbinding"
	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
)

const (
	testKeyID  = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

var testTime = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

func testVerifier(t testing.TB, now time.Time) *Verifier {
	t.Helper()
	keys, err := StaticKeys(&Key{Profile: "default", AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		&Key{Profile: "other", AccessKeyID: "AKIAOTHER", SecretAccessKey: "other-secret"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Region: testRegion}, keys, clock.NewFake(now), nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sdkSign signs r as the AWS SDK for Go v2 does, with its own signer.
func sdkSign(t testing.TB, r *http.Request, id, secret, region, service string, at time.Time) {
	t.Helper()
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatal(err)
	}
}

// arrive sends r through the wire format and reads it back as net/http's
// server does: request line, Host, Content-Length and body as they arrive.
func arrive(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func newRequest(t testing.TB, method, rawURL, body string, header map[string][]string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		r.Header[k] = v
	}
	return r
}

// TestVerifyAcceptsWhatTheSDKSigns signs requests of every shape Lambda's
// clients send with the SDK's signer and checks that Verify accepts each, and
// refuses it once any signed part changes.
func TestVerifyAcceptsWhatTheSDKSigns(t *testing.T) {
	const arnPath = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations"
	tests := []struct {
		name   string
		method string
		url    string
		body   string
		header map[string][]string
	}{
		{name: "list functions", method: "GET", url: "http://127.0.0.1:9000/2015-03-31/functions"},
		{name: "list with marker and max items", method: "GET",
			url: "http://127.0.0.1:9000/2015-03-31/functions?MaxItems=50&Marker=a%2Bb%2Fc%3D%3D&FunctionVersion=ALL"},
		{name: "repeated and empty query values", method: "GET",
			url: "http://127.0.0.1:9000/2017-03-31/tags/x?b=2&a=&b=1&a=z%20y"},
		{name: "invoke", method: "POST", url: "http://127.0.0.1:9000/2015-03-31/functions/echo/invocations",
			body: `{"hello":"world"}`, header: map[string][]string{"Content-Type": {"application/octet-stream"},
				"X-Amz-Invocation-Type": {"RequestResponse"}, "X-Amz-Log-Type": {"Tail"}}},
		{name: "invoke by ARN with qualifier", method: "POST", url: "http://127.0.0.1:9000" + arnPath + "?Qualifier=prod",
			body: `{}`},
		{name: "empty body POST", method: "POST", url: "http://localhost:9000/2015-03-31/functions/echo/versions"},
		{name: "header with runs of spaces and two values", method: "PUT",
			url:  "http://localhost:9000/2017-10-31/functions/f/concurrency",
			body: `{"ReservedConcurrentExecutions":5}`,
			header: map[string][]string{"Content-Type": {"application/json"},
				"X-Custom": {"  a   b  c ", "second"}}},
		{name: "delete with a path needing encoding", method: "DELETE",
			url: "http://localhost:9000/2015-03-31/functions/f/aliases/a%20b%2Bc"},
		{name: "shoal endpoint", method: "GET",
			url: "http://127.0.0.1:9000/shoal/v1/usage?since=2026-11-26T09%3A00%3A00Z"},
		{name: "unicode in the path", method: "GET", url: "http://127.0.0.1:9000/2015-03-31/functions/caf%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVerifier(t, testTime.Add(90*time.Second))
			r := newRequest(t, tt.method, tt.url, tt.body, tt.header)
			sdkSign(t, r, testKeyID, testSecret, testRegion, "lambda", testTime)
			got := arrive(t, r)
			got.Header.Set("User-Agent", "changed after signing") // not signed
			key, err := v.Verify(got)
			if err != nil {
				t.Fatalf("Verify: %v\nAuthorization: %s", err, r.Header.Get("Authorization"))
			}
			if key.AccessKeyID != testKeyID {
				t.Fatalf("key %s", key.AccessKeyID)
			}
			if b, _ := io.ReadAll(got.Body); string(b) != tt.body {
				t.Fatalf("the handler reads body %q, want %q", b, tt.body)
			}

			// Each signed part changed: the signature no longer matches.
			mutations := map[string]func(r *http.Request){
				"method": func(r *http.Request) { r.Method = "PATCH" },
				"path":   func(r *http.Request) { r.URL.Path += "x"; r.URL.RawPath = "" },
				"query":  func(r *http.Request) { r.URL.RawQuery += "&extra=1" },
				"host":   func(r *http.Request) { r.Host = "127.0.0.2:9000" },
				"date": func(r *http.Request) {
					r.Header.Set("X-Amz-Date", testTime.Add(time.Second).Format(amzDateFormat))
				},
				"body": func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(tt.body + " ")); r.ContentLength = -1 },
			}
			for what, mutate := range mutations {
				r := newRequest(t, tt.method, tt.url, tt.body, tt.header)
				sdkSign(t, r, testKeyID, testSecret, testRegion, "lambda", testTime)
				mutate(r)
				_, err := v.Verify(arrive(t, r))
				if e := awserr.As(err); e == nil || e.Code != awserr.CodeInvalidSignature || e.Message != awserr.SignatureMismatch {
					t.Errorf("%s changed: got %v, want InvalidSignatureException", what, err)
				}
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	const invokeURL = "http://127.0.0.1:9000/2015-03-31/functions/echo/invocations"
	signed := func(mod func(r *http.Request)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := newRequest(t, "POST", invokeURL, `{}`, nil)
			sdkSign(t, r, testKeyID, testSecret, testRegion, "lambda", testTime)
			if mod != nil {
				mod(r)
			}
			return arrive(t, r)
		}
	}
	signedAs := func(id, secret, region, service string, at time.Time) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := newRequest(t, "POST", invokeURL, `{}`, nil)
			sdkSign(t, r, id, secret, region, service, at)
			return arrive(t, r)
		}
	}
	setAuth := func(v string) func(r *http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", v) }
	}
	tests := []struct {
		name    string
		req     func(t *testing.T) *http.Request
		code    string // "" for success
		message string
	}{
		{name: "valid", req: signed(nil)},
		{name: "another profile's key", req: signedAs("AKIAOTHER", "other-secret", testRegion, "lambda", testTime)},
		{name: "4 minutes behind", req: signedAs(testKeyID, testSecret, testRegion, "lambda", testTime.Add(-4*time.Minute))},
		{name: "4 minutes ahead", req: signedAs(testKeyID, testSecret, testRegion, "lambda", testTime.Add(4*time.Minute))},
		{name: "unsigned", req: func(t *testing.T) *http.Request {
			return arrive(t, newRequest(t, "POST", invokeURL, `{}`, nil))
		}, code: awserr.CodeMissingAuthenticationToken, message: "Missing Authentication Token"},
		{name: "unknown access key", req: signedAs("AKIAUNKNOWN", testSecret, testRegion, "lambda", testTime),
			code: awserr.CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "wrong secret", req: signedAs(testKeyID, testSecret+"x", testRegion, "lambda", testTime),
			code: awserr.CodeInvalidSignature, message: awserr.SignatureMismatch},
		{name: "6 minutes behind", req: signedAs(testKeyID, testSecret, testRegion, "lambda", testTime.Add(-6*time.Minute)),
			code:    awserr.CodeInvalidSignature,
			message: "Signature expired: 20261126T092400Z is now earlier than 20261126T092500Z (20261126T093000Z - 5 min.)"},
		{name: "6 minutes ahead", req: signedAs(testKeyID, testSecret, testRegion, "lambda", testTime.Add(6*time.Minute)),
			code:    awserr.CodeInvalidSignature,
			message: "Signature not yet current: 20261126T093600Z is still later than 20261126T093500Z (20261126T093000Z + 5 min.)"},
		{name: "other region", req: signedAs(testKeyID, testSecret, "eu-west-1", "lambda", testTime),
			code: awserr.CodeInvalidSignature, message: "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{name: "other service", req: signedAs(testKeyID, testSecret, testRegion, "s3", testTime),
			code: awserr.CodeInvalidSignature, message: "Credential should be scoped to correct service: 'lambda'. "},
		{name: "scope of another day", req: signed(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261126/", "/20261125/", 1))
		}), code: awserr.CodeInvalidSignature, message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of " +
			"date from HTTP: '20261125' != '20261126', from '20261126T093000Z'."},
		{name: "bad terminator", req: signed(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
		}), code: awserr.CodeInvalidSignature, message: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "},
		{name: "session token", req: signed(func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "tok") }),
			code: awserr.CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "bearer token", req: signed(setAuth("Bearer abc")), code: awserr.CodeIncompleteSignature,
			message: "'abc' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer abc'."},
		{name: "nothing but a token", req: signed(func(r *http.Request) {
			r.Header.Set("Authorization", "eyJ0eXAi")
			r.Header.Del("X-Amz-Date")
		}), code: awserr.CodeIncompleteSignature, message: "Authorization header requires 'Credential' parameter. " +
			"Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. " +
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=eyJ0eXAi"},
		{name: "no signature parameter", req: signed(setAuth(
			"AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20261126/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date")),
			code: awserr.CodeIncompleteSignature, message: "Authorization header requires 'Signature' parameter. " +
				"Authorization=AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20261126/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date"},
		{name: "short credential", req: signed(setAuth(
			"AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20261126/us-east-1, SignedHeaders=host;x-amz-date, Signature=00")),
			code: awserr.CodeIncompleteSignature, message: "Credential must have exactly 5 slash-delimited elements, " +
				"e.g. keyid/date/region/service/term, got '" + testKeyID + "/20261126/us-east-1'"},
		{name: "other algorithm", req: signed(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
		}), code: awserr.CodeIncompleteSignature, message: "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'."},
		{name: "host not signed", req: signed(setAuth(
			"AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20261126/us-east-1/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=00")),
			code: awserr.CodeIncompleteSignature, message: "'Host' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "signed header missing", req: signed(func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=", "SignedHeaders=accept;", 1))
		}), code: awserr.CodeIncompleteSignature, message: "'accept' is named as a SignedHeader, but it does not exist in the HTTP request."},
		{name: "malformed date", req: signed(func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-11-26") }),
			code: awserr.CodeIncompleteSignature, message: "Date must be in ISO-8601 'basic format'. Got '2026-11-26'. " +
				"See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "signature not hex", req: signed(func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, "Signature=")]+"Signature=zz")
		}), code: awserr.CodeInvalidSignature, message: awserr.SignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := testVerifier(t, testTime)
			_, err := v.Verify(tt.req(t))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			e := awserr.As(err)
			if e == nil {
				t.Fatalf("Verify: %v, want %s", err, tt.code)
			}
			if diff := cmp.Diff([]any{tt.code, 403, tt.message}, []any{e.Code, e.Status, e.Message}); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyPresigned(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")
	c, _ := creds.Retrieve(context.Background())
	presign := func(t *testing.T, expires string) *http.Request {
		t.Helper()
		u := "http://127.0.0.1:9000/2015-03-31/functions/echo?Qualifier=1"
		if expires != "" {
			u += "&X-Amz-Expires=" + expires
		}
		r := newRequest(t, "GET", u, "", nil)
		signed, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), c, r, emptySHA256, "lambda", testRegion, testTime)
		if err != nil {
			t.Fatal(err)
		}
		r = newRequest(t, "GET", signed, "", nil)
		for k, v := range hdr {
			if k != "Host" {
				r.Header[k] = v
			}
		}
		return arrive(t, r)
	}
	tests := []struct {
		name    string
		expires string
		now     time.Time
		code    string
	}{
		{name: "within 5 minutes", now: testTime.Add(time.Minute)},
		{name: "after 5 minutes", now: testTime.Add(6 * time.Minute), code: awserr.CodeInvalidSignature},
		{name: "within its expiry", expires: "900", now: testTime.Add(14 * time.Minute)},
		{name: "after its expiry", expires: "900", now: testTime.Add(16 * time.Minute), code: awserr.CodeInvalidSignature},
		{name: "expiry not a number", expires: "soon", now: testTime, code: awserr.CodeIncompleteSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testVerifier(t, tt.now).Verify(presign(t, tt.expires))
			if got := codeOf(err); got != tt.code {
				t.Fatalf("Verify: %v, want code %q", err, tt.code)
			}
		})
	}
	t.Run("tampered query", func(t *testing.T) {
		r := presign(t, "")
		r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "Qualifier=1", "Qualifier=2", 1)
		if _, err := testVerifier(t, testTime).Verify(r); codeOf(err) != awserr.CodeInvalidSignature {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("header and query both", func(t *testing.T) {
		r := presign(t, "")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x")
		if _, err := testVerifier(t, testTime).Verify(r); codeOf(err) != awserr.CodeIncompleteSignature {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("incomplete query", func(t *testing.T) {
		r := arrive(t, newRequest(t, "GET", "http://127.0.0.1:9000/x?X-Amz-Algorithm=AWS4-HMAC-SHA256", "", nil))
		if _, err := testVerifier(t, testTime).Verify(r); codeOf(err) != awserr.CodeIncompleteSignature {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func codeOf(err error) string {
	if e := awserr.As(err); e != nil {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestVerifyBodyLimit(t *testing.T) {
	keys, _ := StaticKeys(&Key{AccessKeyID: testKeyID, SecretAccessKey: testSecret})
	v, err := New(Config{Region: testRegion, MaxBodyBytes: 10}, keys, clock.NewFake(testTime), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"0123456789", "0123456789a"} {
		r := newRequest(t, "POST", "http://h/2015-03-31/functions", body, nil)
		sdkSign(t, r, testKeyID, testSecret, testRegion, "lambda", testTime)
		_, err := v.Verify(arrive(t, r))
		if len(body) <= 10 && err != nil {
			t.Errorf("%d bytes: %v", len(body), err)
		}
		if e := awserr.As(err); len(body) > 10 && (e == nil || e.Status != http.StatusRequestEntityTooLarge) {
			t.Errorf("%d bytes: %v, want a 413", len(body), err)
		}
	}
}

// TestAppendEscapedMatchesTheSDK checks the URI encoder against the one the
// SDK's signer uses for the canonical URI (smithy-go's httpbinding.EscapePath).
func TestAppendEscapedMatchesTheSDK(t *testing.T) {
	for _, s := range []string{"/", "/a b/c+d/%3A/é/~-._", "/2015-03-31/functions/arn%3Aaws%3Alambda/x?y#z", "\x00\xff"} {
		if got, want := string(appendURI(nil, s)), httpbinding.EscapePath(s, false); got != want {
			t.Errorf("%q: %q, SDK %q", s, got, want)
		}
		if got, want := string(appendEscaped(nil, s, true)), httpbinding.EscapePath(s, true); got != want {
			t.Errorf("%q with slashes: %q, SDK %q", s, got, want)
		}
	}
}

// TestPresign: a URL Presign makes is good without credentials until it
// expires, and for nothing else.
func TestPresign(t *testing.T) {
	key := &Key{Profile: "default", AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	u, err := Presign(context.Background(), "http://127.0.0.1:9000/shoal/v1/code/abc", key, testRegion, testTime, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) *http.Request { return arrive(t, newRequest(t, "GET", u, "", nil)) }
	tests := []struct {
		name string
		url  string
		now  time.Time
		code string
	}{
		{name: "at once", url: u, now: testTime},
		{name: "9 minutes later", url: u, now: testTime.Add(9 * time.Minute)},
		{name: "11 minutes later", url: u, now: testTime.Add(11 * time.Minute), code: awserr.CodeInvalidSignature},
		{name: "another path", url: strings.Replace(u, "/abc?", "/abd?", 1), now: testTime, code: awserr.CodeInvalidSignature},
		{name: "a longer life", url: strings.Replace(u, "X-Amz-Expires=600", "X-Amz-Expires=6000", 1), now: testTime,
			code: awserr.CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := testVerifier(t, tt.now).Verify(get(tt.url)); codeOf(err) != tt.code {
				t.Fatalf("Verify: %v, want %q", err, tt.code)
			}
		})
	}
}
