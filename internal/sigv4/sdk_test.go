package sigv4

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
)

// verifyingServer answers every request that Verify accepts with 200 {} and
// every other with the error, through the API's error writer; it keeps the
// errors.
type verifyingServer struct {
	*httptest.Server
	mu   sync.Mutex
	errs []error
}

func newVerifyingServer(t *testing.T, v *Verifier) *verifyingServer {
	s := &verifyingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := v.Verify(r); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
			lambdaapi.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *verifyingServer) refusals() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// skewedSigner is the SDK's signer on a machine whose clock is off by skew.
type skewedSigner struct {
	skew time.Duration
}

func (s *skewedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string,
	at time.Time, opts ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, payloadHash, service, region, at.Add(s.skew), opts...)
}

func sdkClient(endpoint, id, secret string, opts ...func(*lambda.Options)) *lambda.Client {
	return lambda.New(lambda.Options{Region: testRegion, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, "")}, opts...)
}

// TestSDKRequestsVerify sends the Lambda operations whose requests differ in
// shape (path labels, query, headers, bodies) with the AWS SDK for Go v2
// through a real HTTP server, and checks every one verifies.
func TestSDKRequestsVerify(t *testing.T) {
	s := newVerifyingServer(t, testVerifier(t, time.Now()))
	c := sdkClient(s.URL, testKeyID, testSecret, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	arn := "arn:aws:lambda:us-east-1:123456789012:function:echo"
	calls := map[string]func() error{
		"Invoke by ARN": func() error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn), Qualifier: aws.String("prod"),
				Payload: []byte(`{"hello":"world"}`), LogType: types.LogTypeTail, ClientContext: aws.String("e30=")})
			return err
		},
		"ListFunctions with a marker": func() error {
			_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{Marker: aws.String("a+b/c=="), MaxItems: aws.Int32(5)})
			return err
		},
		"CreateFunction": func() error {
			_, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("echo"),
				Role: aws.String("arn:aws:iam::123456789012:role/x"), Runtime: types.RuntimeProvidedal2023,
				Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: []byte("PK\x03\x04 not really")}})
			return err
		},
		"TagResource": func() error {
			_, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: map[string]string{"a b": "c/d"}})
			return err
		},
		"UntagResource": func() error {
			_, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: []string{"a b", "c"}})
			return err
		},
		"DeleteAlias": func() error {
			_, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String("echo"), Name: aws.String("live")})
			return err
		},
		"GetCapacityProvider": func() error {
			_, err := c.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if errs := s.refusals(); len(errs) > 0 {
		t.Errorf("refused: %v", errs)
	}
}

// TestSDKSeesLambdasErrors checks the SDK surfaces each refusal with Lambda's
// error code, status and message.
func TestSDKSeesLambdasErrors(t *testing.T) {
	s := newVerifyingServer(t, testVerifier(t, time.Now()))
	noRetry := func(o *lambda.Options) { o.RetryMaxAttempts = 1 }
	tests := []struct {
		name    string
		client  *lambda.Client
		code    string
		message string
	}{
		{name: "unknown key", client: sdkClient(s.URL, "AKIANOTAKEY", testSecret, noRetry),
			code: "UnrecognizedClientException", message: "The security token included in the request is invalid."},
		{name: "wrong secret", client: sdkClient(s.URL, testKeyID, "not-the-secret", noRetry),
			code: "InvalidSignatureException", message: "The request signature we calculated does not match"},
		{name: "clock 10 minutes slow", client: sdkClient(s.URL, testKeyID, testSecret, noRetry,
			func(o *lambda.Options) { o.HTTPSignerV4 = &skewedSigner{skew: -10 * time.Minute} }),
			code: "InvalidSignatureException", message: "Signature expired: "},
		{name: "clock 10 minutes fast", client: sdkClient(s.URL, testKeyID, testSecret, noRetry,
			func(o *lambda.Options) { o.HTTPSignerV4 = &skewedSigner{skew: 10 * time.Minute} }),
			code: "InvalidSignatureException", message: "Signature not yet current: "},
		{name: "unsigned", client: lambda.New(lambda.Options{Region: testRegion, BaseEndpoint: aws.String(s.URL),
			Credentials: aws.AnonymousCredentials{}, RetryMaxAttempts: 1}),
			code: "MissingAuthenticationTokenException", message: "Missing Authentication Token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.ListFunctions(context.Background(), &lambda.ListFunctionsInput{})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err %v, want an API error", err)
			}
			if apiErr.ErrorCode() != tt.code || !strings.HasPrefix(apiErr.ErrorMessage(), tt.message) {
				t.Errorf("got %s: %q, want %s: %q…", apiErr.ErrorCode(), apiErr.ErrorMessage(), tt.code, tt.message)
			}
			var respErr *awshttp.ResponseError
			if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != http.StatusForbidden {
				t.Errorf("status: %v", err)
			}
		})
	}
}

// realClockVerifier is a verifier on the real clock (the SDK compares with its own).
func realClockVerifier(t *testing.T) *Verifier {
	t.Helper()
	keys, err := StaticKeys(&Key{Profile: "default", AccessKeyID: testKeyID, SecretAccessKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Region: testRegion}, keys, clock.Real{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestTransportSigns signs requests to shoal's own endpoints with Transport.
func TestTransportSigns(t *testing.T) {
	s := newVerifyingServer(t, realClockVerifier(t))
	hc := &http.Client{Transport: &Transport{Region: testRegion,
		Credentials: credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")}}
	for _, req := range []struct{ method, path, body string }{
		{"GET", "/shoal/v1/fleet", ""},
		{"GET", "/shoal/v1/functions/caf%C3%A9/logs?follow=true&since=2026-11-26T09%3A00%3A00Z", ""},
		{"POST", "/2015-03-31/functions/echo/invocations", `{"a":1}`},
	} {
		r, err := http.NewRequest(req.method, s.URL+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: %s (%v)", req.method, req.path, resp.Status, s.refusals())
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("the caller's request was modified")
		}
	}
	unsigned := &http.Client{Transport: &Transport{Region: testRegion, Credentials: aws.AnonymousCredentials{}}}
	resp, err := unsigned.Get(s.URL + "/shoal/v1/fleet")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" {
		t.Errorf("anonymous: %s %s", resp.Status, resp.Header.Get("X-Amzn-Errortype"))
	}
}
