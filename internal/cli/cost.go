package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/pricing"
)

func newCostCmd() *cobra.Command {
	c := &cobra.Command{Use: "cost", Short: "Compare what a workload costs on each compute type"}
	c.AddCommand(newCostCompareCmd())
	c.AddCommand(newCostPricesCmd())
	c.AddCommand(newCostReplayCmd())
	c.AddCommand(newCostReportCmd())
	return c
}

type costCompareFlags struct {
	rate, requests        string
	duration, cpuTime     time.Duration
	memory                int64
	arch, period, runtime string
	instanceType          string
	instances             int
	provisioned           int
	envConcurrency        int
	savingsPlan           string
	freeTier              bool
	prices, chart, output string
}

func newCostCompareCmd() *cobra.Command {
	var f costCompareFlags
	c := &cobra.Command{
		Use:   "compare",
		Short: "Price one workload on on-demand, Provisioned Concurrency and Managed Instances",
		Long: `Price one steady workload on the three Lambda compute types side by side, size the
Managed Instances fleet and the provisioned level when they are not given, and find the
request rate at which on-demand and the Managed Instances fleet cost the same.

Example (the worked example of the Managed Instances pricing article):

  shoal cost compare --rate 100 --duration 200ms --memory 1024 \
      --instance-type m7i.large --instances 3 --period day`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCostCompare(cmd.OutOrStdout(), f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.rate, "rate", "", "mean requests per second")
	fl.StringVar(&f.requests, "requests", "", "requests per period (instead of --rate)")
	fl.DurationVar(&f.duration, "duration", 0, "mean wall time per invocation, e.g. 200ms (required)")
	fl.DurationVar(&f.cpuTime, "cpu-time", 0, "mean CPU time per invocation (default: the duration)")
	fl.Int64Var(&f.memory, "memory", 1024, "function memory in MB")
	fl.StringVar(&f.arch, "arch", string(pricing.X86_64), "architecture: x86_64 or arm64")
	fl.StringVar(&f.period, "period", "month", "billing period: day, month (730 h) or a number of hours such as 12h")
	fl.StringVar(&f.instanceType, "instance-type", "", "Managed Instances instance type (default: the cheapest that fits)")
	fl.IntVar(&f.instances, "instances", 0, "Managed Instances fleet size (default: sized)")
	fl.IntVar(&f.provisioned, "provisioned", 0, "Provisioned Concurrency level (default: sized)")
	fl.IntVar(&f.envConcurrency, "env-concurrency", 0, "Managed Instances PerExecutionEnvironmentMaxConcurrency, 1-1600 (default: the runtime's per vCPU)")
	fl.StringVar(&f.savingsPlan, "savings-plan", "0", "fraction off the EC2 on-demand price, e.g. 0.3 or 30%; the management fee is not discounted")
	fl.BoolVar(&f.freeTier, "free-tier", false, "deduct the Lambda free tier, prorated to the period")
	fl.StringVar(&f.runtime, "runtime", cost.DefaultRuntime, "runtime, for the Managed Instances concurrency per vCPU (nodejs, python, java, dotnet, provided)")
	fl.StringVar(&f.prices, "prices", "", "price catalogue file to use instead of the built-in one")
	fl.StringVar(&f.chart, "chart", "", "also write the cost-versus-rate chart to this SVG file")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table, json or html")
	return c
}

func runCostCompare(out io.Writer, f costCompareFlags) error {
	cat, err := loadCatalog(f.prices)
	if err != nil {
		return err
	}
	w, cfg, err := f.workload()
	if err != nil {
		return err
	}
	switch f.output {
	case "table", "json", "html":
	default:
		return fmt.Errorf("--output %q: want table, json or html", f.output)
	}
	res, err := cost.Compare(cat, w, cfg)
	if err != nil {
		return err
	}
	if f.chart != "" {
		if err := writeFile(f.chart, func(w io.Writer) error { return cost.WriteCompareChart(w, cat, res, cfg) }); err != nil {
			return fmt.Errorf("write chart: %w", err)
		}
	}
	switch f.output {
	case "json":
		return cost.WriteJSON(out, res)
	case "html":
		return cost.WriteHTML(out, cat, res, cfg)
	}
	return cost.WriteTable(out, res)
}

func (f costCompareFlags) workload() (cost.Workload, cost.Config, error) {
	var w cost.Workload
	var cfg cost.Config
	switch {
	case f.rate != "" && f.requests != "":
		return w, cfg, errors.New("give --rate or --requests, not both")
	case f.rate == "" && f.requests == "":
		return w, cfg, errors.New("give the traffic with --rate (requests per second) or --requests (per period)")
	case f.duration <= 0:
		return w, cfg, errors.New("--duration is required, e.g. --duration 200ms")
	}
	var err error
	if f.rate != "" {
		if w.Rate, err = decimal.NewFromString(f.rate); err != nil || w.Rate.IsNegative() {
			return w, cfg, fmt.Errorf("--rate %q: want a non-negative number of requests per second", f.rate)
		}
	} else {
		if w.Requests, err = decimal.NewFromString(f.requests); err != nil || w.Requests.IsNegative() {
			return w, cfg, fmt.Errorf("--requests %q: want a non-negative number", f.requests)
		}
	}
	if w.Arch, err = pricing.ParseArch(f.arch); err != nil {
		return w, cfg, fmt.Errorf("--arch: %w", err)
	}
	if _, err := cost.RuntimeConcurrency(f.runtime); err != nil {
		return w, cfg, fmt.Errorf("--runtime: %w", err)
	}
	w.Duration, w.CPUTime, w.MemoryMB, w.Runtime = f.duration, f.cpuTime, f.memory, f.runtime
	if cfg.Period, err = cost.ParsePeriod(f.period); err != nil {
		return w, cfg, fmt.Errorf("--period: %w", err)
	}
	if cfg.SavingsPlan, err = parseFraction(f.savingsPlan); err != nil {
		return w, cfg, fmt.Errorf("--savings-plan: %w", err)
	}
	cfg.InstanceType, cfg.Instances, cfg.Provisioned, cfg.FreeTier = f.instanceType, f.instances, f.provisioned, f.freeTier
	cfg.EnvConcurrency = f.envConcurrency // cost.Compare checks it
	return w, cfg, nil
}

// parseFraction reads 0.3 or 30% as 0.3.
func parseFraction(s string) (decimal.Decimal, error) {
	s = strings.TrimSpace(s)
	percent := strings.HasSuffix(s, "%")
	d, err := decimal.NewFromString(strings.TrimSpace(strings.TrimSuffix(s, "%")))
	if err != nil {
		return decimal.Zero, fmt.Errorf("%q is not a number", s)
	}
	if percent {
		d = d.Shift(-2)
	}
	if d.IsNegative() || d.GreaterThanOrEqual(decimal.NewFromInt(1)) {
		return decimal.Zero, fmt.Errorf("%q: want a fraction in [0, 1), e.g. 0.3 or 30%%", s)
	}
	return d, nil
}

func newCostPricesCmd() *cobra.Command {
	var prices, output string
	c := &cobra.Command{
		Use:   "prices",
		Short: "List the price catalogue and its date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := loadCatalog(prices)
			if err != nil {
				return err
			}
			switch output {
			case "table":
				return cost.WritePricesTable(cmd.OutOrStdout(), cat)
			case "json":
				return cost.WritePricesJSON(cmd.OutOrStdout(), cat)
			}
			return fmt.Errorf("--output %q: want table or json", output)
		},
	}
	c.Flags().StringVar(&prices, "prices", "", "price catalogue file to use instead of the built-in one")
	c.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return c
}

// loadCatalog returns the built-in price catalogue, or the one in path.
func loadCatalog(path string) (*pricing.Catalog, error) {
	if path == "" {
		return pricing.Default(), nil
	}
	return pricing.Load(path)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
