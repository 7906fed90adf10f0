package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/cost"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/meter"
)

type costReportFlags struct {
	cf           clientFlags
	since, until string
	function     string
	runtime      string
	step         time.Duration
	savingsPlan  string
	freeTier     bool
	noWhatIf     bool
	prices       string
}

func newCostReportCmd() *cobra.Command {
	var f costReportFlags
	c := &cobra.Command{
		Use:   "report",
		Short: "Bill the usage shoal recorded, and what it would have cost on the other compute types",
		Long: `Price the usage ledger of a running shoal for a period: a bill per function, per
capacity provider and per compute type, with the same lines as shoal cost compare
(requests, duration, provisioned concurrency, EC2 instance-hours, the management fee).
For every function it also replays the recorded invocations, with their measured CPU time,
through the other compute types, and says which would have been cheapest and why.

--since and --until take an RFC 3339 time or a duration meaning that long ago
(30m, 1h, 7d); --until defaults to now.

Examples:

  shoal cost report --since 1h
  shoal cost report --since 2026-11-26T00:00:00Z --until 2026-11-27T00:00:00Z -o json
  shoal cost report --since 7d --function checkout -o html > checkout.html`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runCostReport(c, &f, time.Now())
		},
	}
	f.cf.register(c)
	if o := c.PersistentFlags().Lookup("output"); o != nil {
		o.Usage = "output format: table, json or html"
	}
	fl := c.Flags()
	fl.StringVar(&f.since, "since", "24h", "start of the period: RFC 3339, or a duration ago such as 1h")
	fl.StringVar(&f.until, "until", "", "end of the period: RFC 3339, or a duration ago (default: now)")
	fl.StringVar(&f.function, "function", "", "bill only this function (and, whole, the capacity providers it ran on)")
	fl.StringVar(&f.runtime, "runtime", cost.DefaultRuntime, "runtime for the what-if's Managed Instances concurrency per vCPU, where shoal does not say a function's own")
	fl.DurationVar(&f.step, "step", 0, "what-if replay step, whole seconds (default: 1s for up to ~14 h, coarser beyond)")
	fl.StringVar(&f.savingsPlan, "savings-plan", "0", "fraction off the EC2 on-demand price, e.g. 0.3 or 30%; the management fee is not discounted")
	fl.BoolVar(&f.freeTier, "free-tier", false, "deduct the Lambda free tier once, from the on-demand total, prorated to the period")
	fl.BoolVar(&f.noWhatIf, "no-what-if", false, "bill only; do not replay the traffic on the other compute types")
	fl.StringVar(&f.prices, "prices", "", "price catalogue file to use instead of the built-in one")
	return c
}

func runCostReport(c *cobra.Command, f *costReportFlags, now time.Time) error {
	switch f.cf.output {
	case "table", "json", "html":
	default:
		return fmt.Errorf("--output %q: want table, json or html", f.cf.output)
	}
	opts, err := f.options(now)
	if err != nil {
		return err
	}
	cat, err := loadCatalog(f.prices)
	if err != nil {
		return err
	}
	// The fleet's record first: the ledger read after it holds every
	// instance second the fleet had recorded when it answered.
	opts.Fleet = fleetRecord(c, &f.cf, opts.Since, c.ErrOrStderr())
	events, gaps, err := fetchUsage(c, &f.cf, opts.Since)
	if err != nil {
		return err
	}
	opts.Functions = functionInfos(c, &f.cf, c.ErrOrStderr())
	r, err := billing.Build(events, cat, opts)
	if err != nil {
		return err
	}
	// What the ledger could not deliver is said with the bill, never left out.
	for _, g := range gaps {
		r.Warnings = append(r.Warnings, "the usage ledger is incomplete, so this bill may be too: "+g.Problem)
	}
	out := c.OutOrStdout()
	switch f.cf.output {
	case "json":
		return billing.WriteJSON(out, r)
	case "html":
		return billing.WriteHTML(out, r)
	}
	return billing.WriteTable(out, r)
}

