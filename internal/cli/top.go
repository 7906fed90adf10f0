package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/shoal-dev/shoal/internal/clock"
)

// ANSI sequences of the live view. The view draws on the alternate screen with
// the cursor hidden, and gives both back when it ends.
const (
	ansiEnterScreen = "\x1b[?1049h\x1b[?25l\x1b[2J"
	ansiLeaveScreen = "\x1b[?25h\x1b[?1049l"
	ansiHome        = "\x1b[H"
	ansiClearLine   = "\x1b[K"
	ansiClearBelow  = "\x1b[J"
)

func newTopCmd() *cobra.Command {
	var (
		cf  clientFlags
		cfg topConfig
	)
	c := &cobra.Command{
		Use:   "top",
		Short: "Show the Managed Instances fleet live: instances, environments, in-flight, CPU, memory, throttles",
		Long: "Redraw the fleet every --interval: a header with the totals and the invocation and " +
			"throttle rates (from the counters' change between two refreshes), the instances, their " +
			"execution environments, and each function version's counters. On a terminal the view " +
			"fills the screen until Ctrl-C; otherwise it prints one frame per interval, separated by " +
			"blank lines. --once prints a single frame (its rates need a second refresh and show as -).",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cf.output != "table" {
				return fmt.Errorf("--output %q: shoal top draws tables only (shoal fleet -o json prints the document)", cf.output)
			}
			cfg.Endpoint = cf.endpoint
			if cfg.Once {
				cfg.Iterations = 1
			}
			out := c.OutOrStdout()
			hc, err := cf.httpClient(ctxOf(c), max(cfg.Interval, 2*time.Second))
			if err != nil {
				return err
			}
			deps := topDeps{Clock: clock.Real{}, Out: out, HTTP: hc}
			if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) && enableVT(f) {
				fd := int(f.Fd())
				deps.Screen = func() (int, int) {
					w, h, err := term.GetSize(fd)
					if err != nil {
						return 0, 0
					}
					return w, h
				}
			}
			return runTop(ctxOf(c), cfg, deps)
		},
	}
	cf.register(c)
	_ = c.PersistentFlags().MarkHidden("output")
	f := c.Flags()
	f.DurationVar(&cfg.Interval, "interval", time.Second, "time between refreshes")
	f.BoolVar(&cfg.Once, "once", false, "print one frame and exit (fail if shoal is unreachable)")
	f.IntVar(&cfg.Iterations, "iterations", 0, "stop after this many frames (0: until Ctrl-C)")
	return c
}

// topConfig is what shoal top shows and for how long.
type topConfig struct {
	Endpoint string
	Interval time.Duration
	// Iterations is how many frames to draw; 0 means until the context ends.
	Iterations int
	// Once draws a single frame, without rates, and fails instead if the
	// fleet cannot be read.
	Once bool
}

// Validate reports a configuration shoal top cannot run with.
func (c topConfig) Validate() error {
	if c.Endpoint == "" {
		return errors.New("--endpoint-url is empty")
	}
	if c.Interval <= 0 {
		return fmt.Errorf("--interval %s: want a positive duration", c.Interval)
	}
	if c.Iterations < 0 {
		return fmt.Errorf("--iterations %d: want 0 or more", c.Iterations)
	}
	return nil
}

// topDeps are shoal top's outside world.
type topDeps struct {
	Clock clock.Clock
	Out   io.Writer
	// Screen, when set, says the output is a terminal and returns its width
	// and height (0 when unknown); frames then redraw in place.
	Screen func() (width, height int)
	// HTTP fetches the fleet; nil means a client with a per-request timeout.
	HTTP *http.Client
}

// fleetSample is the fleet as read at one moment.
type fleetSample struct {
	At  time.Time
	Doc fleetDoc
}

// topFrame is everything one frame shows.
type topFrame struct {
	Endpoint string
	Interval time.Duration
	Now      time.Time
	// Cur is the newest fleet read, Prev the one before it (nil until there
	// are two); rates are their difference. Cur is nil until the first read.
	Cur, Prev *fleetSample
	// Err is why the latest read failed, if it did; the frame then shows Cur
	// as the last known state.
	Err error
}

