package billing

import (
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// assumptions lists, in plain words, the rules behind a report.
func assumptions(cat *pricing.Catalog, r *Report, opts Options) []string {
	var a []string
	add := func(format string, args ...any) { a = append(a, fmt.Sprintf(format, args...)) }
	add("Prices: catalogue %s dated %s, %s, %s; amounts are summed unrounded and rounded half-up to cents only when shown.",
		cat.Version, cat.Date, cat.Region, cat.Currency)
	add("Period: %s to %s (%s h). An invocation counts in the period it ended in; instance and provisioned segments are cut to the period.",
		r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339), r.Period.Hours.Round(4).String())
	add("Metered: each invocation bills the duration the ledger recorded (an on-demand cold start's init included, as Lambda bills since August 2025), at its memory (1 GB = 1024 MB); Provisioned Concurrency bills its allocated GB-seconds, invocations on provisioned environments at the provisioned duration price, and on-demand invocations of the same version while it was allocated as spill-over at on-demand prices.")
	add("Managed Instances: every instance-second but those pending is billed at the EC2 on-demand price, with the %s %% management fee on that price; a function's bill takes a share of its capacity provider's instances by the CPU time its invocations used.",
		cat.ManagedInstances.ManagementFee.Shift(2).String())
	if opts.FreeTier {
		add("Free tier applied once, to the on-demand total, prorated to the period; function bills do not deduct it.")
	} else {
		add("Free tier not applied (--free-tier deducts it once, from the on-demand total).")
	}
	if opts.SavingsPlan.IsPositive() {
		add("Savings Plan: %s %% off the EC2 price; the management fee stays on the on-demand price.", opts.SavingsPlan.Shift(2).String())
	}
	if opts.Function != "" {
		add("Only function %s; the capacity providers it ran on are billed whole, with every function's requests.", opts.Function)
	}
	if !opts.NoWhatIf {
		add("What-if: each function's recorded invocations (start, duration, measured CPU time, memory) are replayed through every compute type over the whole period; on-demand cold starts in the replay bill the mean init the ledger recorded for the function. The compute type a function ran on is compared at its metered bill.")
	}
	add("Not priced: data transfer, CloudWatch Logs, ephemeral storage, NAT gateways or VPC endpoints, Lambda's own Savings Plans.")
	return a
}
