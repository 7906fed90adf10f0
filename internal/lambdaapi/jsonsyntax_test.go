package lambdaapi

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// recordedPayloadErrors reads test_lambda_invoke_payload_encoding_error's
// recordings: each payload (from the scenario's parameter, Python's bytes
// notation) with the message AWS answered it with.
func recordedPayloadErrors(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(recordingsDir, "test_lambda.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Content map[string]json.RawMessage `json:"recorded-content"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`test_lambda_invoke_payload_encoding_error\[[a-z]+-(.*)\]$`)
	hexByte := regexp.MustCompile(`\\x([0-9a-f]{2})`)
	out := map[string]string{}
	for id, sc := range all {
		m := param.FindStringSubmatch(id)
		if m == nil {
			continue
		}
		payload := hexByte.ReplaceAllStringFunc(m[1], func(s string) string {
			n, _ := strconv.ParseUint(s[2:], 16, 8)
			return string([]byte{byte(n)})
		})
		for _, raw := range sc.Content {
			var step struct{ Error struct{ Message string } }
			if err := json.Unmarshal(raw, &step); err != nil {
				t.Fatal(err)
			}
			out[payload] = step.Error.Message
		}
	}
	if len(out) != 2 {
		t.Fatalf("%d recorded payload errors, want 2", len(out))
	}
	return out
}

// TestInvalidPayloadMatchesRecordings: a payload Lambda could not parse is
// refused with the message AWS answered, word for word.
func TestInvalidPayloadMatchesRecordings(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	for payload, want := range recordedPayloadErrors(t) {
		_, err := e.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(payload)})
		if got := aws.ToString(wantErr[*types.InvalidRequestContentException](t, err).Message); got != want {
			t.Errorf("payload %q:\n got %q\nwant %q", payload, got, want)
		}
	}
}