// runTop draws frames until cfg's iterations are done or ctx ends.
func runTop(ctx context.Context, cfg topConfig, deps topDeps) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	client := deps.HTTP
	if client == nil {
		client = &http.Client{Timeout: max(cfg.Interval, 2*time.Second)}
	}
	live := deps.Screen != nil && !cfg.Once
	if live {
		if _, err := io.WriteString(deps.Out, ansiEnterScreen); err != nil {
			return err
		}
		defer func() {
			if _, werr := io.WriteString(deps.Out, ansiLeaveScreen); err == nil {
				err = werr
			}
		}()
	}
	frame := topFrame{Endpoint: cfg.Endpoint, Interval: cfg.Interval}
	next := deps.Clock.Now()
	for n := 0; cfg.Iterations == 0 || n < cfg.Iterations; n++ {
		if n > 0 {
			// Refresh every interval from the start, whatever a fetch took;
			// after a fetch longer than the interval, refresh at once.
			next = next.Add(cfg.Interval)
			if d := next.Sub(deps.Clock.Now()); d > 0 {
				t := deps.Clock.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C():
				}
			} else {
				next = deps.Clock.Now()
			}
		}
		doc, ferr := fetchFleet(ctx, client, cfg.Endpoint, time.Time{})
		if ctx.Err() != nil {
			return nil
		}
		if cfg.Once && ferr != nil {
			return fmt.Errorf("shoal is unreachable: %w", ferr)
		}
		frame.Now = deps.Clock.Now()
		frame.Err = ferr
		if ferr == nil {
			frame.Prev, frame.Cur = frame.Cur, &fleetSample{At: frame.Now, Doc: *doc}
		}
		var buf bytes.Buffer
		if n > 0 && !live {
			buf.WriteString("\n") // a blank line between frames
		}
		renderTop(&buf, frame)
		if live {
			w, h := deps.Screen()
			err = drawScreen(deps.Out, buf.String(), w, h)
		} else {
			_, err = deps.Out.Write(buf.Bytes())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// drawScreen redraws the terminal in place with text, cut to width columns
// and height rows (0: no limit) so the screen never scrolls.
func drawScreen(w io.Writer, text string, width, height int) error {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if height > 0 && len(lines) > height {
		more := len(lines) - (height - 1)
		lines = append(lines[:height-1], fmt.Sprintf("… %d more lines (enlarge the terminal)", more))
	}
	var b strings.Builder
	b.WriteString(ansiHome)
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(topCutWidth(l, width))
		b.WriteString(ansiClearLine)
	}
	b.WriteString(ansiClearBelow)
	_, err := io.WriteString(w, b.String())
	return err
}

// topCutWidth keeps the first width runes of s (all of s when width is 0).
func topCutWidth(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	return string([]rune(s)[:width])
}

// renderTop writes one frame: the header, the instances, their environments
// and the per-version counters.
func renderTop(w io.Writer, f topFrame) {
	fmt.Fprintf(w, "shoal top  %s  %s  every %s\n", f.Now.Format("15:04:05"), f.Endpoint, f.Interval)
	if f.Err != nil {
		if f.Cur != nil {
			fmt.Fprintf(w, "unreachable: %v (showing the fleet as of %s)\n", f.Err, f.Cur.At.Format("15:04:05"))
		} else {
			fmt.Fprintf(w, "unreachable: %v\n", f.Err)
		}
	}
	if f.Cur == nil {
		return
	}
	instances := sortedInstances(f.Cur.Doc.Instances)
	versions := versionRates(f.Prev, f.Cur)
	envs, inFlight, slots := 0, 0, 0
	for _, in := range instances {
		for _, e := range in.Environments {
			envs++
			inFlight += e.InFlight
			slots += e.Slots
		}
	}
	// The totals are known when some version's rates are (or there are no
	// versions to rate).
	var total versionRate
	total.known = f.Prev != nil && len(versions) == 0
	for _, v := range versions {
		if v.known {
			total.known = true
			total.invocations += v.invocations
			total.concurrency += v.concurrency
			total.cpu += v.cpu
			total.memory += v.memory
		}
	}
	fmt.Fprintf(w, "instances %d  environments %d  in flight %d/%d  invocations/s %s  throttles/s concurrency %s cpu %s memory %s\n\n",
		len(instances), envs, inFlight, slots, total.rate(total.invocations),
		total.rate(total.concurrency), total.rate(total.cpu), total.rate(total.memory))
	if len(instances) == 0 {
		fmt.Fprintln(w, "no instances")
		return
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tCAPACITY PROVIDER\tTYPE\tZONE\tSTATE\tCPU\tMEMORY\tENVS\tIN FLIGHT")
	for _, in := range instances {
		inFlight, slots := 0, 0
		for _, e := range in.Environments {
			inFlight += e.InFlight
			slots += e.Slots
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\n", in.ID, in.CapacityProvider, in.Type, in.Zone,
			instanceState(in), topPercent(in.CPUUtilization), topMemory(in.MemoryUtilization, in.MemoryMB),
			len(in.Environments), inFlight, slots)
	}
	_ = tw.Flush()

	if envs > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tFUNCTION\tENVIRONMENT\tSTATE\tSLOTS\tCPU")
		for _, in := range instances {
			for _, e := range sortedEnvs(in.Environments) {
				fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s\t%d/%d\t%s\n", in.ID, e.Function, e.Version, e.ID, e.State,
					e.InFlight, e.Slots, topPercent(e.CPUUtilization))
			}
		}
		_ = tw.Flush()
	}

	if len(versions) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FUNCTION\tENVS\tINVOCATIONS\tINVOCATIONS/S\tTHROTTLES CONCURRENCY/CPU/MEMORY\tTHROTTLES/S")
		for _, v := range versions {
			c := v.cur
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d / %d / %d\t%s / %s / %s\n", c.Version, c.Environments, c.Invocations,
				v.rate(v.invocations), c.ThrottlesConcurrency, c.ThrottlesCPU, c.ThrottlesMemory,
				v.rate(v.concurrency), v.rate(v.cpu), v.rate(v.memory))
		}
		_ = tw.Flush()
	}
}

