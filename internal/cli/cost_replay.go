package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/cost/replay"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/scaler"
	"github.com/shoal-dev/shoal/internal/trace"
)

// A terminal gets progress bars from these sizes on: steps to replay, bytes of CSV to read.
const (
	progressMinSteps = 200_000
	progressMinBytes = 32 << 20
)

type costReplayFlags struct {
	trace, format, function string
	step                    time.Duration
	memory                  int
	arch, runtime           string
	instanceType            string
	provisioned             int
	envConcurrency          int
	freeTier                bool
	savingsPlan             string
	keepAlive               time.Duration
	cpuFraction             float64
	mode                    string
	targetCPU               float64
	maxVCPU                 int
	prices, chart, output   string
	progress                bool
}

func newCostReplayCmd() *cobra.Command {
	var f costReplayFlags
	c := &cobra.Command{
		Use:   "replay --trace FILE",
		Short: "Replay a traffic trace through every compute type",
		Long: `Replay a traffic trace through on-demand (cold starts, idle environments reaped),
Provisioned Concurrency (spill-over to on-demand), Managed Instances (the scaler's own
decider: a minimum fleet across zones, asynchronous scale-out, throttles when traffic more
than doubles faster than the fleet grows, gradual scale-in) and the hybrid of a Managed
Instances fleet for the steady floor with on-demand for the rest, and price each.

Traces:
  csv    one invocation per line: timestamp,duration_ms[,cpu_ms],memory_mb,function
         (RFC 3339 or seconds; an optional header row names the columns)
  azure  the Azure Functions 2019 trace: a folder with invocations.csv, durations.csv and
         memory.csv, or the invocations file with the other two beside it

Example:

  shoal cost replay --trace data/traces/azure2019_top10_24h --function 308ecb6c \
      --memory 2048 --step 1s --chart replay.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCostReplay(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.trace, "trace", "", "trace file or Azure trace folder (required)")
	fl.StringVar(&f.format, "format", "", "trace format: csv or azure (default: detected)")
	fl.DurationVar(&f.step, "step", time.Minute, "replay step: 1m, or 1s for one-second resolution")
	fl.StringVar(&f.function, "function", "", "replay only this function (a unique prefix of its name will do)")
	fl.IntVar(&f.memory, "memory", 0, "function memory in MB (default: the trace's)")
	fl.StringVar(&f.arch, "arch", string(pricing.X86_64), "architecture: x86_64 or arm64")
	fl.StringVar(&f.runtime, "runtime", cost.DefaultRuntime, "runtime, for the Managed Instances concurrency per vCPU (nodejs, python, java, dotnet, provided)")
	fl.StringVar(&f.instanceType, "instance-type", "", "Managed Instances instance type (default: m7i.large, or m7g.large on arm64)")
	fl.IntVar(&f.provisioned, "provisioned", 0, "Provisioned Concurrency level (default: sized from the trace)")
	fl.IntVar(&f.envConcurrency, "env-concurrency", 0, "Managed Instances PerExecutionEnvironmentMaxConcurrency, 1-1600 (default: the runtime's per vCPU)")
	fl.BoolVar(&f.freeTier, "free-tier", false, "deduct the Lambda free tier, prorated to the trace's length")
	fl.StringVar(&f.savingsPlan, "savings-plan", "0", "fraction off the EC2 on-demand price, e.g. 0.3 or 30%; the management fee is not discounted")
	fl.DurationVar(&f.keepAlive, "keep-alive", replay.DefaultKeepAlive, "how long an idle on-demand environment stays warm")
	fl.Float64Var(&f.cpuFraction, "cpu-fraction", 1, "CPU time as a fraction of the duration, where the trace gives none")
	fl.StringVar(&f.mode, "scaling-mode", "auto", "Managed Instances scaling mode: auto or manual")
	fl.Float64Var(&f.targetCPU, "target-cpu", 50, "manual mode's target CPU utilisation, in percent")
	fl.IntVar(&f.maxVCPU, "max-vcpu", scaler.DefaultMaxVCPU, "the capacity provider's MaxVCpuCount")
	fl.StringVar(&f.prices, "prices", "", "price catalogue file to use instead of the built-in one")
	fl.StringVar(&f.chart, "chart", "", "also write the cost and fleet-size chart to this SVG file")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table, json or html")
	fl.BoolVar(&f.progress, "progress", false, "show a progress bar on stderr even when it is not a terminal")
	return c
}

func runCostReplay(out, errOut io.Writer, f costReplayFlags) error {
	switch f.output {
	case "table", "json", "html":
	default:
		return fmt.Errorf("--output %q: want table, json or html", f.output)
	}
	if f.trace == "" {
		return errors.New("--trace is required: a CSV trace file or an Azure Functions trace folder")
	}
	cat, err := loadCatalog(f.prices)
	if err != nil {
		return err
	}
	arch, err := pricing.ParseArch(f.arch)
	if err != nil {
		return fmt.Errorf("--arch: %w", err)
	}
	sp, err := parseFraction(f.savingsPlan)
	if err != nil {
		return fmt.Errorf("--savings-plan: %w", err)
	}
	cfg := replay.Config{
		Catalog: cat, Arch: arch, MemoryMB: f.memory, Runtime: f.runtime, InstanceType: f.instanceType,
		Provisioned: f.provisioned, EnvConcurrency: f.envConcurrency, KeepAlive: f.keepAlive, FreeTier: f.freeTier, SavingsPlan: sp,
		Scaling: scaler.Config{MaxVCPU: f.maxVCPU},
	}
	switch strings.ToLower(f.mode) {
	case "auto":
		cfg.Scaling.Mode = scaler.ModeAuto
	case "manual":
		cfg.Scaling.Mode, cfg.Scaling.TargetCPUPercent = scaler.ModeManual, f.targetCPU
	default:
		return fmt.Errorf("--scaling-mode %q: want auto or manual", f.mode)
	}
	tty := isTerminal(errOut)
	series, err := loadSeries(f, func(size int64) io.Writer {
		if !f.progress && !(tty && size >= progressMinBytes) {
			return nil
		}
		return errOut
	})
	if err != nil {
		return err
	}
	if f.progress || (series.Len() >= progressMinSteps && tty) {
		bar := progressbar.NewOptions(series.Len(),
			progressbar.OptionSetWriter(errOut),
			progressbar.OptionSetDescription("replaying"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
		)
		cfg.Progress = func(done, _ int) { _ = bar.Set(done) }
		defer bar.Finish()
	}
	res, err := replay.Run(series, cfg)
	if err != nil {
		return err
	}
	if f.chart != "" {
		if err := writeFile(f.chart, func(w io.Writer) error { return replay.WriteChart(w, res) }); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
	}
	switch f.output {
	case "json":
		return replay.WriteJSON(out, res)
	case "html":
		return replay.WriteHTML(out, res)
	}
	return replay.WriteTable(out, res)
}

// loadSeries reads and bins the trace the flags name. progressTo says where to
// draw a progress bar for reading a file of the given size (nil: none).
func loadSeries(f costReplayFlags, progressTo func(size int64) io.Writer) (*trace.Series, error) {
	format := strings.ToLower(f.format)
	if format == "" {
		var err error
		if format, err = detectFormat(f.trace); err != nil {
			return nil, err
		}
	}
	opt := trace.BinOptions{Step: f.step, Function: f.function, MemoryMB: f.memory, CPUFraction: f.cpuFraction}
	switch format {
	case "azure":
		a, err := trace.LoadAzure(f.trace)
		if err != nil {
			return nil, err
		}
		return trace.BinAzure(a, opt)
	case "csv":
		file, err := os.Open(f.trace)
		if err != nil {
			return nil, fmt.Errorf("open trace: %w", err)
		}
		defer file.Close()
		var r io.Reader = file
		if st, err := file.Stat(); err == nil {
			if w := progressTo(st.Size()); w != nil {
				bar := progressbar.NewOptions64(st.Size(),
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription("reading trace"),
					progressbar.OptionShowBytes(true),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish(),
					progressbar.OptionSetRenderBlankState(true),
				)
				defer bar.Finish()
				pr := progressbar.NewReader(file, bar)
				r = &pr
			}
		}
		invs, err := trace.ParseCSV(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.trace, err)
		}
		return trace.BinInvocations(invs, opt)
	}
	return nil, fmt.Errorf("--format %q: want csv or azure", f.format)
}

// detectFormat takes a folder, or a file whose header starts with HashOwner, for
// the Azure format, and anything else for CSV.
func detectFormat(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("open trace: %w", err)
	}
	if st.IsDir() {
		return "azure", nil
	}
	file, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open trace: %w", err)
	}
	defer file.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(file, head)
	if strings.HasPrefix(strings.TrimPrefix(string(head[:n]), "\ufeff"), "HashOwner") {
		return "azure", nil
	}
	return "csv", nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
