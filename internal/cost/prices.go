package cost

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// WritePricesJSON writes the catalogue as JSON, in the format Load reads back, so the
// output of `shoal cost prices -o json` is a starting point for a --prices file.
func WritePricesJSON(w io.Writer, cat *pricing.Catalog) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(cat)
}

// WritePricesTable lists the catalogue for a terminal: its date and version, the Lambda
// prices by architecture, and every Managed Instances instance type with its hourly
// price, management fee and the resulting hourly cost.
func WritePricesTable(w io.Writer, cat *pricing.Catalog) error {
	fmt.Fprintf(w, "price catalogue %s dated %s — %s, %s\n", cat.Version, cat.Date, cat.Region, cat.Currency)
	if cat.Source != "" {
		fmt.Fprintf(w, "source: %s\n", cat.Source)
	}
	l := cat.Lambda
	fmt.Fprintf(w, "\nLambda: $%s per 1M requests; duration billed in %d ms steps; free tier %s requests and %s GB-s a month; 1 GB = %d MB; month = %d h\n\n",
		l.RequestPerMillion.StringFixed(2), l.BillingGranularityMs, l.FreeTier.RequestsPerMonth, l.FreeTier.GBSecondsPerMonth, pricing.MBPerGB, pricing.HoursPerMonth)
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignRight}),
	)
	t.Header("ARCH", "RATE", "USD PER GB-S")
	for _, a := range []pricing.Arch{pricing.X86_64, pricing.ARM64} {
		r, err := cat.Rates(a)
		if err != nil {
			return err
		}
		from := "0"
		for _, tier := range r.DurationTiers {
			name := "duration above " + GroupThousands(from) + " GB-s/month"
			if tier.UpToGBSeconds != nil {
				name = fmt.Sprintf("duration %s to %s GB-s/month", GroupThousands(from), GroupThousands(tier.UpToGBSeconds.String()))
				from = tier.UpToGBSeconds.String()
			}
			if err := t.Append(string(a), name, tier.PerGBSecond.String()); err != nil {
				return err
			}
		}
		if err := t.Append(string(a), "provisioned concurrency (allocated)", r.ProvisionedPerGBSecond.String()); err != nil {
			return err
		}
		if err := t.Append(string(a), "duration on provisioned concurrency", r.ProvisionedDurationPerGBSecond.String()); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	mi := cat.ManagedInstances
	fmt.Fprintf(w, "\nManaged Instances: $%s per 1M requests; management fee %s %% of the EC2 on-demand price; no duration charge\n\n",
		mi.RequestPerMillion.StringFixed(2), mi.ManagementFee.Shift(2))
	it := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithAlignment(tw.Alignment{tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight}),
	)
	it.Header("INSTANCE TYPE", "ARCH", "VCPU", "GIB", "EC2 $/H", "FEE $/H", "TOTAL $/H", "PER 730 H")
	for _, x := range mi.InstanceTypes {
		ec2, fee := mi.Hourly(x, decimal.Zero)
		total := ec2.Add(fee)
		if err := it.Append(x.Name, string(x.Arch), fmt.Sprint(x.VCPU), fmt.Sprint(x.MemoryGiB),
			ec2.String(), fee.String(), total.String(), pricing.FormatUSD(total.Mul(decimal.NewFromInt(pricing.HoursPerMonth)))); err != nil {
			return err
		}
	}
	return it.Render()
}
