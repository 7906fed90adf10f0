package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// Version is shoal's release. A release build sets it at link time:
//
//	go build -ldflags "-X github.com/shoal-dev/shoal/internal/cli.Version=v0.4.0" ./cmd/shoal
//
// Without it, the module version from the build info stands in (go install
// …@v0.4.0), else "devel".
var Version = ""

// buildInfo is what shoal version prints.
type buildInfo struct {
	Version string
	// Commit is the VCS revision the binary was built from, "unknown" when
	// the build did not stamp it (-buildvcs=false, or not a checkout).
	Commit   string
	Modified bool
	Go       string
	Platform string
	// Prices is the embedded price catalogue.
	Prices *pricing.Catalog
}

// readBuildInfo gathers buildInfo from the linker's Version, the Go build
// info (bi may be nil) and the embedded catalogue.
func readBuildInfo(linked string, bi *debug.BuildInfo, prices *pricing.Catalog) buildInfo {
	info := buildInfo{Version: linked, Commit: "unknown", Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Prices: prices}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}

func (b buildInfo) write(w io.Writer) {
	commit := b.Commit
	if b.Modified {
		commit += " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "shoal %s\n", b.Version)
	fmt.Fprintf(w, "commit:          %s\n", commit)
	fmt.Fprintf(w, "price catalogue: %s (version %s, %s, %s)\n", b.Prices.Date, b.Prices.Version, b.Prices.Region, b.Prices.Currency)
	fmt.Fprintf(w, "built with:      %s for %s\n", b.Go, b.Platform)
}

// currentBuild is this binary's buildInfo.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return readBuildInfo(Version, bi, pricing.Default())
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print shoal's version, the commit it was built from and the date of its price catalogue",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			currentBuild().write(c.OutOrStdout())
			return nil
		},
	}
}
