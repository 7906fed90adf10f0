package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runShoal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

type compareDoc struct {
	Options []struct {
		Compute      string  `json:"compute"`
		TotalUSD     float64 `json:"total_usd"`
		InstanceType string  `json:"instance_type"`
		Instances    int     `json:"instances"`
		Items        []struct {
			Name string  `json:"name"`
			USD  float64 `json:"usd"`
		} `json:"items"`
	} `json:"options"`
	BreakEvenRPS   *float64 `json:"break_even_rps"`
	Cheapest       string   `json:"cheapest"`
	Recommendation string   `json:"recommendation"`
	Assumptions    []string `json:"assumptions"`
}

func (d compareDoc) total(c string) float64 {
	for _, o := range d.Options {
		if o.Compute == c {
			return o.TotalUSD
		}
	}
	return -1
}

func TestCostCompareArticleJSON(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		onDemand  float64
		managed   float64
		breakEven float64
		cheapest  string
	}{
		{"100 req/s per day", []string{"--rate", "100", "--period", "day"}, 30.53, 10.07, 28.98, "managed-instances"},
		{"100 req/s per month", []string{"--rate", "100", "--period", "month"}, 928.56, 306.42, 28.98, "managed-instances"},
		{"5 req/s per day", []string{"--rate", "5", "--period", "day"}, 1.53, 8.43, 28.98, "on-demand"},
		{"requests per period", []string{"--requests", "8640000", "--period", "24h"}, 30.53, 10.07, 28.98, "managed-instances"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"cost", "compare", "--duration", "200ms", "--memory", "1024", "--arch", "x86_64",
				"--instance-type", "m7i.large", "--instances", "3", "-o", "json"}, tt.args...)
			out, errs, code := runShoal(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var doc compareDoc
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := doc.total("on-demand"); got != tt.onDemand {
				t.Errorf("on-demand = %v, want %v", got, tt.onDemand)
			}
			if got := doc.total("managed-instances"); got != tt.managed {
				t.Errorf("managed-instances = %v, want %v", got, tt.managed)
			}
			if doc.total("provisioned-concurrency") <= 0 {
				t.Error("no provisioned-concurrency option")
			}
			if doc.BreakEvenRPS == nil || *doc.BreakEvenRPS != tt.breakEven {
				t.Errorf("break_even_rps = %v, want %v", doc.BreakEvenRPS, tt.breakEven)
			}
			if doc.Cheapest != tt.cheapest || doc.Recommendation == "" || len(doc.Assumptions) == 0 {
				t.Errorf("cheapest %q, recommendation %q, %d assumptions", doc.Cheapest, doc.Recommendation, len(doc.Assumptions))
			}
		})
	}
}

func TestCostCompareTableChartAndHTML(t *testing.T) {
	dir := t.TempDir()
	chart := filepath.Join(dir, "cost.svg")
	out, errs, code := runShoal(t, "cost", "compare", "--rate", "100", "--duration", "200ms", "--cpu-time", "15ms",
		"--instance-type", "m7i.large", "--period", "month", "--chart", chart)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"$928.56", "$306.42", "3 × m7i.large", "break-even: 28.98 req/s", "assumptions:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" || !bytes.Contains(data, []byte("break-even 28.98 req/s")) {
		t.Errorf("chart root %q, break-even marked: %v", root, bytes.Contains(data, []byte("break-even")))
	}

	out, errs, code = runShoal(t, "cost", "compare", "--rate", "100", "--duration", "200ms", "-o", "html")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, "<svg") || strings.Contains(out, "<script") {
		t.Errorf("html report:\n%.400s", out)
	}
}

