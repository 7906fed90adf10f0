package env

import (
	"os"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/scratch"
)

// publicCode writes files into a code directory the unprivileged user of an
// isolated sandbox can read.
func publicCode(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := writeCode(t, files)
	for d := dir; d != os.TempDir() && d != "/"; d = parentDir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Isolated environments (namespaces, unprivileged user, code at /var/task)
// run the Go and Node.js functions unchanged.
func TestIsolated(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("isolation needs root")
	}
	h := newHarness(t)
	nets, err := envnet.NewPools(envnet.Config{Ready: 1}, nil)
	if err != nil {
		t.Skipf("no network namespaces: %v", err)
	}
	t.Cleanup(func() { _ = nets.Close() })
	h.deps.Networks = nets
	vols, err := scratch.NewPool(scratch.Config{Dir: t.TempDir(), Ready: 1}, nil)
	if err != nil {
		t.Skipf("no scratch volumes for /tmp: %v", err)
	}
	t.Cleanup(func() { _ = vols.Close() })
	h.deps.Scratch = vols
	spec := goSpec("iso")
	spec.Isolate = true
	env := h.start(spec)
	if l := env.Limited(); l != "" {
		t.Skipf("sandbox not fully confined here: %s", l)
	}
	r := invoke(t, env, `{"mode":"context"}`, true)
	if !strings.Contains(string(r.Payload), `"_HANDLER":"bootstrap"`) || r.FunctionError != "" {
		t.Errorf("go: %s", r.Payload)
	}
	// Its Runtime API is where Lambda's is, in its own network namespace.
	if !strings.Contains(string(r.Payload), `"AWS_LAMBDA_RUNTIME_API":"127.0.0.1:9001"`) {
		t.Errorf("go: AWS_LAMBDA_RUNTIME_API is not 127.0.0.1:9001: %s", r.Payload)
	}
	r = invoke(t, env, `{"mode":"log"}`, true)
	if !strings.Contains(string(r.LogTail), "hello from the function") {
		t.Errorf("go tail:\n%s", r.LogTail)
	}

	needTool(t, "node")
	nspec := nodeSpec("isonode", "index.callback", publicCode(t, map[string]string{"index.js": nodeCode}))
	nspec.Isolate = true
	nenv := h.start(nspec)
	if r := invoke(t, nenv, `{"n":1}`, false); string(r.Payload) != `{"n":2}` {
		t.Errorf("node: %+v %s", r, r.Payload)
	}
}
