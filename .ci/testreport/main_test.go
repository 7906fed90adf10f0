package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mod = "github.com/shoal-dev/shoal"

// stream writes go test -json events, one a line.
func stream(t *testing.T, events ...event) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range events {
		if e.Package != "" && !strings.HasPrefix(e.Package, mod) {
			e.Package = mod + "/" + e.Package
		}
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func out(pkg, test, text string) event {
	return event{Action: "output", Package: pkg, Test: test, Output: text + "\n"}
}

func end(action, pkg, test string) event {
	return event{Action: action, Package: pkg, Test: test, Elapsed: 0.5}
}

// skipped is a test that logs something, then skips with a two-line reason.
func skipped(pkg, test string) []event {
	return []event{
		out(pkg, test, "=== RUN   "+test),
		out(pkg, test, "    x_test.go:10: starting"),
		out(pkg, test, "    x_test.go:12: needs root"),
		out(pkg, test, "        (run as root)"),
		out(pkg, test, "--- SKIP: "+test+" (0.00s)"),
		end("skip", pkg, test),
	}
}

func summarize(t *testing.T, allowList string, streams ...string) (string, bool) {
	t.Helper()
	allow, err := parseAllow(allowList)
	if err != nil {
		t.Fatal(err)
	}
	r := newReport(mod)
	dir := t.TempDir()
	for i, s := range streams {
		name := filepath.Join(dir, []string{"race.json", "norace.json"}[i])
		if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		r.run = strings.TrimSuffix(filepath.Base(name), ".json")
		if err := readStream(r, name); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	ok := r.summarize(&b, allow, ".ci/skips-allowed")
	return b.String(), ok
}

func TestSummary(t *testing.T) {
	var evs []event
	evs = append(evs, end("pass", "internal/a", "TestA"))
	evs = append(evs, skipped("internal/sandbox", "TestRoot")...)
	evs = append(evs, skipped("internal/env", "TestTable/node")...)
	evs = append(evs, end("pass", "internal/env", "TestTable"))
	evs = append(evs, end("pass", "internal/a", ""), end("pass", "internal/sandbox", ""), end("pass", "internal/env", ""))
	evs = append(evs, event{Action: "skip", Package: "cmd/shoal"}) // no test files
	race := stream(t, evs...)

	for _, tc := range []struct {
		name      string
		allow     string
		wantOK    bool
		wantLines []string
	}{
		{
			name:   "every skip allowed",
			allow:  "# comment\n\ninternal/sandbox.TestRoot  needs root; CI runs as root\nTestTable the table's node row\n",
			wantOK: true,
			wantLines: []string{
				"== skipped tests (2)",
				"SKIP [race] internal/env TestTable/node: needs root (run as root)",
				"     allowed (.ci/skips-allowed line 4)",
				"SKIP [race] internal/sandbox TestRoot: needs root (run as root)",
				"     allowed (.ci/skips-allowed line 3)",
				"== the allow-list (.ci/skips-allowed, 2 entries)",
				"internal/sandbox.TestRoot: needs root; CI runs as root",
				"TestTable: the table's node row",
				"packages: 4, of which 0 failed",
				"tests: 2 passed, 0 failed, 2 skipped",
			},
		},
		{
			name:   "a skip not on the list",
			allow:  "internal/sandbox.TestRoot needs root\nTestGone was removed\n",
			wantOK: false,
			wantLines: []string{
				"SKIP [race] internal/env TestTable/node: needs root (run as root)",
				"     NOT ON THE ALLOW-LIST",
				"TestGone: was removed  [did not skip in this run]",
			},
		},
		{
			name:   "the package must match",
			allow:  "internal/other.TestRoot x\nTestTable y\n",
			wantOK: false,
			wantLines: []string{
				"SKIP [race] internal/sandbox TestRoot: needs root (run as root)",
				"     NOT ON THE ALLOW-LIST",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := summarize(t, tc.allow, race)
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v", ok, tc.wantOK)
			}
			assertLines(t, got, tc.wantLines)
		})
	}
}

// assertLines checks that want are lines of got, in order.
func assertLines(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(got, "\n")
	i := 0
	for _, l := range lines {
		if i < len(want) && l == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("line %q not found (in order) in:\n%s", want[i], got)
	}
}

func TestFailures(t *testing.T) {
	race := stream(t,
		out("internal/a", "TestBad", "=== RUN   TestBad"),
		out("internal/a", "TestBad", "    a_test.go:5: got 1, want 2"),
		out("internal/a", "TestBad", "--- FAIL: TestBad (0.10s)"),
		end("fail", "internal/a", "TestBad"),
		end("pass", "internal/a", "TestGood"),
		end("fail", "internal/a", ""),
		// A package that does not build.
		event{Action: "build-output", ImportPath: mod + "/internal/b [" + mod + "/internal/b.test]", Output: "b_test.go:3:2: undefined: x\n"},
		event{Action: "build-fail", ImportPath: mod + "/internal/b [" + mod + "/internal/b.test]"},
		out("internal/b", "", "FAIL\t"+mod+"/internal/b [build failed]"),
		event{Action: "fail", Package: "internal/b"},
		// A test running when its binary died.
		out("internal/c", "TestHang", "=== RUN   TestHang"),
		out("internal/c", "", "panic: test timed out after 30m0s"),
		end("fail", "internal/c", ""),
	)
	norace := stream(t, end("pass", "internal/rawio", "TestReadWrite"), end("pass", "internal/rawio", ""))
	got, ok := summarize(t, "", race, norace)
	if ok {
		t.Error("ok with failures")
	}
	assertLines(t, got, []string{
		"== failures",
		"FAIL [race] internal/a TestBad (0.5s)",
		"    === RUN   TestBad",
		"        a_test.go:5: got 1, want 2",
		"FAIL [race] internal/c TestHang (0.0s)",
		"    (no result: the test binary ended while this ran)",
		"FAIL [race] package internal/a (0.5s)",
		"FAIL [race] package internal/b (0.0s)",
		"    b_test.go:3:2: undefined: x",
		"    FAIL\t" + mod + "/internal/b [build failed]",
		"FAIL [race] package internal/c (0.5s)",
		"    panic: test timed out after 30m0s",
		"tests: 2 passed, 2 failed, 0 skipped",
	})
}

func TestNoTestRan(t *testing.T) {
	got, ok := summarize(t, "", stream(t, event{Action: "skip", Package: "internal/a"}))
	if ok {
		t.Error("ok with no test run")
	}
	assertLines(t, got, []string{"(empty: no test may skip)", "no test ran", "tests: 0 passed, 0 failed, 0 skipped"})
}

func TestParseAllow(t *testing.T) {
	got, err := parseAllow("internal/sandbox.TestV1/memory  no cgroup v1 here\nTestX why\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []allowed{
		{Package: "internal/sandbox", Test: "TestV1/memory", Reason: "no cgroup v1 here", Line: 1},
		{Test: "TestX", Reason: "why", Line: 2},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"TestNoReason", "internal/a.NotATest reason", "just words here"} {
		if _, err := parseAllow(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestLive(t *testing.T) {
	var evs []event
	evs = append(evs, skipped("internal/sandbox", "TestRoot")...)
	evs = append(evs, end("pass", "internal/sandbox", ""), end("fail", "internal/a", "TestBad"), end("fail", "internal/a", ""))
	in := stream(t, evs...) + "# vet output that is not JSON\n"
	file := filepath.Join(t.TempDir(), "race.json")
	var b bytes.Buffer
	if err := live(strings.NewReader(in), &b, file, mod); err != nil {
		t.Fatal(err)
	}
	assertLines(t, b.String(), []string{
		"  skip internal/sandbox TestRoot: needs root (run as root)",
		"ok    internal/sandbox                0.5s",
		"  FAIL internal/a TestBad",
		"FAIL  internal/a                      0.5s",
		"# vet output that is not JSON",
	})
	copied, err := os.ReadFile(file)
	if err != nil || string(copied) != in {
		t.Errorf("the stream was not copied whole (%v)", err)
	}
}
