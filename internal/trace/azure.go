package trace

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AzureEpoch is the instant minute 0 of an Azure Functions 2019 trace is placed
// at. The files do not record the day (the data is from July 2019); minute labels
// count from it, so label 480 is 08:00 of that day.
var AzureEpoch = time.Date(2019, 7, 1, 0, 0, 0, 0, time.UTC)

// AzureKey identifies a function in the Azure trace.
type AzureKey struct {
	Owner, App, Function string
}

// AzureDuration is a row of the durations file: daily execution-time statistics in
// milliseconds (cold start excluded). The percentiles are of 30-second averages.
type AzureDuration struct {
	AverageMs, MinimumMs, MaximumMs float64
	Count                           int64
	// Percentiles 0, 1, 25, 50, 75, 99 and 100.
	P0, P1, P25, P50, P75, P99, P100 float64
}

// AzureMemory is a row of the memory file: MB of memory the app allocated,
// averaged per minute over the day, with percentiles.
type AzureMemory struct {
	SampleCount                           int64
	AverageMB                             float64
	P1, P5, P25, P50, P75, P95, P99, P100 float64
}

// AzureFunction is one function of the trace with its per-minute invocation counts.
type AzureFunction struct {
	AzureKey
	Trigger string
	// Counts holds the invocations completed in each minute, from the trace's first minute.
	Counts []uint32
	// Duration and Memory are nil when their file has no row for the function.
	Duration *AzureDuration
	Memory   *AzureMemory
}

// Total is the number of invocations of f over the trace.
func (f *AzureFunction) Total() uint64 {
	var n uint64
	for _, c := range f.Counts {
		n += uint64(c)
	}
	return n
}

// MemoryMB maps the function's used memory to a Lambda memory setting: the 99th
// percentile of allocated memory rounded up to the next 128 MB, at least 128 MB.
// It returns 0 when the trace has no memory row for the function.
func (f *AzureFunction) MemoryMB() int {
	if f.Memory == nil {
		return 0
	}
	mb := f.Memory.P99
	if mb <= 0 {
		mb = f.Memory.AverageMB
	}
	steps := int(math.Ceil(mb / 128))
	if steps < 1 {
		steps = 1
	}
	if steps*128 > MaxMemoryMB {
		return MaxMemoryMB
	}
	return steps * 128
}

// Azure is a parsed Azure Functions 2019 trace.
type Azure struct {
	// FirstMinute is the label of the first minute column (480 for a window that
	// starts at 08:00, 1 for a full day labelled 1..1440).
	FirstMinute int
	Minutes     int
	Functions   []AzureFunction
}

// Start is the instant of the trace's first minute.
func (a *Azure) Start() time.Time {
	return AzureEpoch.Add(time.Duration(a.FirstMinute) * time.Minute)
}

// Total is the number of invocations in the trace.
func (a *Azure) Total() uint64 {
	var n uint64
	for i := range a.Functions {
		n += a.Functions[i].Total()
	}
	return n
}

// MaxAzureMinutes bounds the minute columns of one file (two weeks).
const MaxAzureMinutes = 14 * 1440

