package cost

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/pricing"
)

// wellFormedXML parses a document with encoding/xml and returns the names of its elements.
func wellFormedXML(t *testing.T, data []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	names := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, data)
		}
		if se, ok := tok.(xml.StartElement); ok {
			names[se.Name.Local]++
		}
	}
}

func TestCompareChartSVG(t *testing.T) {
	cat := pricing.Default()
	cfg := articleFleet(Day)
	res, err := Compare(cat, articleWorkload("100"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteCompareChart(&b, cat, res, cfg); err != nil {
		t.Fatal(err)
	}
	names := wellFormedXML(t, b.Bytes())
	if names["svg"] != 1 || names["polyline"] != 3 || names["circle"] != 1 {
		t.Errorf("elements = %v; want one svg, three series (fleet fixed), one break-even dot", names)
	}
	s := b.String()
	for _, want := range []string{"break-even 28.98 req/s", "on-demand", "Managed Instances, 3 × m7i.large", "Provisioned Concurrency", `xmlns="http://www.w3.org/2000/svg"`} {
		if !strings.Contains(s, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// On-demand grows with the rate, the fixed fleet only by its request charge.
	c, _ := CompareChart(cat, res, cfg)
	od, fleet := c.Series[0].Points, c.Series[2].Points
	if od[0].Y != 0 || od[len(od)-1].Y <= fleet[len(fleet)-1].Y || fleet[0].Y <= 0 {
		t.Errorf("on-demand %v…%v, fleet %v…%v", od[0], od[len(od)-1], fleet[0], fleet[len(fleet)-1])
	}

	// A sized fleet adds the re-sized series.
	cfg = Config{Period: Month}
	res, err = Compare(cat, articleWorkload("100"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := WriteCompareChart(&b, cat, res, cfg); err != nil {
		t.Fatal(err)
	}
	if names := wellFormedXML(t, b.Bytes()); names["polyline"] != 4 {
		t.Errorf("sized chart has %d series, want 4", names["polyline"])
	}
}

func TestChartEscapesText(t *testing.T) {
	c := Chart{Title: `<script>&"`, Series: []Series{{Name: "a<b", Points: []Point{{0, 0}, {1, 1}}}}, Markers: []Marker{{X: 0.5, Label: "x&y"}}}
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	wellFormedXML(t, b.Bytes())
	if strings.Contains(b.String(), "<script>") {
		t.Error("title not escaped")
	}
	// Empty and degenerate charts still render.
	b.Reset()
	if err := (Chart{Series: []Series{{Name: "flat", Points: []Point{{0, 0}}}}}).WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	wellFormedXML(t, b.Bytes())
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 10, []float64{0, 2, 4, 6, 8, 10}},
		{0, 928.56, []float64{0, 200, 400, 600, 800, 1000}},
		{0, 0, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
	}
	for _, tt := range tests {
		got := niceTicks(tt.lo, tt.hi, 5)
		if len(got) != len(tt.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
			continue
		}
		for i := range got {
			if diff := got[i] - tt.want[i]; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("niceTicks(%v, %v) = %v, want %v", tt.lo, tt.hi, got, tt.want)
				break
			}
		}
	}
}

func TestHTMLReport(t *testing.T) {
	cat := pricing.Default()
	cfg := articleFleet(Month)
	res, err := Compare(cat, articleWorkload("100"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, cat, res, cfg); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"<!DOCTYPE html>", "<svg", "</svg>", "$928.56", "$306.42", "28.98", "Assumptions", "Little&#39;s law"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "<link", "src=\"http", "href=\"http"} {
		if strings.Contains(html, bad) {
			t.Errorf("report is not self-contained: has %q", bad)
		}
	}
	// The inline SVG is itself well-formed.
	start, end := strings.Index(html, "<svg"), strings.Index(html, "</svg>")
	wellFormedXML(t, []byte(html[start:end+len("</svg>")]))
	if os.Getenv("SHOAL_WRITE_REPORT") != "" {
		_ = os.WriteFile(filepath.Join(os.TempDir(), "shoal-cost.html"), b.Bytes(), 0o644)
	}
}

func TestJSONShape(t *testing.T) {
	res, err := Compare(pricing.Default(), articleWorkload("100"), articleFleet(Day))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Options []struct {
			Compute  string  `json:"compute"`
			TotalUSD float64 `json:"total_usd"`
			Items    []struct {
				Name string  `json:"name"`
				USD  float64 `json:"usd"`
			} `json:"items"`
		} `json:"options"`
		BreakEven      float64  `json:"break_even_rps"`
		Cheapest       string   `json:"cheapest"`
		Recommendation string   `json:"recommendation"`
		Assumptions    []string `json:"assumptions"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	want := map[string]float64{"on-demand": 30.53, "managed-instances": 10.07}
	for _, o := range doc.Options {
		if w, ok := want[o.Compute]; ok && o.TotalUSD != w {
			t.Errorf("%s total_usd = %v, want %v", o.Compute, o.TotalUSD, w)
		}
		if len(o.Items) == 0 {
			t.Errorf("%s has no items", o.Compute)
		}
	}
	if len(doc.Options) != 3 || doc.BreakEven != 28.98 || doc.Cheapest != "managed-instances" || doc.Recommendation == "" || len(doc.Assumptions) == 0 {
		t.Errorf("doc = %+v", doc)
	}
	// Money is printed as numbers with two decimals, not strings.
	if !strings.Contains(b.String(), `"total_usd": 30.53,`) {
		t.Errorf("total_usd not a two-decimal number:\n%s", b.String())
	}
}

func TestTableOutput(t *testing.T) {
	res, err := Compare(pricing.Default(), articleWorkload("5"), articleFleet(Day))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"$1.53", "$8.43", "break-even: 28.98 req/s", "cheapest:   on-demand", "assumptions:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestPricesOutput(t *testing.T) {
	cat := pricing.Default()
	var b bytes.Buffer
	if err := WritePricesTable(&b, cat); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{cat.Date, cat.Version, "m7i.large", "0.1008", "0.01512", "0.0000166667", "c8g.large"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("prices table lacks %q", want)
		}
	}
	b.Reset()
	if err := WritePricesJSON(&b, cat); err != nil {
		t.Fatal(err)
	}
	// The JSON listing is a valid --prices file.
	back, err := pricing.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if back.Version != cat.Version || len(back.ManagedInstances.InstanceTypes) != len(cat.ManagedInstances.InstanceTypes) {
		t.Errorf("round trip lost data")
	}
}
