package meter

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkEventJSONAB sets AppendJSON (reflection-free, internal/jsonenc for
// strings) beside encoding/json for the event every answered invocation
// journals (docs/decisions/jsonenc.md). Run:
//
//	go test -run '^$' -bench EventJSONAB -count 5 ./internal/meter/
func BenchmarkEventJSONAB(b *testing.B) {
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
	b.Run("appendjson", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = AppendJSON(buf[:0], ev)
		}
		if !bytes.Equal(buf, want) {
			b.Fatalf("AppendJSON gives\n%s\nencoding/json\n%s", buf, want)
		}
	})
	b.Run("encoding-json-marshal", func(b *testing.B) {
		b.ReportAllocs()
		var out []byte
		for b.Loop() {
			out, _ = json.Marshal(ev)
		}
		if !bytes.Equal(out, want) {
			b.Fatal("not the same bytes")
		}
	})
	b.Run("encoding-json-encoder", func(b *testing.B) {
		// A reused buffer and encoder, as the journal would hold one.
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			_ = enc.Encode(ev)
		}
		if !bytes.Equal(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), want) {
			b.Fatal("not the same bytes")
		}
	})
}