// versionRate is one version's counters and their rates per second since the
// previous sample. known is false when there is no previous sample of the
// version or a counter went down (the control plane restarted).
type versionRate struct {
	cur                                   versionCounts
	known                                 bool
	invocations, concurrency, cpu, memory float64
}

func (v versionRate) rate(r float64) string {
	if !v.known {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

// versionRates pairs each version of cur with its rates since prev, sorted by
// version.
func versionRates(prev, cur *fleetSample) []versionRate {
	before := map[string]versionCounts{}
	var secs float64
	if prev != nil {
		secs = cur.At.Sub(prev.At).Seconds()
		for _, v := range prev.Doc.Versions {
			before[v.Version] = v
		}
	}
	out := make([]versionRate, 0, len(cur.Doc.Versions))
	for _, c := range cur.Doc.Versions {
		r := versionRate{cur: c}
		if p, ok := before[c.Version]; ok && secs > 0 && c.Invocations >= p.Invocations &&
			c.ThrottlesConcurrency >= p.ThrottlesConcurrency && c.ThrottlesCPU >= p.ThrottlesCPU &&
			c.ThrottlesMemory >= p.ThrottlesMemory {
			r.known = true
			r.invocations = float64(c.Invocations-p.Invocations) / secs
			r.concurrency = float64(c.ThrottlesConcurrency-p.ThrottlesConcurrency) / secs
			r.cpu = float64(c.ThrottlesCPU-p.ThrottlesCPU) / secs
			r.memory = float64(c.ThrottlesMemory-p.ThrottlesMemory) / secs
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b versionRate) int { return cmp.Compare(a.cur.Version, b.cur.Version) })
	return out
}

// sortedInstances orders instances by capacity provider, zone and id.
func sortedInstances(in []fleetInstance) []fleetInstance {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b fleetInstance) int {
		return cmp.Or(cmp.Compare(a.CapacityProvider, b.CapacityProvider), cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// sortedEnvs orders an instance's environments by function, version and id.
func sortedEnvs(envs []fleetEnv) []fleetEnv {
	out := slices.Clone(envs)
	slices.SortStableFunc(out, func(a, b fleetEnv) int {
		return cmp.Or(cmp.Compare(a.Function, b.Function), cmp.Compare(a.Version, b.Version), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// instanceState is an instance's state, with its reason when it has one.
func instanceState(in fleetInstance) string {
	if in.StateReason != "" {
		return in.State + " (" + in.StateReason + ")"
	}
	return in.State
}

// topPercent shows a 0..1 share as a whole percentage.
func topPercent(share float64) string {
	return fmt.Sprintf("%.0f%%", share*100)
}

// topMemory shows the used share of totalMB as used/total.
func topMemory(share float64, totalMB int) string {
	return topMegabytes(share*float64(totalMB)) + "/" + topMegabytes(float64(totalMB))
}

// topMegabytes shows an amount of memory in MiB below 1 GiB, in GiB from there.
func topMegabytes(mb float64) string {
	if mb < 1024 {
		return fmt.Sprintf("%.0f MiB", mb)
	}
	return fmt.Sprintf("%.1f GiB", mb/1024)
}
