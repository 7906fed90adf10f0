package replay

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestReports(t *testing.T) {
	// Two hours with a burst in the middle, so the fleet grows and shrinks.
	counts := append(append(repeat(40, 600), repeat(20, 2400)...), repeat(60, 600)...)
	s := series(time.Minute, 1024, 1000, 50, counts...)
	r := run(t, s, Config{EnvConcurrency: 8})

	var svg bytes.Buffer
	if err := WriteChart(&svg, r); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg.Bytes(), new(struct{})); err != nil {
		t.Fatalf("chart is not well-formed XML: %v", err)
	}
	for _, want := range []string{"Cumulative cost over the trace", "Managed Instances fleet over time", "managed-instances (scaler)"} {
		if !strings.Contains(svg.String(), want) {
			t.Fatalf("chart lacks %q", want)
		}
	}
	if strings.Contains(svg.String(), "<?xml") || strings.Contains(svg.String(), "<script") {
		t.Fatal("chart cannot be inlined in HTML")
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Trace   JSONTrace
		Options []struct{ Compute string }
		Series  []JSONPoint
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Options) != 4 || len(doc.Series) != 120 || doc.Trace.Invocations != s.Total() {
		t.Fatalf("json: %d options, %d points, %d invocations", len(doc.Options), len(doc.Series), doc.Trace.Invocations)
	}
	peak := 0
	for _, p := range doc.Series {
		peak = max(peak, p.Instances)
	}
	if peak <= 3 || doc.Series[len(doc.Series)-1].Instances >= peak {
		t.Fatalf("fleet in the series: peak %d, last %d; want growth and shrinkage", peak, doc.Series[len(doc.Series)-1].Instances)
	}

	var html, table bytes.Buffer
	if err := WriteHTML(&html, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<svg") || !strings.Contains(html.String(), "Assumptions") {
		t.Fatal("html report lacks its chart or assumptions")
	}
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"COLD STARTS", "THROTTLES", "hybrid", "assumptions:"} {
		if !strings.Contains(table.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, table.String())
		}
	}
}
