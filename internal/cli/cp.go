package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/spf13/cobra"
)

func newCPCmd() *cobra.Command {
	var cf clientFlags
	c := &cobra.Command{
		Use:               "cp",
		Short:             "Inspect Managed Instances capacity providers",
		PersistentPreRunE: func(*cobra.Command, []string) error { return cf.validate() },
	}
	cf.register(c)
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List capacity providers",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			var all []types.CapacityProvider
			p := lambda.NewListCapacityProvidersPaginator(client, &lambda.ListCapacityProvidersInput{})
			for p.HasMorePages() {
				page, err := p.NextPage(ctxOf(c))
				if err != nil {
					return err
				}
				all = append(all, page.CapacityProviders...)
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), map[string]any{"CapacityProviders": all})
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tARCH\tSCALING\tMAX VCPU\tINSTANCE TYPES")
			for _, p := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", arnTail(aws.ToString(p.CapacityProviderArn)), p.State,
					archOf(p), scalingOf(p), maxVCPUOf(p), typesOf(p))
			}
			return tw.Flush()
		},
	}, &cobra.Command{
		Use:   "get NAME",
		Short: "Show a capacity provider and its instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			client, err := cf.lambdaClient(ctxOf(c))
			if err != nil {
				return err
			}
			out, err := client.GetCapacityProvider(ctxOf(c), &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String(args[0])})
			if err != nil {
				return err
			}
			fv, err := getFleetView(c, &cf, time.Time{})
			if err != nil {
				return err
			}
			name := arnTail(aws.ToString(out.CapacityProvider.CapacityProviderArn))
			var mine []fleetInstance
			for _, in := range fv.Instances {
				if in.CapacityProvider == name {
					mine = append(mine, in)
				}
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), map[string]any{"CapacityProvider": out.CapacityProvider, "Instances": mine})
			}
			p := *out.CapacityProvider
			w := c.OutOrStdout()
			fmt.Fprintf(w, "Name:            %s\nArn:             %s\nState:           %s\nArchitecture:    %s\n",
				name, aws.ToString(p.CapacityProviderArn), p.State, archOf(p))
			fmt.Fprintf(w, "Scaling:         %s (MaxVCpuCount %s)\nInstance types:  %s\n\n", scalingOf(p), maxVCPUOf(p), typesOf(p))
			return writeInstances(w, mine, time.Now())
		},
	})
	return c
}

