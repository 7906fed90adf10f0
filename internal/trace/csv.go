// Package trace reads traffic traces for the cost replay: a simple CSV with one
// invocation per line, and the public Azure Functions 2019 trace (invocations per
// function per minute, with its duration and memory files). It also bins a trace
// into fixed time steps, which is the form the replay consumes.
//
// The package only parses and aggregates; it prices nothing and simulates nothing.
package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Invocation is one row of the simple CSV format.
type Invocation struct {
	Time       time.Time
	DurationMs float64
	// CPUMs is the CPU time of the invocation on one full vCPU; negative when the
	// trace does not give it.
	CPUMs    float64
	MemoryMB int
	Function string
}

// MaxDurationMs bounds a single invocation's duration (Lambda's 15-minute limit,
// with room for Managed Instances' longer timeouts).
const MaxDurationMs = 24 * 3600 * 1000

// MaxMemoryMB is the largest memory size a row may carry (Lambda's Managed Instances limit).
const MaxMemoryMB = 32768

// ParseCSV reads the simple CSV format: one invocation per line,
//
//	timestamp,duration_ms[,cpu_ms],memory_mb,function
//
// The timestamp is RFC 3339 or a number of seconds (Unix time or seconds since
// the trace start; fractions allowed). Lines starting with '#' and blank lines are
// skipped. An optional header row names the columns (timestamp|time|ts,
// duration_ms|duration, cpu_ms|cpu, memory_mb|memory, function|fn) in any order.
// Without a header, four fields mean no CPU column and five fields include it; an
// empty CPU field means unknown.
func ParseCSV(r io.Reader) ([]Invocation, error) {
	var out []Invocation
	err := ScanCSV(r, func(inv Invocation) error {
		out = append(out, inv)
		return nil
	})
	return out, err
}

type csvColumns struct {
	ts, dur, cpu, mem, fn int // -1 when absent
	n                     int
}

func positional(n int) (csvColumns, bool) {
	switch n {
	case 4:
		return csvColumns{ts: 0, dur: 1, cpu: -1, mem: 2, fn: 3, n: 4}, true
	case 5:
		return csvColumns{ts: 0, dur: 1, cpu: 2, mem: 3, fn: 4, n: 5}, true
	}
	return csvColumns{}, false
}

func headerColumns(fields []string) (csvColumns, bool) {
	c := csvColumns{ts: -1, dur: -1, cpu: -1, mem: -1, fn: -1, n: len(fields)}
	for i, f := range fields {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "timestamp", "time", "ts":
			c.ts = i
		case "duration_ms", "duration", "durationms":
			c.dur = i
		case "cpu_ms", "cpu", "cpums":
			c.cpu = i
		case "memory_mb", "memory", "memorymb", "mem":
			c.mem = i
		case "function", "fn", "function_name":
			c.fn = i
		default:
			return c, false
		}
	}
	return c, c.ts >= 0 && c.dur >= 0 && c.mem >= 0 && c.fn >= 0
}

// ScanCSV is ParseCSV without holding the whole trace: it calls fn for each row
// in file order and stops at the first error fn returns.
func ScanCSV(r io.Reader, fn func(Invocation) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var cols csvColumns
	haveCols := false
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		text = strings.TrimSpace(text)
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.Split(text, ",")
		if !haveCols {
			if c, ok := headerColumns(fields); ok {
				cols, haveCols = c, true
				continue
			}
			c, ok := positional(len(fields))
			if !ok {
				return fmt.Errorf("trace csv line %d: want 4 or 5 fields (timestamp,duration_ms[,cpu_ms],memory_mb,function), got %d", line, len(fields))
			}
			cols, haveCols = c, true
		}
		if len(fields) != cols.n {
			return fmt.Errorf("trace csv line %d: want %d fields, got %d", line, cols.n, len(fields))
		}
		inv, err := parseRow(fields, cols)
		if err != nil {
			return fmt.Errorf("trace csv line %d: %w", line, err)
		}
		if err := fn(inv); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("trace csv: %w", err)
	}
	return nil
}

func parseRow(f []string, c csvColumns) (Invocation, error) {
	var inv Invocation
	ts, err := ParseTimestamp(strings.TrimSpace(f[c.ts]))
	if err != nil {
		return inv, err
	}
	inv.Time = ts
	inv.DurationMs, err = parseMs("duration", f[c.dur])
	if err != nil {
		return inv, err
	}
	inv.CPUMs = -1
	if c.cpu >= 0 && strings.TrimSpace(f[c.cpu]) != "" {
		inv.CPUMs, err = parseMs("cpu time", f[c.cpu])
		if err != nil {
			return inv, err
		}
	}
	mem, err := strconv.Atoi(strings.TrimSpace(f[c.mem]))
	if err != nil || mem < 1 || mem > MaxMemoryMB {
		return inv, fmt.Errorf("memory %q: want an integer number of MB in 1..%d", f[c.mem], MaxMemoryMB)
	}
	inv.MemoryMB = mem
	inv.Function = strings.TrimSpace(f[c.fn])
	if inv.Function == "" {
		return inv, errors.New("empty function name")
	}
	return inv, nil
}

func parseMs(what, s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > MaxDurationMs {
		return 0, fmt.Errorf("%s %q: want milliseconds in 0..%d", what, s, MaxDurationMs)
	}
	return v, nil
}

// maxSeconds keeps numeric timestamps inside time.Time's comfortable range.
const maxSeconds = 1 << 40

// ParseTimestamp accepts RFC 3339 (with or without fractional seconds) or a number
// of seconds since the Unix epoch (fractions allowed; small numbers read as seconds
// since the trace start, which is the same thing counted from 1970).
func ParseTimestamp(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty timestamp")
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(v) || v < 0 || v > maxSeconds {
			return time.Time{}, fmt.Errorf("timestamp %q out of range", s)
		}
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: want RFC 3339 or seconds", s)
	}
	return t.UTC(), nil
}
