// Command testreport reads the `go test -json` streams of a CI run and says
// what they hold: the packages and tests that failed, with their output;
// every skipped test with the reason it gave; the allow-list of skips the
// repository accepts (.ci/skips-allowed); and a closing tally line.
//
//	go test -json ./... | testreport -live race.json   # progress while the tests run
//	testreport -allow .ci/skips-allowed race.json norace.json
//
// The second form exits non-zero when a package or test failed, when a test
// skipped without being on the allow-list, or when no test ran at all: a
// test that needs a missing fixture or tool cannot leave CI green.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time       time.Time
	Action     string
	Package    string
	Test       string
	Elapsed    float64
	Output     string
	ImportPath string // build-output and build-fail events
}

// allowed is one line of the allow-list: a test that may skip, and why.
type allowed struct {
	Package string // relative to the module ("internal/sandbox"); "" for any
	Test    string // a test or subtest name; it covers its subtests
	Reason  string
	Line    int
}

// result is what one test or package came to.
type result struct {
	Run           string // the stream's name
	Package, Test string
	Action        string // pass, fail, skip
	Elapsed       float64
	Output        []string
}

// report gathers the results of one or more streams.
type report struct {
	module   string // the module path, stripped from package names
	run      string // the name of the stream being read
	tests    []*result
	packages []*result
	noJSON   []string // lines that were not events (go vet or the toolchain talking)
	running  map[string]*result
}

func newReport(module string) *report {
	return &report{module: module, running: map[string]*result{}}
}

// rel is a package's path relative to the module.
func (r *report) rel(pkg string) string {
	if pkg == r.module {
		return "."
	}
	return strings.TrimPrefix(pkg, r.module+"/")
}

// add takes one line of a stream.
func (r *report) add(line []byte) *result {
	var ev event
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil || ev.Action == "" {
		if s := strings.TrimRight(string(line), "\r\n"); s != "" {
			r.noJSON = append(r.noJSON, s)
		}
		return nil
	}
	pkg := ev.Package
	if pkg == "" {
		// A build's output: "pkg [pkg.test]" fails to build, then the
		// package fails with FailedBuild set.
		pkg, _, _ = strings.Cut(ev.ImportPath, " ")
	}
	key := pkg + "\x00" + ev.Test
	res := r.running[key]
	if res == nil {
		res = &result{Run: r.run, Package: r.rel(pkg), Test: ev.Test}
		r.running[key] = res
	}
	switch ev.Action {
	case "output", "build-output":
		res.Output = append(res.Output, strings.TrimRight(ev.Output, "\n"))
	case "pass", "fail", "skip":
		res.Action, res.Elapsed = ev.Action, ev.Elapsed
		delete(r.running, key)
		if ev.Test == "" {
			r.packages = append(r.packages, res)
		} else {
			r.tests = append(r.tests, res)
		}
		return res
	}
	return nil
}

// finish closes what a stream left running: a test still running when its
// package's binary died (a panic, a timeout) failed.
func (r *report) finish() {
	for key, res := range r.running {
		if res.Test != "" || len(res.Output) > 0 {
			res.Action = "fail"
			res.Output = append(res.Output, "(no result: the test binary ended while this ran)")
			if res.Test == "" {
				r.packages = append(r.packages, res)
			} else {
				r.tests = append(r.tests, res)
			}
		}
		delete(r.running, key)
	}
}

// skipReason is what a skipped test said: its last log entry, with the
// entry's continuation lines.
func skipReason(output []string) string {
	var entry []string
	for _, l := range output {
		switch {
		case strings.HasPrefix(l, "=== "), strings.HasPrefix(l, "--- "):
		case strings.HasPrefix(l, "        ") && len(entry) > 0:
			entry = append(entry, strings.TrimSpace(l))
		case strings.HasPrefix(l, "    "):
			entry = []string{strings.TrimSpace(l)}
		}
	}
	s := strings.Join(entry, " ")
	// Drop the "file_test.go:12: " the log entry starts with.
	if m := logPrefix.FindStringIndex(s); m != nil {
		s = s[m[1]:]
	}
	if s == "" {
		return "(no reason given)"
	}
	return s
}

var logPrefix = regexp.MustCompile(`^[\w.-]+\.go:\d+: `)

// allowLine is one line of the allow-list: [package.]Test reason…
var allowLine = regexp.MustCompile(`^(?:(\S+?)\.)?(Test\S*)\s+(\S.*)$`)

// parseAllow reads the allow-list: one skip a line, the test (qualified by
// its package relative to the module, or not) and the reason it may skip;
// blank lines and lines starting with # are comments.
func parseAllow(text string) ([]allowed, error) {
	var out []allowed
	var errs []error
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := allowLine.FindStringSubmatch(l)
		if m == nil {
			errs = append(errs, fmt.Errorf("line %d: want \"[package.]TestName reason\", got %q", i+1, l))
			continue
		}
		out = append(out, allowed{Package: m[1], Test: m[2], Reason: m[3], Line: i + 1})
	}
	return out, errors.Join(errs...)
}

// allows returns the entry that lets res skip, or nil.
func allows(list []allowed, res *result) *allowed {
	for i, a := range list {
		if a.Package != "" && a.Package != res.Package {
			continue
		}
		if res.Test == a.Test || strings.HasPrefix(res.Test, a.Test+"/") {
			return &list[i]
		}
	}
	return nil
}

