package lambdaapi

import (
	"sort"
	"strings"
	"testing"
)

// The recordings of real AWS Lambda responses (see the README beside them) are the
// oracle: the recorded scenarios (replay_test.go and the recorded_*_test.go files)
// replay them against shoal, and a few unit tests read single steps.
// They live in the repository, under testdata/aws-recordings.
const recordingsDir = "../../testdata/aws-recordings"

// recording returns one step of a recorded scenario ("Class::test[param]").
func recording(t *testing.T, test, step string) map[string]any {
	t.Helper()
	s, ok := recordedContent(t, test)[step].(map[string]any)
	if !ok {
		t.Fatalf("no step %s in %s", step, test)
	}
	return s
}

// placeholders turns a recorded message into the one shoal should send.
func placeholders(s string, extra ...string) string {
	r := strings.NewReplacer(append([]string{"<partition>", "aws", "<region>", "us-east-1", "111111111111", "123456789012"}, extra...)...)
	return r.Replace(s)
}

// keysOf returns a response's member names, without ResponseMetadata.
func keysOf(m map[string]any) []string {
	var keys []string
	for k := range m {
		if k != "ResponseMetadata" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
