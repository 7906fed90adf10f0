package trace

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Series is traffic binned into fixed time steps, the form the replay consumes.
// Each slice has one element per step. Invocations are counted and billed in the
// step they start in; their wall and CPU time is spread over the steps they run
// in, so BusyMs ÷ the step is the mean concurrency of the step even when
// invocations outlast it.
type Series struct {
	Start time.Time
	Step  time.Duration
	// MemoryMB is the largest memory setting of any invocation in the series.
	MemoryMB int
	// Functions names the functions the series holds, in trace order.
	Functions []string

	Count  []uint32  // invocations started in the step
	BusyMs []float64 // wall time of invocations in flight during the step, clipped to it
	CPUMs  []float64 // their CPU time on one full vCPU in the step
	GBs    []float64 // billed GB-seconds of the step's invocations: Σ max(1, ⌈ms⌉)/1000 × MB/1024
}

// Len is the number of steps.
func (s *Series) Len() int { return len(s.Count) }

// Total is the number of invocations in the series.
func (s *Series) Total() uint64 {
	var n uint64
	for _, c := range s.Count {
		n += uint64(c)
	}
	return n
}

// Duration is the time the series covers.
func (s *Series) Duration() time.Duration { return time.Duration(s.Len()) * s.Step }

// NewSeries returns an empty series of n steps.
func NewSeries(start time.Time, step time.Duration, n int) *Series {
	return &Series{
		Start: start, Step: step,
		Count:  make([]uint32, n),
		BusyMs: make([]float64, n),
		CPUMs:  make([]float64, n),
		GBs:    make([]float64, n),
	}
}

// MaxSteps bounds the length of a binned series (about 116 days at one-second steps).
const MaxSteps = 10_000_000

// DefaultMemoryMB is the memory assumed for a function whose trace gives none
// (Lambda's default memory size).
const DefaultMemoryMB = 128

// BinOptions says how to bin a trace.
type BinOptions struct {
	// Step is the length of a step; zero means one minute.
	Step time.Duration
	// Function keeps only the function whose name equals it or, failing that,
	// starts with it (a unique prefix, handy for the Azure trace's long hashes).
	Function string
	// MemoryMB, when positive, replaces every invocation's memory setting.
	MemoryMB int
	// CPUFraction is the CPU time assumed, as a fraction of the wall time, for
	// invocations whose trace gives none; zero means 1 (CPU time = duration).
	CPUFraction float64
}

func (o BinOptions) withDefaults() (BinOptions, error) {
	if o.Step == 0 {
		o.Step = time.Minute
	}
	if o.Step < time.Millisecond {
		return o, fmt.Errorf("step %v: want at least 1ms", o.Step)
	}
	if o.CPUFraction == 0 {
		o.CPUFraction = 1
	}
	if o.CPUFraction < 0 || o.CPUFraction > 64 || math.IsNaN(o.CPUFraction) {
		return o, fmt.Errorf("cpu fraction %v: want a value in (0, 64]", o.CPUFraction)
	}
	if o.MemoryMB < 0 || o.MemoryMB > MaxMemoryMB {
		return o, fmt.Errorf("memory %d MB: want 0..%d", o.MemoryMB, MaxMemoryMB)
	}
	return o, nil
}

// BilledGBs is the billed GB-seconds of one invocation: its duration rounded up to
// the next millisecond (at least 1 ms) times its memory in GB (1 GB = 1024 MB).
func BilledGBs(durationMs float64, memoryMB int) float64 {
	ms := math.Ceil(durationMs)
	if ms < 1 {
		ms = 1
	}
	return ms / 1000 * float64(memoryMB) / 1024
}

// matchFunction picks the function named by want among names: an exact match,
// or else the single name with that prefix.
func matchFunction(names []string, want string) (string, error) {
	var hits []string
	for _, n := range names {
		if n == want {
			return n, nil
		}
		if strings.HasPrefix(n, want) && (len(hits) == 0 || hits[len(hits)-1] != n) {
			hits = append(hits, n)
		}
	}
	switch len(hits) {
	case 0:
		return "", fmt.Errorf("function %q is not in the trace", want)
	case 1:
		return hits[0], nil
	}
	return "", fmt.Errorf("function %q matches %d functions; give more of its name", want, len(hits))
}

