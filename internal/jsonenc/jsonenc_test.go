package jsonenc

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// AppendString decodes as what it was given, and as encoding/json's
// encoding of it decodes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c", "tab\tnl\n\x00\x1f", "é€😀", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes as %s: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("%q round-trips as %q", s, got)
		}
		want, _ := json.Marshal(s)
		var viaStd string
		_ = json.Unmarshal(want, &viaStd)
		if got != viaStd {
			t.Fatalf("%q decodes as %q, encoding/json's as %q", s, got, viaStd)
		}
	})
}
