package cli

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/pricing"
)

func TestReadBuildInfo(t *testing.T) {
	prices := pricing.Default()
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}, Settings: []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   buildInfo
	}{
		{"no build info", "", nil, buildInfo{Version: "devel", Commit: "unknown", Go: runtime.Version()}},
		{"a checkout built without VCS stamping", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			buildInfo{Version: "devel", Commit: "unknown", Go: "go1.26.8"}},
		{"go install of a module version", "", stamped, buildInfo{Version: "v0.4.0", Commit: "0123abcd", Modified: true, Go: "go1.26.8"}},
		{"the linker's version first", "v0.5.0-rc1", stamped, buildInfo{Version: "v0.5.0-rc1", Commit: "0123abcd", Modified: true, Go: "go1.26.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readBuildInfo(tc.linked, tc.bi, prices)
			tc.want.Platform, tc.want.Prices = runtime.GOOS+"/"+runtime.GOARCH, prices
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"version"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "shoal ") || !strings.HasPrefix(lines[1], "commit:") {
		t.Fatalf("printed %q", out.String())
	}
	if want := "price catalogue: " + pricing.Default().Date + " (version " + pricing.Default().Version; !strings.HasPrefix(lines[2], want) {
		t.Errorf("line %q, want it to start %q", lines[2], want)
	}
}