// BinInvocations bins invocations of the simple CSV format.
func BinInvocations(invs []Invocation, opt BinOptions) (*Series, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for i := range invs {
		if !seen[invs[i].Function] {
			seen[invs[i].Function] = true
			names = append(names, invs[i].Function)
		}
	}
	keep := ""
	if opt.Function != "" {
		if keep, err = matchFunction(names, opt.Function); err != nil {
			return nil, err
		}
		names = []string{keep}
	}
	var first, last time.Time
	n := 0
	for i := range invs {
		if keep != "" && invs[i].Function != keep {
			continue
		}
		t := invs[i].Time
		if n == 0 || t.Before(first) {
			first = t
		}
		if n == 0 || t.After(last) {
			last = t
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("trace has no invocations")
	}
	start := first.Truncate(opt.Step)
	span := last.Sub(start)
	if span < 0 || span/opt.Step >= MaxSteps {
		return nil, fmt.Errorf("trace spans %v: more than %d steps of %v", span, MaxSteps, opt.Step)
	}
	s := NewSeries(start, opt.Step, int(span/opt.Step)+1)
	s.Functions = names
	sp := newSpreader(s)
	for i := range invs {
		inv := &invs[i]
		if keep != "" && inv.Function != keep {
			continue
		}
		off := inv.Time.Sub(start)
		k := int(off / opt.Step)
		mem := inv.MemoryMB
		if opt.MemoryMB > 0 {
			mem = opt.MemoryMB
		}
		if mem > s.MemoryMB {
			s.MemoryMB = mem
		}
		cpu := inv.CPUMs
		if cpu < 0 {
			cpu = inv.DurationMs * opt.CPUFraction
		}
		s.Count[k]++
		s.GBs[k] += BilledGBs(inv.DurationMs, mem)
		sp.add(k, float64(off%opt.Step)/float64(time.Millisecond), 1, inv.DurationMs, cpu)
	}
	sp.finish()
	return s, nil
}

// BinAzure bins an Azure Functions trace. Each function's invocations take its
// daily average duration; a step shorter than a minute must divide it, and the
// minute's invocations are spread evenly over its steps; a longer step must be a
// whole number of minutes.
func BinAzure(a *Azure, opt BinOptions) (*Series, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	var perMinute, minutesPerStep int
	switch {
	case opt.Step <= time.Minute && time.Minute%opt.Step == 0:
		perMinute, minutesPerStep = int(time.Minute/opt.Step), 1
	case opt.Step > time.Minute && opt.Step%time.Minute == 0:
		perMinute, minutesPerStep = 1, int(opt.Step/time.Minute)
	default:
		return nil, fmt.Errorf("step %v: the Azure trace has one-minute bins; want a divisor or a multiple of a minute", opt.Step)
	}
	fns := a.Functions
	if opt.Function != "" {
		names := make([]string, len(fns))
		for i := range fns {
			names[i] = fns[i].Function
		}
		keep, err := matchFunction(names, opt.Function)
		if err != nil {
			return nil, err
		}
		for i := range fns {
			if fns[i].Function == keep {
				fns = fns[i : i+1]
				break
			}
		}
	}
	if len(fns) == 0 || a.Minutes == 0 {
		return nil, errors.New("trace has no functions")
	}
	steps := (a.Minutes*perMinute + minutesPerStep - 1) / minutesPerStep
	if steps > MaxSteps {
		return nil, fmt.Errorf("trace has more than %d steps of %v", MaxSteps, opt.Step)
	}
	s := NewSeries(a.Start(), opt.Step, steps)
	sp := newSpreader(s)
	for i := range fns {
		f := &fns[i]
		if f.Duration == nil {
			return nil, fmt.Errorf("function %s has no row in the durations file", f.Function)
		}
		s.Functions = append(s.Functions, f.Function)
		mem := opt.MemoryMB
		if mem == 0 {
			mem = f.MemoryMB()
		}
		if mem == 0 {
			mem = DefaultMemoryMB
		}
		if mem > s.MemoryMB {
			s.MemoryMB = mem
		}
		dur := f.Duration.AverageMs
		cpu := dur * opt.CPUFraction
		gbs := BilledGBs(dur, mem)
		for m, n := range f.Counts {
			if n == 0 {
				continue
			}
			if perMinute == 1 {
				k := m / minutesPerStep
				s.Count[k] += n
				s.GBs[k] += float64(n) * gbs
				sp.add(k, float64((m%minutesPerStep)*60_000), float64(n), dur, cpu)
				continue
			}
			base := m * perMinute
			prev := uint64(0)
			for j := 1; j <= perMinute; j++ {
				cum := uint64(n) * uint64(j) / uint64(perMinute)
				if c := uint32(cum - prev); c > 0 {
					s.Count[base+j-1] += c
					s.GBs[base+j-1] += float64(c) * gbs
					sp.add(base+j-1, 0, float64(c), dur, cpu)
				}
				prev = cum
			}
		}
	}
	sp.finish()
	return s, nil
}

// spreader lays invocations' wall and CPU time over the steps they run in. The
// whole steps in the middle of a long invocation go to difference arrays, so
// an invocation costs O(1) however many steps it spans.
type spreader struct {
	s           *Series
	stepMs      float64
	dBusy, dCPU []float64 // whole-step occupancy, as differences
}

func newSpreader(s *Series) *spreader {
	return &spreader{s: s, stepMs: float64(s.Step) / float64(time.Millisecond)}
}

// add lays n invocations that start offMs into step k and each run durMs of
// wall time with cpuMs of CPU time (spread evenly over the wall time). Time past
// the series' end is dropped.
func (p *spreader) add(k int, offMs, n, durMs, cpuMs float64) {
	if !(durMs > 0) || n == 0 {
		return
	}
	s, S := p.s, p.stepMs
	end := offMs + durMs // relative to the start of step k
	if end <= S {
		s.BusyMs[k] += n * durMs
		s.CPUMs[k] += n * cpuMs
		return
	}
	rate := cpuMs / durMs
	first := S - offMs
	s.BusyMs[k] += n * first
	s.CPUMs[k] += n * first * rate
	last := int(math.Ceil(end/S)) - 1 // steps after k the invocation reaches
	if k+1 < s.Len() && last > 1 {
		if p.dBusy == nil {
			p.dBusy = make([]float64, s.Len()+1)
			p.dCPU = make([]float64, s.Len()+1)
		}
		hi := min(k+last, s.Len())
		p.dBusy[k+1] += n * S
		p.dBusy[hi] -= n * S
		p.dCPU[k+1] += n * S * rate
		p.dCPU[hi] -= n * S * rate
	}
	if j := k + last; j < s.Len() {
		tail := end - float64(last)*S
		s.BusyMs[j] += n * tail
		s.CPUMs[j] += n * tail * rate
	}
}

// finish adds the whole steps to the series.
func (p *spreader) finish() {
	if p.dBusy == nil {
		return
	}
	var busy, cpu float64
	for i := range p.s.BusyMs {
		busy += p.dBusy[i]
		cpu += p.dCPU[i]
		p.s.BusyMs[i] += busy
		p.s.CPUMs[i] += cpu
	}
}
