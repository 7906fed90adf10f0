package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTrace writes a CSV trace: 10 minutes of 600 invocations a minute of
// 1 s at 1024 MB (10 in flight), then 10 minutes at three times the rate.
func writeTrace(t *testing.T) (path string, total int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("timestamp,duration_ms,cpu_ms,memory_mb,function\n")
	for m := 0; m < 20; m++ {
		n := 600
		if m >= 10 {
			n = 1800
		}
		for k := 0; k < n; k++ {
			fmt.Fprintf(&b, "%.3f,1000,20,1024,api\n", float64(m*60)+float64(k)*60/float64(n))
			total++
		}
	}
	path = filepath.Join(t.TempDir(), "trace.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, total
}

type replayJSON struct {
	Trace struct {
		Invocations uint64 `json:"invocations"`
		Steps       int    `json:"steps"`
		Step        string `json:"step"`
	} `json:"trace"`
	Options []struct {
		Compute     string  `json:"compute"`
		TotalUSD    float64 `json:"total_usd"`
		Invocations uint64  `json:"invocations"`
		Throttles   uint64  `json:"throttles"`
		ColdStarts  uint64  `json:"cold_starts"`
		SpillOvers  uint64  `json:"spill_overs"`
		Items       []struct {
			Name string  `json:"name"`
			USD  float64 `json:"usd"`
		} `json:"items"`
		PeakInstances int `json:"peak_instances"`
	} `json:"options"`
	Cheapest string `json:"cheapest"`
	Series   []struct {
		Invocations uint64             `json:"invocations"`
		CostUSD     map[string]float64 `json:"cost_usd"`
	} `json:"series"`
	Assumptions []string `json:"assumptions"`
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestCostReplayJSON(t *testing.T) {
	path, total := writeTrace(t)
	chart := filepath.Join(t.TempDir(), "replay.svg")
	out, errOut, code := runCLI(t, "cost", "replay", "--trace", path, "-o", "json", "--chart", chart, "--runtime", "provided.al2023")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if errOut != "" {
		t.Fatalf("stderr without a terminal or --progress: %q", errOut)
	}
	_, errOut, code = runCLI(t, "cost", "replay", "--trace", path, "-o", "json", "--progress", "--step", "1s")
	if code != 0 || !strings.Contains(errOut, "reading trace") || !strings.Contains(errOut, "replaying") {
		t.Fatalf("--progress: exit %d, stderr %q; want bars for reading and replaying", code, errOut)
	}
	var r replayJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if r.Trace.Invocations != uint64(total) || r.Trace.Steps != 20 || r.Trace.Step != "1m0s" {
		t.Fatalf("trace %+v; want %d invocations in 20 one-minute steps", r.Trace, total)
	}
	want := []string{"on-demand", "provisioned-concurrency", "managed-instances", "hybrid"}
	if len(r.Options) != len(want) {
		t.Fatalf("%d options", len(r.Options))
	}
	for i, o := range r.Options {
		if o.Compute != want[i] {
			t.Fatalf("option %d is %s; want %s", i, o.Compute, want[i])
		}
		if o.Invocations+o.Throttles != uint64(total) || o.TotalUSD <= 0 || len(o.Items) == 0 {
			t.Fatalf("%s: %+v", o.Compute, o)
		}
	}
	od, mi := r.Options[0], r.Options[2]
	// 10 environments start cold, and 20 more when the rate triples.
	if od.ColdStarts != 30 || od.Throttles != 0 {
		t.Fatalf("on-demand: %d cold starts, %d throttles; want 30 and 0", od.ColdStarts, od.Throttles)
	}
	// provided: 8 slots per environment; 10 in flight keep the minimum 3 (24 slots),
	// the threefold step outruns the fleet's headroom.
	if mi.Throttles == 0 || mi.PeakInstances < 3 {
		t.Fatalf("managed: %d throttles, %d instances; want throttles after the 3x step", mi.Throttles, mi.PeakInstances)
	}
	var n uint64
	for _, p := range r.Series {
		n += p.Invocations
	}
	if n != uint64(total) || len(r.Assumptions) == 0 {
		t.Fatalf("series holds %d invocations; %d assumptions", n, len(r.Assumptions))
	}
	svg, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil || !bytes.Contains(svg, []byte("Managed Instances fleet over time")) {
		t.Fatalf("chart is not the replay's SVG: %v", err)
	}
}

func TestCostReplayAzureAndFormats(t *testing.T) {
	dir := "../../data/traces/azure2019_top10_24h"
	out, errOut, code := runCLI(t, "cost", "replay", "--trace", filepath.Join(dir, "invocations.csv"), "--function", "9d133e10", "-o", "json", "--progress")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r replayJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Trace.Invocations != 900_001 { // the README's count for 9d133e10
		t.Fatalf("%d invocations", r.Trace.Invocations)
	}
	if !strings.Contains(errOut, "replaying") {
		t.Fatalf("--progress drew no bar on stderr: %q", errOut)
	}
	out, errOut, code = runCLI(t, "cost", "replay", "--trace", dir, "--function", "9d133e10", "-o", "html")
	if code != 0 || !strings.Contains(out, "<svg") || !strings.Contains(out, "Cumulative cost") {
		t.Fatalf("html: exit %d %s", code, errOut)
	}
	out, _, code = runCLI(t, "cost", "replay", "--trace", dir, "--function", "9d133e10", "--savings-plan", "30%", "--free-tier")
	if code != 0 || !strings.Contains(out, "managed-instances") || !strings.Contains(out, "30% off EC2") || !strings.Contains(out, "after free tier") {
		t.Fatalf("table: exit %d\n%s", code, out)
	}
}

func TestCostReplayErrors(t *testing.T) {
	path, _ := writeTrace(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no trace", []string{}, "--trace is required"},
		{"missing file", []string{"--trace", "/no/such/trace.csv"}, "open trace"},
		{"bad output", []string{"--trace", path, "-o", "yaml"}, "--output"},
		{"bad format", []string{"--trace", path, "--format", "parquet"}, "--format"},
		{"azure format on csv", []string{"--trace", path, "--format", "azure"}, "durations"},
		{"unknown function", []string{"--trace", path, "--function", "nope"}, "not in the trace"},
		{"bad mode", []string{"--trace", path, "--scaling-mode", "sometimes"}, "--scaling-mode"},
		{"arch mismatch", []string{"--trace", path, "--instance-type", "m7g.large"}, "arm64"},
		{"savings plan", []string{"--trace", path, "--savings-plan", "120%"}, "--savings-plan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, append([]string{"cost", "replay"}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want an error mentioning %q", code, errOut, tc.want)
			}
		})
	}
}