// TestJacksonSyntaxError: Jackson's wording and location for the usual
// mistakes. Only the two recorded messages above are AWS's own; these follow
// Jackson's messages for the same parser.
func TestJacksonSyntaxError(t *testing.T) {
	at := func(line, col int) string { return "\n at " + location(line, col) }
	values := "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
	cases := []struct{ name, in, want string }{
		{"object", `{"a":[1,2.5e3,"x\u00e9\n"],"b":{"c":null,"d":true,"e":false}}`, ""},
		{"white space around", " \r\n\t[ ] \n", ""},
		{"unicode in strings", `"héllo 🌊"`, ""},
		{"bare word", `hello world`, "Unrecognized token 'hello': was expecting " + values + at(1, 7)},
		{"misspelled literal", `[nul]`, "Unrecognized token 'nul': was expecting " + values + at(1, 6)},
		{"literal run on", `truex`, "Unrecognized token 'truex': was expecting " + values + at(1, 6)},
		{"single quotes", `{'a':1}`, "Unexpected character (''' (code 39)): was expecting double-quote to start field name" + at(1, 2)},
		{"unquoted key", `{a:1}`, "Unexpected character ('a' (code 97)): was expecting double-quote to start field name" + at(1, 2)},
		{"missing colon", `{"a" 1}`, "Unexpected character ('1' (code 49)): was expecting a colon to separate field name and value" + at(1, 6)},
		{"missing comma", `{"a":1 "b":2}`, "Unexpected character ('\"' (code 34)): was expecting comma to separate Object entries" + at(1, 8)},
		{"array comma", "[1\n 2]", "Unexpected character ('2' (code 50)): was expecting comma to separate Array entries" + at(2, 2)},
		{"trailing comma in object", `{"a":1,}`, "Unexpected character ('}' (code 125)): was expecting double-quote to start field name" + at(1, 8)},
		{"trailing comma in array", `[1,]`, "Unexpected character (']' (code 93)): expected a value" + at(1, 4)},
		{"missing value", `{"a":}`, "Unexpected character ('}' (code 125)): expected a value" + at(1, 6)},
		{"unclosed object", `{"a":1`, "Unexpected end-of-input: expected close marker for Object (start marker at " + location(1, 1) + ")" + at(1, 7)},
		{"unclosed nested array", `{"a":[1`, "Unexpected end-of-input: expected close marker for Array (start marker at " + location(1, 6) + ")" + at(1, 8)},
		{"end after colon", `{"a":`, "Unexpected end-of-input within/between Object entries" + at(1, 6)},
		{"wrong close", `{"a":1]`, "Unexpected close marker ']': expected '}' (for Object starting at " + location(1, 1) + ")" + at(1, 8)},
		{"close at the root", `}`, "Unexpected close marker '}': expected ']' (for root starting at " + location(1, 0) + ")" + at(1, 2)},
		{"unterminated string", `"abc`, "Unexpected end-of-input: was expecting closing quote for a String value" + at(1, 5)},
		{"newline in string", "\"a\nb\"", "Illegal unquoted character ((CTRL-CHAR, code 10)): has to be escaped using backslash to be included in string value" + at(1, 4)},
		{"bad escape", `"a\x"`, "Unrecognized character escape 'x' (code 120)" + at(1, 5)},
		{"bad unicode escape", `"\u12G4"`, "Unexpected character ('G' (code 71)): expected a hex-digit for character escape sequence" + at(1, 6)},
		{"invalid utf-8 in a string", "\"a\xff\"", "Invalid UTF-8 start byte 0xff" + at(1, 4)},
		{"bad middle byte", "\"\xc3(\"", "Invalid UTF-8 middle byte 0x28" + at(1, 4)},
		{"leading zero", `012`, "Invalid numeric value: Leading zeroes not allowed" + at(1, 2)},
		{"minus alone", `-x`, "Unexpected character ('x' (code 120)) in numeric value: expected digit (0-9) to follow minus sign, for valid numeric value" + at(1, 2)},
		{"plus sign", `+1`, "Unexpected character ('+' (code 43)) in numeric value: JSON spec does not allow numbers to have plus signs: enable `JsonReadFeature.ALLOW_LEADING_PLUS_SIGN_FOR_NUMBERS` to allow" + at(1, 1)},
		{"decimal point alone", `[1.]`, "Unexpected character (']' (code 93)) in numeric value: Decimal point not followed by a digit" + at(1, 4)},
		{"NaN", `NaN`, "Non-standard token 'NaN': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow" + at(1, 4)},
		{"comment", `// hi`, "Unexpected character ('/' (code 47)): maybe a (non-standard) comment? (not recognized as one since Feature 'ALLOW_COMMENTS' not enabled for parser)" + at(1, 1)},
		{"control character between tokens", "[1,\x01]", "Illegal character ((CTRL-CHAR, code 1)): only regular white space (\\r, \\n, \\t) is allowed between tokens" + at(1, 4)},
		{"trailing object", `{} {}`, "Trailing token (of type START_OBJECT) found after value (bound as `com.fasterxml.jackson.databind.JsonNode`): not allowed as per `DeserializationFeature.FAIL_ON_TRAILING_TOKENS`" + at(1, 5)},
		{"number then letter", `12a`, "Unexpected character ('a' (code 97)): Expected space separating root-level values" + at(1, 3)},
		{"only white space", "  ", "No content to map due to end-of-input" + at(1, 3)},
		{"nesting", strings.Repeat("[", 1001), "Document nesting depth (1001) exceeds the maximum allowed (1000, from `StreamReadConstraints.getMaxNestingDepth()`)" + at(1, 1002)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := jacksonSyntaxError([]byte(c.in)); got != c.want {
				t.Errorf("%q:\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

// FuzzJacksonSyntaxError: the reading never panics, agrees with Go's parser
// on valid UTF-8 nested no deeper than Jackson allows, and words every
// refusal with a location.
func FuzzJacksonSyntaxError(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}]}`, `"x"`, `[1.5e-3,true,false]`, `n\x87r`, "\x99", `{"a" 1}`,
		`[1,]`, `{"a":1,}`, `"\u00e9\n"`, `-0.0`, `01`, `{} x`, "\"\xc3\xa9\"", `tru`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg := jacksonSyntaxError(b)
		if msg != "" {
			if !regexp.MustCompile(`\n at \[Source: REDACTED \(` + "`" + `StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` + "`" + ` disabled\); line: \d+, column: \d+\]$`).MatchString(msg) {
				t.Fatalf("%q: message without a location: %q", b, msg)
			}
		}
		if !utf8.Valid(b) || depth(b) > jacksonMaxDepth {
			return
		}
		if valid := json.Valid(b); valid != (msg == "") {
			t.Fatalf("%q: Go's parser says valid=%v, the Jackson reading says %q", b, valid, msg)
		}
	})
}

// depth is how deep b's arrays and objects nest, strings skipped.
func depth(b []byte) int {
	d, deepest, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '[' || c == '{':
			d++
			deepest = max(deepest, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return deepest
}