// counts tallies the tests by outcome. A test with subtests counts once,
// by its own outcome, and so does each subtest.
func (r *report) counts() (passed, failed, skipped int) {
	for _, t := range r.tests {
		switch t.Action {
		case "pass":
			passed++
		case "fail":
			failed++
		case "skip":
			skipped++
		}
	}
	return passed, failed, skipped
}

// tail is the last n lines of out.
func tail(out []string, n int) []string {
	if len(out) > n {
		return append([]string{fmt.Sprintf("… (%d lines before)", len(out)-n)}, out[len(out)-n:]...)
	}
	return out
}

// summarize writes the report and returns whether CI passes.
func (r *report) summarize(w io.Writer, allow []allowed, allowFile string) bool {
	slices.SortStableFunc(r.tests, func(a, b *result) int {
		return strings.Compare(a.Package+" "+a.Test+" "+a.Run, b.Package+" "+b.Test+" "+b.Run)
	})
	ok := true
	passed, failed, skipped := r.counts()

	var failedPkgs []*result
	for _, p := range r.packages {
		if p.Action == "fail" {
			failedPkgs = append(failedPkgs, p)
		}
	}
	if len(failedPkgs) > 0 || failed > 0 {
		ok = false
		fmt.Fprintln(w, "\n== failures")
		for _, t := range r.tests {
			if t.Action != "fail" {
				continue
			}
			fmt.Fprintf(w, "FAIL [%s] %s %s (%.1fs)\n", t.Run, t.Package, t.Test, t.Elapsed)
			for _, l := range tail(t.Output, 60) {
				fmt.Fprintln(w, "    "+l)
			}
		}
		for _, p := range failedPkgs {
			fmt.Fprintf(w, "FAIL [%s] package %s (%.1fs)\n", p.Run, p.Package, p.Elapsed)
			for _, l := range tail(p.Output, 30) {
				fmt.Fprintln(w, "    "+l)
			}
		}
	}

	fmt.Fprintf(w, "\n== skipped tests (%d)\n", skipped)
	used := map[int]bool{}
	for _, t := range r.tests {
		if t.Action != "skip" {
			continue
		}
		verdict := "NOT ON THE ALLOW-LIST"
		if a := allows(allow, t); a != nil {
			verdict = "allowed (" + allowFile + " line " + fmt.Sprint(a.Line) + ")"
			used[a.Line] = true
		} else {
			ok = false
		}
		fmt.Fprintf(w, "SKIP [%s] %s %s: %s\n     %s\n", t.Run, t.Package, t.Test, skipReason(t.Output), verdict)
	}

	fmt.Fprintf(w, "\n== the allow-list (%s, %d entries)\n", allowFile, len(allow))
	if len(allow) == 0 {
		fmt.Fprintln(w, "(empty: no test may skip)")
	}
	for _, a := range allow {
		name := a.Test
		if a.Package != "" {
			name = a.Package + "." + a.Test
		}
		mark := ""
		if !used[a.Line] {
			mark = "  [did not skip in this run]"
		}
		fmt.Fprintf(w, "%s: %s%s\n", name, a.Reason, mark)
	}

	if passed+failed+skipped == 0 {
		ok = false
		fmt.Fprintln(w, "\nno test ran")
	}
	fmt.Fprintf(w, "\npackages: %d, of which %d failed\n", len(r.packages), len(failedPkgs))
	fmt.Fprintf(w, "tests: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return ok
}

// live copies a stream to file and prints each package's outcome as it ends.
func live(in io.Reader, out io.Writer, file string, module string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r := newReport(module)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if _, err := f.Write(append(line, '\n')); err != nil {
			return err
		}
		n := len(r.noJSON)
		res := r.add(line)
		if len(r.noJSON) > n {
			fmt.Fprintln(out, r.noJSON[n])
		}
		if res == nil {
			continue
		}
		switch {
		case res.Test == "" && res.Action == "pass":
			fmt.Fprintf(out, "ok    %-28s %6.1fs\n", res.Package, res.Elapsed)
		case res.Test == "" && res.Action == "skip":
			fmt.Fprintf(out, "-     %-28s (no test files)\n", res.Package)
		case res.Test == "" && res.Action == "fail":
			fmt.Fprintf(out, "FAIL  %-28s %6.1fs\n", res.Package, res.Elapsed)
		case res.Action == "fail":
			fmt.Fprintf(out, "  FAIL %s %s\n", res.Package, res.Test)
		case res.Action == "skip":
			fmt.Fprintf(out, "  skip %s %s: %s\n", res.Package, res.Test, skipReason(res.Output))
		}
	}
	return sc.Err()
}

func main() {
	liveFile := flag.String("live", "", "copy the go test -json stream on standard input to this file, printing progress")
	allowFile := flag.String("allow", ".ci/skips-allowed", "the allow-list of skips")
	module := flag.String("module", "github.com/shoal-dev/shoal", "the module path, left out of package names")
	flag.Parse()

	if *liveFile != "" {
		if err := live(os.Stdin, os.Stdout, *liveFile, *module); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
		return
	}
	text, err := os.ReadFile(*allowFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	allow, err := parseAllow(string(text))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %s: %v\n", *allowFile, err)
		os.Exit(2)
	}
	r := newReport(*module)
	for _, name := range flag.Args() {
		r.run = strings.TrimSuffix(filepath.Base(name), ".json")
		if err := readStream(r, name); err != nil {
			fmt.Fprintln(os.Stderr, "testreport:", err)
			os.Exit(2)
		}
	}
	if !r.summarize(os.Stdout, allow, *allowFile) {
		os.Exit(1)
	}
}

func readStream(r *report, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		r.add(sc.Bytes())
	}
	r.finish()
	return sc.Err()
}
