package env

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shoal-dev/shoal/internal/runtimes"
)

func TestSpecDefaults(t *testing.T) {
	cases := []struct {
		name string
		in   Spec
		want Spec
	}{
		{"on-demand", Spec{FunctionName: "f", MemoryMB: 1769},
			Spec{FunctionName: "f", MemoryMB: 1769, MaxConcurrency: 1, InitTimeout: 10 * time.Second, Timeout: 3 * time.Second,
				CPUs: 1, Version: "$LATEST", Region: "us-east-1", InitType: InitOnDemand, LogGroup: "/aws/lambda/f"}},
		{"managed instances", Spec{FunctionName: "f", MemoryMB: 4096, CPUs: 2, MaxConcurrency: 32, Timeout: 300 * time.Second, InitType: InitManagedInstances},
			Spec{FunctionName: "f", MemoryMB: 4096, CPUs: 2, MaxConcurrency: 32, InitTimeout: 300 * time.Second, Timeout: 300 * time.Second,
				Version: "$LATEST", Region: "us-east-1", InitType: InitManagedInstances, LogGroup: "/aws/lambda/f"}},
		{"managed instances short timeout", Spec{FunctionName: "f", MemoryMB: 2048, Timeout: 10 * time.Second, InitType: InitManagedInstances},
			Spec{FunctionName: "f", MemoryMB: 2048, MaxConcurrency: 1, InitTimeout: 130 * time.Second, Timeout: 10 * time.Second,
				CPUs: 2048.0 / 1769, Version: "$LATEST", Region: "us-east-1", InitType: InitManagedInstances, LogGroup: "/aws/lambda/f"}},
		{"JSON log levels default to INFO", Spec{FunctionName: "f", MemoryMB: 1769, Logging: LogConfig{Format: LogFormatJSON, SystemLevel: "WARN"}},
			Spec{FunctionName: "f", MemoryMB: 1769, MaxConcurrency: 1, InitTimeout: 10 * time.Second, Timeout: 3 * time.Second,
				CPUs: 1, Version: "$LATEST", Region: "us-east-1", InitType: InitOnDemand, LogGroup: "/aws/lambda/f",
				Logging: LogConfig{Format: LogFormatJSON, ApplicationLevel: "INFO", SystemLevel: "WARN"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.in
			got.withDefaults()
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("defaults (-want +got):\n%s", d)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{FunctionName: "f", Runtime: "provided.al2023", CodeDir: "/code"}
	cases := []struct {
		name   string
		mutate func(*Spec)
		want   string
	}{
		{"valid", func(*Spec) {}, ""},
		{"no name", func(s *Spec) { s.FunctionName = "" }, "function name"},
		{"runtime", func(s *Spec) { s.Runtime = "java21" }, "unsupported runtime"},
		{"relative code", func(s *Spec) { s.CodeDir = "code" }, "absolute"},
		{"negative memory", func(s *Spec) { s.MemoryMB = -1 }, "negative"},
		{"log format", func(s *Spec) { s.Logging.Format = "json" }, "log format"},
		{"JSON levels", func(s *Spec) {
			s.Logging = LogConfig{Format: LogFormatJSON, ApplicationLevel: "INFO", SystemLevel: "INFO"}
		}, ""},
		{"application level", func(s *Spec) {
			s.Logging = LogConfig{Format: LogFormatJSON, ApplicationLevel: "LOUD", SystemLevel: "INFO"}
		}, "application log level"},
		{"system level", func(s *Spec) {
			s.Logging = LogConfig{Format: LogFormatJSON, ApplicationLevel: "INFO", SystemLevel: "ERROR"}
		}, "system log level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.mutate(&s)
			err := s.Validate()
			if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate() = %v, want %q", err, c.want)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	envMap := func(env []string) map[string]string {
		m := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v // the last one wins, as in exec.Cmd
		}
		return m
	}
	base := Spec{FunctionName: "fn", Version: "7", Runtime: "provided.al2023", Handler: "h", MemoryMB: 512, CPUs: 0.29,
		Region: "eu-west-1", InitType: InitOnDemand, LogGroup: "/aws/lambda/fn", LogStream: "s", MaxConcurrency: 1,
		Environment: map[string]string{"MINE": "1", "AWS_REGION": "nope", "TZ": "nope"}}
	cases := []struct {
		name   string
		mutate func(*Spec)
		want   map[string]string // values that must be there ("" = absent)
	}{
		{"lambda variables win over the user's", func(*Spec) {}, map[string]string{
			"_HANDLER": "h", "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime",
			"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_LAMBDA_FUNCTION_VERSION": "7", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
			"AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn", "AWS_LAMBDA_LOG_STREAM_NAME": "s",
			"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
			"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "TZ": ":UTC",
			"LANG": "en_US.UTF-8", "MINE": "1", "GOMAXPROCS": "1", "AWS_LAMBDA_MAX_CONCURRENCY": "",
			"AWS_LAMBDA_LOG_FORMAT": "", "AWS_LAMBDA_LOG_LEVEL": "",
		}},
		{"the JSON log format and its level", func(s *Spec) {
			s.Logging = LogConfig{Format: LogFormatJSON, ApplicationLevel: "WARN", SystemLevel: "DEBUG"}
		}, map[string]string{"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}},
		{"the user's log settings win", func(s *Spec) {
			s.Logging = LogConfig{Format: LogFormatJSON, ApplicationLevel: "WARN"}
			s.Environment = map[string]string{"AWS_LAMBDA_LOG_LEVEL": "TRACE", "AWS_LAMBDA_LOG_FORMAT": "TEXT"}
		}, map[string]string{"AWS_LAMBDA_LOG_FORMAT": "TEXT", "AWS_LAMBDA_LOG_LEVEL": "TRACE"}},
		{"max concurrency only above one", func(s *Spec) { s.MaxConcurrency = 8; s.CPUs = 2 }, map[string]string{
			"AWS_LAMBDA_MAX_CONCURRENCY": "8", "GOMAXPROCS": "2",
		}},
		{"managed instances set it even to one", func(s *Spec) { s.InitType = InitManagedInstances }, map[string]string{
			"AWS_LAMBDA_MAX_CONCURRENCY": "1", "AWS_LAMBDA_INITIALIZATION_TYPE": "lambda-managed-instances",
		}},
		{"the user's GOMAXPROCS wins", func(s *Spec) { s.Environment = map[string]string{"GOMAXPROCS": "4"} }, map[string]string{
			"GOMAXPROCS": "4",
		}},
		{"no GOMAXPROCS for python", func(s *Spec) { s.Runtime = "python3.12" }, map[string]string{
			"GOMAXPROCS": "", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base
			c.mutate(&s)
			got := envMap(environ(&s, "/var/task", "", "/opt", "127.0.0.1:9001", runtimes.Command{}))
			var diffs []string
			for k, v := range c.want {
				if got[k] != v {
					diffs = append(diffs, k+"="+got[k]+", want "+v)
				}
			}
			sort.Strings(diffs)
			if len(diffs) > 0 {
				t.Errorf("environment:\n%s", strings.Join(diffs, "\n"))
			}
			if got["PATH"] != "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin" ||
				got["LD_LIBRARY_PATH"] != "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib" {
				t.Errorf("PATH %q LD_LIBRARY_PATH %q, not Lambda's", got["PATH"], got["LD_LIBRARY_PATH"])
			}
		})
	}
	// Layers seen elsewhere than /opt (an environment that is not isolated).
	got := envMap(environ(&base, "/code", "", "/data/code/opt-1", "127.0.0.1:9001", runtimes.Command{}))
	if got["PATH"] != "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/data/code/opt-1/bin" || !strings.HasSuffix(got["LD_LIBRARY_PATH"], ":/data/code/opt-1/lib") {
		t.Errorf("PATH %q LD_LIBRARY_PATH %q do not name the layers", got["PATH"], got["LD_LIBRARY_PATH"])
	}
}

func TestPlatformMessages(t *testing.T) {
	run := func(script string) error { return exec.Command("/bin/sh", "-c", script).Run() }
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"exit 1", exitMessage(run("exit 1")), "Runtime exited with error: exit status 1"},
		{"exit 127", exitMessage(run("exit 127")), "Runtime exited with error: exit status 127"},
		{"exit 0", exitMessage(run("exit 0")), "Runtime exited without providing a reason"},
		{"killed", exitMessage(run("kill -9 $$")), "Runtime exited with error: signal: killed"},
		{"timeout", timeoutMessage(3 * time.Second), "Task timed out after 3.00 seconds"},
		{"timeout fraction", timeoutMessage(1500 * time.Millisecond), "Task timed out after 1.50 seconds"},
		{"request id", withRequestID("r-1", "x"), "RequestId: r-1 Error: x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
}
