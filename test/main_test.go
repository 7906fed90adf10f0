// Package test holds shoal's end-to-end tests: they start the real shoal (in this
// process through controlplane.Start, or as the built binary where a test needs a
// process to stop and restart), deploy functions built with aws-lambda-go, Node.js
// and Python handlers, and drive everything with the AWS SDK for Go v2, shoal's own
// CLI and the aws CLI.
package test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shoal-dev/shoal/internal/controlplane"
	"github.com/shoal-dev/shoal/internal/sigv4"

	// The functions under testdata are built from this module, so it must keep
	// requiring aws-lambda-go (go mod tidy does not look into testdata).
	_ "github.com/aws/aws-lambda-go/lambda"
)

// Built once in TestMain.
var (
	goFnZip    []byte // the aws-lambda-go test function (test/testdata/gofn) as a deployment package
	shoalBin   string // the shoal binary
	moduleRoot string
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test setup:", err)
		os.Exit(1)
	}
	os.Exit(code(m))
}

func setup() (func(*testing.M) int, error) {
	_, file, _, _ := runtime.Caller(0)
	moduleRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "shoal-e2e-")
	if err != nil {
		return nil, err
	}
	bootstrap := filepath.Join(dir, "bootstrap")
	if err := goBuild(bootstrap, "./test/testdata/gofn"); err != nil {
		return nil, err
	}
	goFnZip, err = zipFiles(map[string]string{"bootstrap": bootstrap})
	if err != nil {
		return nil, err
	}
	shoalBin = filepath.Join(dir, "shoal")
	if err := goBuild(shoalBin, "./cmd/shoal"); err != nil {
		return nil, err
	}
	return func(m *testing.M) int {
		defer os.RemoveAll(dir)
		return m.Run()
	}, nil
}

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// zipFiles zips name → path of a file on disk, keeping the file's mode.
func zipFiles(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, path := range files {
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return nil, err
		}
		hdr.Name = name
		hdr.Method = zip.Deflate
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(b); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// zipSources zips name → contents.
func zipSources(files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			panic(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// shoal is one running shoal main job with an SDK client pointed at it.
type shoal struct {
	srv    *controlplane.Server
	client *lambda.Client
	// noRetry does not retry throttles, so a test sees each 429.
	noRetry  *lambda.Client
	endpoint string
	dataDir  string
	// keys are the API's keys; http signs with them, for shoal's own endpoints.
	keys apiKeys
	http *http.Client
}

type option func(*controlplane.Config)

// withAuthNone starts shoal with --auth none.
func withAuthNone(c *controlplane.Config) { c.Auth = controlplane.AuthNone }

// startShoal starts shoal in this process on free ports with its own data
// directory, where it writes the credentials file the clients sign with.
func startShoal(t *testing.T, opts ...option) *shoal {
	t.Helper()
	cfg := controlplane.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", URLListen: "127.0.0.1:0", Isolate: true,
		ShutdownTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	var deps controlplane.Deps
	if os.Getenv("SHOAL_TEST_LOG") != "" { // SHOAL_TEST_LOG=1 go test … shows shoal's own log
		deps.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := controlplane.Start(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	endpoint := "http://" + srv.Addr()
	var keys apiKeys
	if file, _ := srv.CredentialsFile(); file != "" {
		keys = readKeys(t, file)
	} else {
		keys = apiKeys{creds: aws.AnonymousCredentials{}, http: http.DefaultClient}
	}
	return &shoal{srv: srv, client: newClient(endpoint, keys.creds),
		noRetry:  newClient(endpoint, keys.creds, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }),
		endpoint: endpoint, dataDir: cfg.DataDir, keys: keys, http: keys.http}
}

// metricsURL is where s serves Prometheus metrics.
func (s *shoal) metricsURL() string { return "http://" + s.srv.MetricsAddr() + "/metrics" }

func newClient(endpoint string, creds aws.CredentialsProvider, opts ...func(*lambda.Options)) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
	}, opts...)
}

// apiKeys is the key a shoal wrote to its credentials file, as clients use it.
type apiKeys struct {
	file  string                  // the credentials file
	id    string                  // its [default] access key id
	creds aws.CredentialsProvider // that key
	http  *http.Client            // an HTTP client that signs with it
}

// readKeys reads the first key of a credentials file.
func readKeys(t *testing.T, file string) apiKeys {
	t.Helper()
	profiles, err := sigv4.ReadCredentialsFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(profiles) == 0 {
		t.Fatalf("%s has no key", file)
	}
	p := profiles[0]
	creds := credentials.NewStaticCredentialsProvider(p.AccessKeyID, p.SecretAccessKey, "")
	return apiKeys{file: file, id: p.AccessKeyID, creds: creds,
		http: &http.Client{Transport: &sigv4.Transport{Credentials: creds, Region: "us-east-1"}}}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

type serverConfig = controlplane.Config

// isErrAs is errors.As for the SDK's typed errors.
func isErrAs[E error](err error, target *E) bool { return errors.As(err, target) }

func errUnexpected(what string, got any) error { return fmt.Errorf("%s: got %v", what, got) }

// memoryCgroup reports whether this machine can enforce a memory limit.
func memoryCgroup() bool {
	if os.Geteuid() != 0 {
		return false
	}
	for _, p := range []string{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cgroup.controllers"} {
		if b, err := os.ReadFile(p); err == nil && (strings.HasSuffix(p, "limit_in_bytes") || strings.Contains(string(b), "memory")) {
			return true
		}
	}
	return false
}
