package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shoal-dev/shoal/internal/poll"
)

// shoalProcess is the shoal binary running `shoal up`.
type shoalProcess struct {
	cmd      *exec.Cmd
	endpoint string
	// keys are the API's keys, from the credentials file in its data directory.
	keys   apiKeys
	output *lockedText
	exited chan error
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// authNone says the flags of `shoal up` turn signature verification off.
func authNone(flags []string) bool {
	for i, f := range flags {
		if f == "--auth=none" || (f == "--auth" && i+1 < len(flags) && flags[i+1] == "none") {
			return true
		}
	}
	return false
}

// lockedText is text one goroutine appends to while others read it.
type lockedText struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedText) WriteString(s string) {
	l.mu.Lock()
	l.b.WriteString(s)
	l.mu.Unlock()
}

func (l *lockedText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runShoalUp starts `shoal up` (with args added) and waits until it says it is up.
func runShoalUp(t *testing.T, dataDir, addr string, args ...string) *shoalProcess {
	t.Helper()
	cmd := exec.Command(shoalBin, append([]string{"up", "--data", dataDir, "--listen", addr, "--metrics-listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0"},
		args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &shoalProcess{cmd: cmd, endpoint: "http://" + addr, output: &lockedText{}, exited: make(chan error, 1)}
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			p.output.WriteString(sc.Text() + "\n")
			if !signalled && strings.Contains(sc.Text(), "shoal is up") {
				close(up)
				signalled = true
			}
		}
	}()
	go func() { p.exited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-up:
	case err := <-p.exited:
		t.Fatalf("shoal up exited: %v\n%s", err, p.output)
	case <-time.After(60 * time.Second):
		t.Fatalf("shoal up did not come up:\n%s", p.output)
	}
	if !authNone(args) {
		file := filepath.Join(dataDir, "credentials")
		if i := slices.Index(args, "--credentials"); i >= 0 && i+1 < len(args) {
			file = args[i+1]
		}
		p.keys = readKeys(t, file)
	}
	return p
}

// api is a shoal that drives p through its API, signing with its keys.
func (p *shoalProcess) api(dataDir string) *shoal {
	return &shoal{client: newClient(p.endpoint, p.keys.creds),
		noRetry:  newClient(p.endpoint, p.keys.creds, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }),
		endpoint: p.endpoint, dataDir: dataDir, keys: p.keys, http: p.keys.http}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *shoalProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("shoal exited with %v after SIGTERM:\n%s", err, p.output)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("shoal did not stop after SIGTERM:\n%s", p.output)
	}
}

func TestRestartKeepsFunctions(t *testing.T) {
	dataDir := t.TempDir()
	addr := freePort(t)
	p := runShoalUp(t, dataDir, addr)
	c := newClient(p.endpoint, p.keys.creds)
	s := &shoal{client: c, endpoint: p.endpoint, keys: p.keys, http: p.keys.http}
	createGoFn(t, s, "keep")
	if _, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("keep")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("keep"),
		Name: aws.String("prod"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("keep"), Payload: []byte(`{"n":1}`)})

	// An invocation in flight when SIGTERM arrives still finishes.
	inflight := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("keep"), Payload: []byte(`{"op":"sleep","ms":1500}`)})
		if err == nil && out.FunctionError != nil {
			err = fmt.Errorf("function error %s: %s", *out.FunctionError, out.Payload)
		}
		inflight <- err
	}()
	// Wait until the slow invocation has started in its environment (its START line).
	poll.Until(t, 10*time.Second, func() error {
		if n := strings.Count(readLogs(t, s, "keep"), "START RequestId:"); n < 2 {
			return fmt.Errorf("%d START lines", n)
		}
		return nil
	})
	if len(processesOf("keep")) == 0 {
		t.Fatal("no environment process of the function is running")
	}
	p.stop(t)
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight invocation during shutdown: %v", err)
	}
	if pids := processesOf("keep"); len(pids) > 0 {
		t.Fatalf("environment processes left running after shoal stopped: %v", pids)
	}

	p2 := runShoalUp(t, dataDir, addr)
	defer p2.stop(t)
	if p2.keys.id != p.keys.id {
		t.Fatalf("the API's key changed across the restart: %s, then %s", p.keys.id, p2.keys.id)
	}
	c2 := newClient(p2.endpoint, p2.keys.creds)
	s2 := &shoal{client: c2, endpoint: p2.endpoint, keys: p2.keys, http: p2.keys.http}
	if _, err := c2.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("keep"), Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("version 1 after restart: %v", err)
	}
	alias, err := c2.GetAlias(ctx(t), &lambda.GetAliasInput{FunctionName: aws.String("keep"), Name: aws.String("prod")})
	if err != nil || aws.ToString(alias.FunctionVersion) != "1" {
		t.Fatalf("alias after restart: %v, %v", alias, err)
	}
	out := invoke(t, s2, &lambda.InvokeInput{FunctionName: aws.String("keep"), Qualifier: aws.String("prod"), Payload: []byte(`{"n":2}`)})
	if string(out.Payload) != `{"n":2}` || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("invoke after restart: %s (version %s)", out.Payload, aws.ToString(out.ExecutedVersion))
	}
}

// readLogs returns a function's stored log lines as shoal serves them.
func readLogs(t *testing.T, s *shoal, function string) string {
	t.Helper()
	resp, err := s.http.Get(s.endpoint + "/shoal/v1/functions/" + function + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// processesOf lists the processes whose environment names the function.
func processesOf(function string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	want := []byte("AWS_LAMBDA_FUNCTION_NAME=" + function + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, want) {
			pids = append(pids, pid)
		}
	}
	return pids
}