func arnTail(arn string) string {
	if i := strings.LastIndexByte(arn, ':'); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func archOf(p types.CapacityProvider) string {
	if p.InstanceRequirements != nil && len(p.InstanceRequirements.Architectures) > 0 {
		return string(p.InstanceRequirements.Architectures[0])
	}
	return "x86_64"
}

func scalingOf(p types.CapacityProvider) string {
	if s := p.CapacityProviderScalingConfig; s != nil && s.ScalingMode != "" {
		if s.ScalingMode == types.CapacityProviderScalingModeManual {
			for _, pol := range s.ScalingPolicies {
				return fmt.Sprintf("Manual, CPU %.0f %%", aws.ToFloat64(pol.TargetValue))
			}
		}
		return string(s.ScalingMode)
	}
	return "Auto"
}

func maxVCPUOf(p types.CapacityProvider) string {
	if s := p.CapacityProviderScalingConfig; s != nil && s.MaxVCpuCount != nil {
		return fmt.Sprint(*s.MaxVCpuCount)
	}
	return "400"
}

func typesOf(p types.CapacityProvider) string {
	if r := p.InstanceRequirements; r != nil {
		if len(r.AllowedInstanceTypes) > 0 {
			return strings.Join(r.AllowedInstanceTypes, ",")
		}
		if len(r.ExcludedInstanceTypes) > 0 {
			return "all but " + strings.Join(r.ExcludedInstanceTypes, ",")
		}
	}
	return "any C, M, R .large and up"
}

// getFleetView reads GET /shoal/v1/fleet; with a terminatedSince, also the
// instances terminated since then.
func getFleetView(c *cobra.Command, cf *clientFlags, terminatedSince time.Time) (*fleetDoc, error) {
	hc, err := cf.httpClient(ctxOf(c), 0)
	if err != nil {
		return nil, err
	}
	return fetchFleet(ctxOf(c), hc, cf.endpoint, terminatedSince)
}

// stamp shows a time to the second, in UTC.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// due shows when a rotation is due: "in 13d23h", "now" once past, "-" unknown.
func due(at, now time.Time) string {
	switch {
	case at.IsZero():
		return "-"
	case !at.After(now):
		return "now"
	}
	return "in " + age(at.Sub(now))
}

// age shows a duration the way ps and kubectl do: its two largest units.
func age(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// writeInstances prints instances and their environments; in a cluster
// (when instances run on hosts), with the host of each.
func writeInstances(w io.Writer, instances []fleetInstance, now time.Time) error {
	onHosts := slices.ContainsFunc(instances, func(in fleetInstance) bool { return in.Host != "" })
	host := func(name string) string { // the HOST column, in a cluster only
		if !onHosts {
			return ""
		}
		return name + "\t"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tCAPACITY PROVIDER\tTYPE\t"+host("HOST")+"ZONE\tSTATE\tAGE\tLAUNCHED (UTC)\tROTATION DUE\tCPU\tMEMORY\tENVIRONMENTS\tIN FLIGHT")
	for _, in := range instances {
		inFlight := 0
		for _, e := range in.Environments {
			inFlight += e.InFlight
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t%s\t%s\t%s\t%s\t%.0f %%\t%.0f %% of %d MB\t%d\t%d\n", in.ID, in.CapacityProvider, in.Type,
			host(in.Host), in.Zone, in.State, age(now.Sub(in.LaunchedAt)), stamp(in.LaunchedAt), due(in.RotationDue, now), in.CPUUtilization*100,
			in.MemoryUtilization*100, in.MemoryMB, len(in.Environments), inFlight)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var envs [][]string
	for _, in := range instances {
		for _, e := range in.Environments {
			envs = append(envs, []string{e.ID, e.Function + ":" + e.Version, in.ID, e.State, fmt.Sprintf("%d/%d", e.InFlight, e.Slots)})
		}
	}
	if len(envs) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tFUNCTION\tINSTANCE\tSTATE\tSLOTS USED")
	for _, e := range envs {
		fmt.Fprintln(tw, strings.Join(e, "\t"))
	}
	return tw.Flush()
}

func newFleetCmd() *cobra.Command {
	var cf clientFlags
	var terminated time.Duration
	c := &cobra.Command{
		Use:   "fleet",
		Short: "Show the Managed Instances fleet: instances, environments and throttles",
		Long: `Show the Managed Instances fleet: every instance with its age, launch time and
when it is due to be replaced (its capacity provider's maximum lifetime), the
execution environments on it and the invocations in flight, the instances
terminated recently (--terminated-since) with their launch and terminate times
and what their drains did to the invocations in flight (finished / cut at the
function's timeout), and each function version's invocations and throttles.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := cf.validate(); err != nil {
				return err
			}
			if terminated < 0 {
				return fmt.Errorf("--terminated-since %v: want a duration ago, 0 for none", terminated)
			}
			now := time.Now()
			var since time.Time
			if terminated > 0 {
				since = now.Add(-terminated)
			}
			fv, err := getFleetView(c, &cf, since)
			if err != nil {
				return err
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), fv)
			}
			w := c.OutOrStdout()
			if len(fv.Hosts) > 0 {
				if err := writeHosts(w, fv.Hosts, now); err != nil {
					return err
				}
				fmt.Fprintln(w)
			}
			if err := writeInstances(w, fv.Instances, now); err != nil {
				return err
			}
			if len(fv.Terminated) > 0 {
				fmt.Fprintf(w, "\nTERMINATED in the last %v\n", terminated)
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "INSTANCE\tCAPACITY PROVIDER\tTYPE\tZONE\tLAUNCHED (UTC)\tTERMINATED (UTC)\tLIFETIME\tDRAINED / CUT")
				for _, in := range fv.Terminated {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d / %d\n", in.ID, in.CapacityProvider, in.Type, in.Zone,
						stamp(in.LaunchedAt), stamp(in.TerminatedAt), age(in.TerminatedAt.Sub(in.LaunchedAt)),
						in.DrainedInvocations, in.CutInvocations)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if len(fv.Versions) == 0 {
				return nil
			}
			fmt.Fprintln(w)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FUNCTION\tENVIRONMENTS\tINVOCATIONS\tTHROTTLES (CONCURRENCY / CPU / MEMORY)")
			for _, v := range fv.Versions {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d / %d / %d\n", v.Version, v.Environments, v.Invocations,
					v.ThrottlesConcurrency, v.ThrottlesCPU, v.ThrottlesMemory)
			}
			return tw.Flush()
		},
	}
	cf.register(c)
	c.Flags().DurationVar(&terminated, "terminated-since", time.Hour, "also list the instances terminated this long ago or since (0: none)")
	return c
}
