package lambdaapi

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/registry"
)

// fakeInvoker stands in for the router in this package's unit tests only: it echoes
// the payload or returns what the test set. The real router is exercised by the
// end-to-end tests that run the whole shoal process.
type fakeInvoker struct {
	mu   sync.Mutex
	reqs []InvokeRequest
	// respond, when set, answers instead of the echo.
	respond func(req *InvokeRequest) (*InvokeResult, error)
	// events are the asynchronous invocations queued; queueErr fails them.
	events   []InvokeRequest
	queueErr error
}

func (f *fakeInvoker) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResult, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, *req)
	respond := f.respond
	f.mu.Unlock()
	if respond != nil {
		return respond(req)
	}
	return &InvokeResult{Payload: req.Payload, ExecutedVersion: req.Version.Version, LogTail: []byte("tail of log")}, nil
}

// InvokeAsync records a queued event (async.go's AsyncInvoker); queueErr,
// when set, is its answer.
func (f *fakeInvoker) InvokeAsync(ctx context.Context, req *InvokeRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queueErr != nil {
		return f.queueErr
	}
	f.events = append(f.events, *req)
	return nil
}

func (f *fakeInvoker) queued() []InvokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]InvokeRequest(nil), f.events...)
}

func (f *fakeInvoker) last() InvokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

type env struct {
	reg    *registry.Registry
	inv    *fakeInvoker
	client *lambda.Client
	url    string
}

func newEnv(t testing.TB, mutate ...func(*Config)) *env {
	t.Helper()
	return newEnvWithRegistry(t, registry.Config{}, mutate...)
}

// newEnvWithAccount is newEnv in another account.
func newEnvWithAccount(t testing.TB, account string, mutate ...func(*Config)) *env {
	t.Helper()
	return newEnvWithRegistry(t, registry.Config{AccountID: account}, mutate...)
}

// newEnvWithRegistry is newEnv with a registry configuration (e.g. its quotas).
func newEnvWithRegistry(t testing.TB, rc registry.Config, mutate ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, b.JetStream(), rc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{}
	for _, m := range mutate {
		m(&cfg)
	}
	inv := &fakeInvoker{}
	srv := httptest.NewServer(New(cfg, reg, inv, nil))
	t.Cleanup(func() {
		srv.Close()
		reg.Close()
		b.Close()
	})
	client := lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	})
	return &env{reg: reg, inv: inv, client: client, url: srv.URL}
}

func makeZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for name, content := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const testRole = "arn:aws:iam::123456789012:role/lambda-role"

func createInput(name string, zip []byte) *lambda.CreateFunctionInput {
	return &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Role:         aws.String(testRole),
		Handler:      aws.String("bootstrap"),
		Code:         &types.FunctionCode{ZipFile: zip},
	}
}

func (e *env) create(t testing.TB, name string) *lambda.CreateFunctionOutput {
	t.Helper()
	out, err := e.client.CreateFunction(context.Background(), createInput(name, makeZip(t, map[string]string{"bootstrap": name})))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantErr asserts that err is the SDK's typed error T, and returns it.
func wantErr[T error](t testing.TB, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error = %T %v, want %T", err, err, target)
	}
	return target
}
