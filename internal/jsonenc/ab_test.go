package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
)

// BenchmarkAppendStringAB sets AppendString beside encoding/json for the
// strings shoal writes on the invoke path: a usage event's ids and names,
// and a platform log record's fields (docs/decisions/jsonenc.md). Run:
//
//	go test -run '^$' -bench AppendStringAB -count 5 ./internal/jsonenc/
func BenchmarkAppendStringAB(b *testing.B) {
	for _, tc := range []struct{ name, s string }{
		{"id", "1f0c5d2e-6b1a-4c43-9e55-0f6d2c8a7b31"},
		{"log-line", "2026-11-26T10:00:00.123Z\t1f0c5d2e-6b1a-4c43-9e55-0f6d2c8a7b31\tINFO\tcharged \"order 1234\" for 3 items, café\n"},
	} {
		b.Run("jsonenc/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for b.Loop() {
				buf = AppendString(buf[:0], tc.s)
			}
		})
		b.Run("encoding-json/"+tc.name, func(b *testing.B) {
			// A reused encoder without HTML escaping: the closest
			// encoding/json comes to AppendString.
			b.ReportAllocs()
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			for b.Loop() {
				buf.Reset()
				_ = enc.Encode(tc.s)
			}
		})
	}
}
