package asyncq

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The records Lambda sent to destinations, as recorded from AWS by
// LocalStack's test_lambda_destinations (testdata/aws-recordings).
func recordedBodies(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "aws-recordings", "test_lambda_destinations.snapshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]struct {
		Content map[string]any `json:"recorded-content"`
	}
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for id, sc := range all {
		id = id[strings.Index(id, "::")+2:]
		for step, v := range sc.Content {
			var body any
			switch m := v.(type) {
			case map[string]any:
				if msgs, ok := m["Messages"].([]any); ok && len(msgs) > 0 {
					body = msgs[0].(map[string]any)["Body"]
				} else if bd, ok := m["Body"]; ok {
					body = bd
				} else if d, ok := m["detail"]; ok {
					body = d
				}
			}
			if rec, ok := body.(map[string]any); ok && rec["version"] == "1.0" {
				out[id+" "+step] = rec
			}
		}
	}
	return out
}

var (
	recordTimeRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	placeholderRE = regexp.MustCompile(`<[^<>]+>`)
)

// matchRecord compares a record shoal built with one AWS sent: the same
// members at every level, the same values where the recording keeps them, a
// timestamp of Lambda's form where it shows "date", and any value where it
// shows a placeholder.
func matchRecord(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: AWS has an object, shoal %v", path, got)}
		}
		var diffs []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s.%s: AWS has %v, shoal nothing", path, k, wv))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s.%s: shoal has %v, AWS nothing", path, k, gv))
			default:
				diffs = append(diffs, matchRecord(path+"."+k, wv, gv)...)
			}
		}
		return diffs
	case string:
		g, ok := got.(string)
		switch {
		case !ok:
			return []string{fmt.Sprintf("%s: AWS %q, shoal %v", path, w, got)}
		case w == "date":
			if !recordTimeRE.MatchString(g) {
				return []string{fmt.Sprintf("%s: %q is not Lambda's timestamp", path, g)}
			}
		case placeholderRE.MatchString(w):
			pat := "^" + placeholderRE.ReplaceAllString(regexp.QuoteMeta(w), ".+") + "$"
			if !regexp.MustCompile(pat).MatchString(g) {
				return []string{fmt.Sprintf("%s: AWS %q, shoal %q", path, w, g)}
			}
		case w != g:
			return []string{fmt.Sprintf("%s: AWS %q, shoal %q", path, w, g)}
		}
		return nil
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return []string{fmt.Sprintf("%s: AWS %v, shoal %v", path, want, got)}
		}
		return nil
	}
}

// TestRecordsAsAWSSendsThem builds the record of each recorded case from what
// that case's function was sent and answered, and compares it with the one
// AWS sent, field for field.
func TestRecordsAsAWSSendsThem(t *testing.T) {
	recorded := recordedBodies(t)
	if len(recorded) < 7 {
		t.Fatalf("only %d recorded records", len(recorded))
	}
	for id, want := range recorded {
		t.Run(id, func(t *testing.T) {
			rc := want["requestContext"].(map[string]any)
			reqPayload, _ := json.Marshal(want["requestPayload"])
			var last *Response
			if respCtx, ok := want["responseContext"].(map[string]any); ok {
				respPayload, _ := json.Marshal(want["responsePayload"])
				fe, _ := respCtx["functionError"].(string)
				last = &Response{FunctionARN: "arn:aws:lambda:us-east-1:111111111111:function:fn:$LATEST",
					ExecutedVersion: respCtx["executedVersion"].(string), FunctionError: fe, Payload: respPayload}
			}
			rec := newRecord(time.Now(), "2f6e4a0c-1d2b-4c3d-8e9f-0a1b2c3d4e5f", "arn:aws:lambda:us-east-1:111111111111:function:fn:$LATEST",
				rc["condition"].(string), int(rc["approximateInvokeCount"].(float64)), reqPayload, last)
			var got map[string]any
			if err := json.Unmarshal(mustJSON(rec), &got); err != nil {
				t.Fatal(err)
			}
			for _, d := range matchRecord("record", want, got) {
				t.Error(d)
			}
		})
	}
}

func TestRecordKeepsAnyAnswer(t *testing.T) {
	for _, c := range []struct{ payload, want string }{
		{`{"a":1}`, `{"a":1}`},
		{`not json`, `"not json"`},
		{``, `null`},
		{`"text"`, `"text"`},
	} {
		rec := newRecord(time.Unix(0, 0), "id", "arn", ConditionSuccess, 1, []byte(`{}`), &Response{Payload: []byte(c.payload)})
		if string(rec.ResponsePayload) != c.want {
			t.Errorf("answer %q: responsePayload %s, want %s", c.payload, rec.ResponsePayload, c.want)
		}
		if !json.Valid(mustJSON(rec)) {
			t.Errorf("answer %q: the record is not JSON", c.payload)
		}
	}
}