func TestCostCompareSavingsPlanFreeTierArm(t *testing.T) {
	out, errs, code := runShoal(t, "cost", "compare", "--rate", "100", "--duration", "200ms", "--instance-type", "m7i.large",
		"--instances", "3", "--savings-plan", "30%", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc compareDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.total("managed-instances"); got != 240.20 {
		t.Errorf("with a 30%% savings plan = %v, want 240.20", got)
	}
	out, _, code = runShoal(t, "cost", "compare", "--rate", "5", "--duration", "200ms", "--free-tier", "-o", "json")
	if code != 0 {
		t.Fatal("free tier run failed")
	}
	doc = compareDoc{}
	_ = json.Unmarshal([]byte(out), &doc)
	if got := doc.total("on-demand"); got != 39.56 {
		t.Errorf("5 req/s with free tier = %v, want 39.56", got)
	}
	out, _, code = runShoal(t, "cost", "compare", "--rate", "5", "--duration", "200ms", "--arch", "arm64", "--runtime", "python3.13", "-o", "json")
	if code != 0 {
		t.Fatal("arm64 run failed")
	}
	doc = compareDoc{}
	_ = json.Unmarshal([]byte(out), &doc)
	for _, o := range doc.Options {
		if o.Compute == "managed-instances" && !strings.Contains(o.InstanceType, "g.") {
			t.Errorf("arm64 fleet on %s", o.InstanceType)
		}
	}
}

func TestCostCompareErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no traffic", []string{"--duration", "200ms"}, "--rate"},
		{"both", []string{"--rate", "1", "--requests", "5", "--duration", "200ms"}, "not both"},
		{"no duration", []string{"--rate", "1"}, "--duration"},
		{"bad arch", []string{"--rate", "1", "--duration", "1s", "--arch", "sparc"}, "--arch"},
		{"bad period", []string{"--rate", "1", "--duration", "1s", "--period", "fortnight"}, "--period"},
		{"bad savings plan", []string{"--rate", "1", "--duration", "1s", "--savings-plan", "120%"}, "--savings-plan"},
		{"bad output", []string{"--rate", "1", "--duration", "1s", "-o", "xml"}, "--output"},
		{"unknown type", []string{"--rate", "1", "--duration", "1s", "--instance-type", "t3.nano"}, "t3.nano"},
		{"bad runtime", []string{"--rate", "1", "--duration", "1s", "--runtime", "cobol"}, "--runtime"},
		{"missing prices", []string{"--rate", "1", "--duration", "1s", "--prices", "/nonexistent/prices.json"}, "price catalogue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := runShoal(t, append([]string{"cost", "compare"}, tt.args...)...)
			if code == 0 || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want an error mentioning %q", code, errs, tt.want)
			}
		})
	}
}

func TestCostPrices(t *testing.T) {
	out, errs, code := runShoal(t, "cost", "prices")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"dated", "m7i.large", "0.1008", "0.0000166667"} {
		if !strings.Contains(out, want) {
			t.Errorf("prices table lacks %q", want)
		}
	}
	out, errs, code = runShoal(t, "cost", "prices", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["date"] == "" || doc["version"] == "" {
		t.Errorf("prices json lacks its date: %v", doc["date"])
	}

	// The JSON listing, edited, is a --prices override: double m7i.large and the MI bill follows.
	edited := strings.Replace(out, `"on_demand_hourly": "0.1008"`, `"on_demand_hourly": "0.2016"`, 1)
	edited = strings.Replace(edited, `"version": "`, `"version": "edited-`, 1)
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = runShoal(t, "cost", "compare", "--rate", "100", "--duration", "200ms", "--instance-type", "m7i.large",
		"--instances", "3", "--period", "day", "--prices", path, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var cd compareDoc
	_ = json.Unmarshal([]byte(out), &cd)
	// 3 × 0.2016 × 24 × 1.15 + 1.728 = 18.42048
	if got := cd.total("managed-instances"); got != 18.42 {
		t.Errorf("with doubled m7i.large = %v, want 18.42", got)
	}
	out, _, _ = runShoal(t, "cost", "prices", "--prices", path)
	if !strings.Contains(out, "edited-") {
		t.Error("prices --prices does not list the override")
	}
	if _, errs, code := runShoal(t, "cost", "prices", "-o", "yaml"); code == 0 || !strings.Contains(errs, "--output") {
		t.Errorf("bad output accepted: %q", errs)
	}
}