// ParseAzureInvocations reads an invocations file:
// HashOwner,HashApp,HashFunction,Trigger,<minute>,<minute>,… with consecutive
// integer minute labels and a non-negative integer count per minute.
func ParseAzureInvocations(r io.Reader) (*Azure, error) {
	cr := newCSVReader(r)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("azure invocations header: %w", noEOF(err))
	}
	idx, err := columnIndex(head, "HashOwner", "HashApp", "HashFunction", "Trigger")
	if err != nil {
		return nil, fmt.Errorf("azure invocations header: %w", err)
	}
	if idx[0] != 0 || idx[1] != 1 || idx[2] != 2 || idx[3] != 3 {
		return nil, errors.New("azure invocations header: want HashOwner,HashApp,HashFunction,Trigger first")
	}
	minutes := head[4:]
	if len(minutes) == 0 || len(minutes) > MaxAzureMinutes {
		return nil, fmt.Errorf("azure invocations header: want 1..%d minute columns, got %d", MaxAzureMinutes, len(minutes))
	}
	a := &Azure{Minutes: len(minutes)}
	for i, m := range minutes {
		v, err := strconv.Atoi(strings.TrimSpace(m))
		if err != nil || v < 0 || v > MaxAzureMinutes {
			return nil, fmt.Errorf("azure invocations header: minute label %q is not a minute number", m)
		}
		if i == 0 {
			a.FirstMinute = v
		} else if v != a.FirstMinute+i {
			return nil, fmt.Errorf("azure invocations header: minute labels not consecutive at %q", m)
		}
	}
	seen := map[AzureKey]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("azure invocations: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(head) {
			return nil, fmt.Errorf("azure invocations line %d: want %d fields, got %d", line, len(head), len(rec))
		}
		f := AzureFunction{
			AzureKey: AzureKey{Owner: rec[0], App: rec[1], Function: rec[2]},
			Trigger:  rec[3],
			Counts:   make([]uint32, len(minutes)),
		}
		if f.Function == "" {
			return nil, fmt.Errorf("azure invocations line %d: empty HashFunction", line)
		}
		if seen[f.AzureKey] {
			return nil, fmt.Errorf("azure invocations line %d: function %s listed twice", line, f.Function)
		}
		seen[f.AzureKey] = true
		for i, s := range rec[4:] {
			v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
			if err != nil {
				return nil, fmt.Errorf("azure invocations line %d minute %d: count %q: want a non-negative integer", line, a.FirstMinute+i, s)
			}
			f.Counts[i] = uint32(v)
		}
		a.Functions = append(a.Functions, f)
	}
	return a, nil
}

// ParseAzureDurations reads a durations file and returns its rows by function.
func ParseAzureDurations(r io.Reader) (map[AzureKey]AzureDuration, error) {
	cols := []string{"HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum", "Maximum",
		"percentile_Average_0", "percentile_Average_1", "percentile_Average_25", "percentile_Average_50",
		"percentile_Average_75", "percentile_Average_99", "percentile_Average_100"}
	out := map[AzureKey]AzureDuration{}
	err := readKeyed(r, "azure durations", cols, func(k AzureKey, v []float64) error {
		if v[1] != math.Trunc(v[1]) {
			return fmt.Errorf("column Count: %v is not an integer", v[1])
		}
		out[k] = AzureDuration{AverageMs: v[0], Count: int64(v[1]), MinimumMs: v[2], MaximumMs: v[3],
			P0: v[4], P1: v[5], P25: v[6], P50: v[7], P75: v[8], P99: v[9], P100: v[10]}
		return nil
	})
	return out, err
}

// ParseAzureMemory reads a memory file and returns its rows by function. The key
// columns may come in any order (the files in circulation differ).
func ParseAzureMemory(r io.Reader) (map[AzureKey]AzureMemory, error) {
	cols := []string{"HashOwner", "HashApp", "HashFunction", "SampleCount", "AverageAllocatedMb",
		"AverageAllocatedMb_pct1", "AverageAllocatedMb_pct5", "AverageAllocatedMb_pct25", "AverageAllocatedMb_pct50",
		"AverageAllocatedMb_pct75", "AverageAllocatedMb_pct95", "AverageAllocatedMb_pct99", "AverageAllocatedMb_pct100"}
	out := map[AzureKey]AzureMemory{}
	err := readKeyed(r, "azure memory", cols, func(k AzureKey, v []float64) error {
		if v[0] != math.Trunc(v[0]) {
			return fmt.Errorf("SampleCount %v is not an integer", v[0])
		}
		out[k] = AzureMemory{SampleCount: int64(v[0]), AverageMB: v[1], P1: v[2], P5: v[3], P25: v[4],
			P50: v[5], P75: v[6], P95: v[7], P99: v[8], P100: v[9]}
		return nil
	})
	return out, err
}