func (f *costReportFlags) options(now time.Time) (billing.Options, error) {
	var o billing.Options
	var err error
	if o.Since, err = parseWhen(f.since, now); err != nil {
		return o, fmt.Errorf("--since: %w", err)
	}
	o.Until = now
	if f.until != "" {
		if o.Until, err = parseWhen(f.until, now); err != nil {
			return o, fmt.Errorf("--until: %w", err)
		}
	}
	if !o.Until.After(o.Since) {
		return o, fmt.Errorf("--since %s is not before --until %s", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
	}
	if o.SavingsPlan, err = parseFraction(f.savingsPlan); err != nil {
		return o, fmt.Errorf("--savings-plan: %w", err)
	}
	if f.step < 0 || f.step%time.Second != 0 {
		return o, fmt.Errorf("--step %v: want whole seconds", f.step)
	}
	if _, err := cost.RuntimeConcurrency(f.runtime); err != nil {
		return o, fmt.Errorf("--runtime: %w", err)
	}
	o.Function, o.Runtime, o.Step, o.FreeTier, o.NoWhatIf = f.function, f.runtime, f.step, f.freeTier, f.noWhatIf
	return o, o.Validate()
}

// maxDaysAgo bounds "Nd" well inside what a time.Duration holds.
const maxDaysAgo = 100 * 365

// parseWhen reads an RFC 3339 time, "now", or a duration ago: Go's (90s, 1h30m)
// or whole days (7d).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= maxDaysAgo {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time such as 2026-11-26T09:00:00Z or a duration ago such as 1h or 7d", s)
	}
	return now.Add(-d), nil
}

// fetchUsage reads the usage events that ended at or after since from
// shoal's GET /shoal/v1/usage. It asks for no end and no function: segments
// that run past the period's end are cut to it by billing, and capacity
// providers are billed with every function's requests.
func fetchUsage(c *cobra.Command, cf *clientFlags, since time.Time) ([]meter.Event, []ledger.Gap, error) {
	q := url.Values{"since": {since.UTC().Format(time.RFC3339Nano)}}
	u := strings.TrimRight(cf.endpoint, "/") + "/shoal/v1/usage?" + q.Encode()
	req, err := http.NewRequestWithContext(ctxOf(c), http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	hc, err := cf.httpClient(ctxOf(c), 0)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("usage: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, shoalError("usage", resp)
	}
	return ledger.DecodeUsage(resp.Body)
}

// fleetRecord reads the fleet's record of its instances that ran since
// since: those running now and those terminated since (GET /shoal/v1/fleet).
// Without it (an error, an older shoal) the report leaves the Managed
// Instances check out, and a note says why.
func fleetRecord(c *cobra.Command, cf *clientFlags, since time.Time, note io.Writer) *billing.FleetRecord {
	fv, err := getFleetView(c, cf, since)
	if err != nil {
		fmt.Fprintf(note, "shoal: the fleet's record of its instances could not be read (%v); the Managed Instances bills are not checked against it\n", err)
		return nil
	}
	rec := &billing.FleetRecord{}
	for _, in := range append(fv.Instances, fv.Terminated...) {
		rec.Instances = append(rec.Instances, billing.FleetInstance{ID: in.ID, CapacityProvider: in.CapacityProvider, Type: in.Type,
			StartedAt: in.StartedAt, TerminatedAt: in.TerminatedAt, MeteredUntil: in.MeteredUntil})
	}
	return rec
}

// functionInfos asks shoal's Lambda API for every function's runtime and
// Managed Instances concurrency, which the what-if replay uses to size
// environments. Without them (an older shoal, an error) the replay falls back
// to --runtime, and a note says so.
func functionInfos(c *cobra.Command, cf *clientFlags, note io.Writer) map[string]billing.FunctionInfo {
	out := map[string]billing.FunctionInfo{}
	client, err := cf.lambdaClient(ctxOf(c))
	if err != nil {
		fmt.Fprintf(note, "shoal: function runtimes unknown (%v); the what-if assumes --runtime\n", err)
		return out
	}
	p := lambda.NewListFunctionsPaginator(client, &lambda.ListFunctionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxOf(c))
		if err != nil {
			err = errors.New(describe(err))
			fmt.Fprintf(note, "shoal: function runtimes unknown (%v); the what-if assumes --runtime\n", err)
			return out
		}
		for _, fc := range page.Functions {
			fi := billing.FunctionInfo{Runtime: string(fc.Runtime)}
			if cp := fc.CapacityProviderConfig; cp != nil && cp.LambdaManagedInstancesCapacityProviderConfig != nil {
				fi.EnvConcurrency = int(aws.ToInt32(cp.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency))
			}
			out[aws.ToString(fc.FunctionName)] = fi
		}
	}
	return out
}
