//go:build goexperiment.jsonv2

package meter

import (
	"bytes"
	"encoding/json"
	jsonv2 "encoding/json/v2"
	"testing"
	"time"
)

// BenchmarkEventJSONv2 is BenchmarkEventJSONAB's event through
// encoding/json/v2, which Go 1.25 and 1.26 build only with GOEXPERIMENT=jsonv2
// (docs/decisions/jsonenc.md):
//
//	GOEXPERIMENT=jsonv2 go test -run '^$' -bench 'EventJSON' ./internal/meter/
func BenchmarkEventJSONv2(b *testing.B) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	ev := &Event{ID: "inv-1f0c5d2e-6b1a-4c43-9e55-0f6d2c8a7b31", Kind: KindInvocation, Start: at, End: at.Add(1234567 * time.Nanosecond),
		Function: "checkout", Version: "7", Compute: ManagedInstances, Architecture: "x86_64", MemoryMB: 2048,
		CapacityProvider: "web", Instance: "i-0a1b2c3d4e5f60718", InstanceType: "m7i.large", Zone: "us-east-1a",
		RequestID: "1f0c5d2e-6b1a-4c43-9e55-0f6d2c8a7b31", DurationMs: 1.234567, CPUMs: 0.412, MaxMemoryUsedMB: 61,
		Outcome: OutcomeSuccess}
	want, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal-write-v1-options", func(b *testing.B) {
		// With encoding/json's options, the same bytes as AppendJSON.
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			_ = jsonv2.MarshalWrite(&buf, ev, json.DefaultOptionsV1())
		}
		if !bytes.Equal(buf.Bytes(), want) {
			b.Fatalf("encoding/json/v2 gives\n%s\nencoding/json\n%s", buf.Bytes(), want)
		}
	})
	b.Run("marshal-write", func(b *testing.B) {
		// v2's own options: omitempty leaves zero numbers and false in,
		// so the event is longer.
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			_ = jsonv2.MarshalWrite(&buf, ev)
		}
	})
}