// readKeyed reads a CSV whose first three wanted columns are the key and the rest
// non-negative finite numbers, calling fn for each row.
func readKeyed(r io.Reader, what string, want []string, fn func(AzureKey, []float64) error) error {
	cr := newCSVReader(r)
	head, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s header: %w", what, noEOF(err))
	}
	idx, err := columnIndex(head, want...)
	if err != nil {
		return fmt.Errorf("%s header: %w", what, err)
	}
	vals := make([]float64, len(want)-3)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(head) {
			return fmt.Errorf("%s line %d: want %d fields, got %d", what, line, len(head), len(rec))
		}
		k := AzureKey{Owner: rec[idx[0]], App: rec[idx[1]], Function: rec[idx[2]]}
		if k.Function == "" {
			return fmt.Errorf("%s line %d: empty HashFunction", what, line)
		}
		for i := range vals {
			s := strings.TrimSpace(rec[idx[i+3]])
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return fmt.Errorf("%s line %d: %s %q: want a non-negative number", what, line, want[i+3], s)
			}
			vals[i] = v
		}
		if err := fn(k, vals); err != nil {
			return fmt.Errorf("%s line %d: %w", what, line, err)
		}
	}
}

func newCSVReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	return cr
}

func noEOF(err error) error {
	if err == io.EOF {
		return errors.New("empty file")
	}
	return err
}

func columnIndex(head []string, names ...string) ([]int, error) {
	pos := make(map[string]int, len(head))
	for i, h := range head {
		pos[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	idx := make([]int, len(names))
	for i, n := range names {
		p, ok := pos[n]
		if !ok {
			return nil, fmt.Errorf("missing column %s", n)
		}
		idx[i] = p
	}
	return idx, nil
}

// LoadAzure reads an Azure Functions 2019 trace from its three files. path is the
// folder that holds invocations.csv, durations.csv and memory.csv, or the
// invocations file itself with the other two beside it (names that swap
// "invocations" for "durations" and "memory" are tried first, then the plain
// names). The durations file is required; the memory file is optional.
func LoadAzure(path string) (*Azure, error) {
	inv, dur, mem, err := azurePaths(path)
	if err != nil {
		return nil, err
	}
	a, err := parseFile(inv, ParseAzureInvocations)
	if err != nil {
		return nil, err
	}
	durs, err := parseFile(dur, ParseAzureDurations)
	if err != nil {
		return nil, err
	}
	var mems map[AzureKey]AzureMemory
	if mem != "" {
		if mems, err = parseFile(mem, ParseAzureMemory); err != nil {
			return nil, err
		}
	}
	a.Attach(durs, mems)
	return a, nil
}

// Attach joins duration and memory rows to the trace's functions by key.
func (a *Azure) Attach(durs map[AzureKey]AzureDuration, mems map[AzureKey]AzureMemory) {
	for i := range a.Functions {
		f := &a.Functions[i]
		if d, ok := durs[f.AzureKey]; ok {
			f.Duration = &d
		}
		if m, ok := mems[f.AzureKey]; ok {
			f.Memory = &m
		}
	}
}

func parseFile[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("open trace: %w", err)
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func azurePaths(path string) (inv, dur, mem string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", "", fmt.Errorf("open trace: %w", err)
	}
	dir, base := path, "invocations.csv"
	if !st.IsDir() {
		dir, base = filepath.Dir(path), filepath.Base(path)
	}
	inv = filepath.Join(dir, base)
	pick := func(word string) string {
		cands := []string{}
		if strings.Contains(base, "invocations") {
			cands = append(cands, filepath.Join(dir, strings.Replace(base, "invocations", word, 1)))
		}
		cands = append(cands, filepath.Join(dir, word+".csv"))
		for _, c := range cands {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		return ""
	}
	dur, mem = pick("durations"), pick("memory")
	if dur == "" {
		return "", "", "", fmt.Errorf("azure trace %s: no durations file beside it", path)
	}
	return inv, dur, mem, nil
}
