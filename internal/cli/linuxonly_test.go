package cli

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// TestLinuxOnly runs the stand-in that `shoal up` and `shoal agent` are on
// macOS and Windows, with the flags of the real command.
func TestLinuxOnly(t *testing.T) {
	root := NewRoot()
	root.AddCommand(linuxOnly("daemon", "Run a daemon"))
	var stdout, stderr bytes.Buffer
	root.SetArgs([]string{"daemon", "--data", "/tmp/x", "--listen=127.0.0.1:0"})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"shoal daemon needs Linux", "this system is " + runtime.GOOS, "--endpoint-url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("printed %q", stdout.String())
	}
}
