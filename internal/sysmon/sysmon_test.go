package sysmon

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestEnviron(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=" + Setting}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "A=b"}, []string{"GODEBUG=" + Setting, "A=b"}, true},
		{"other settings kept", []string{"GODEBUG=gctrace=1,http2client=0"},
			[]string{"GODEBUG=gctrace=1,http2client=0," + Setting}, true},
		{"user's schedtrace wins", []string{"GODEBUG=gctrace=1, schedtrace=1000"},
			[]string{"GODEBUG=gctrace=1, schedtrace=1000"}, false},
		{"opted out", []string{OptOut + "=default"}, []string{OptOut + "=default"}, false},
		{"other opt-out values do not count", []string{OptOut + "=on"},
			[]string{OptOut + "=on", "GODEBUG=" + Setting}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got, changed := Environ(in)
			if !slices.Equal(got, tc.want) || changed != tc.changed {
				t.Errorf("Environ(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("Environ changed its argument: %q", in)
			}
		})
	}
}

// TestReexec runs this test binary as a child that calls Reexec and prints
// the GODEBUG it ends up with.
func TestReexec(t *testing.T) {
	if os.Getenv("SYSMON_TEST_CHILD") != "" {
		if err := Reexec(); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("GODEBUG=" + os.Getenv("GODEBUG") + "\n")
		return
	}
	run := func(extra ...string) string {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestReexec$", "-test.v")
		cmd.Env = append(os.Environ(), "SYSMON_TEST_CHILD=1", "GODEBUG=", OptOut+"=")
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "GODEBUG="); ok {
				return v
			}
		}
		t.Fatalf("child printed no GODEBUG:\n%s", out)
		return ""
	}
	if got := run(); got != Setting {
		t.Errorf("after Reexec GODEBUG = %q, want %q", got, Setting)
	}
	if got := run("GODEBUG=schedtrace=60000"); got != "schedtrace=60000" {
		t.Errorf("a user's schedtrace was replaced: GODEBUG = %q", got)
	}
	if got := run(OptOut + "=default"); got != "" {
		t.Errorf("opted out, GODEBUG = %q, want it unset", got)
	}
}
