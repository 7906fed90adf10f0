package asyncq

import (
	"regexp"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	const region, account = "us-east-1", "123456789012"
	cases := []struct {
		arn  string
		want Target
	}{
		{"arn:aws:lambda:us-east-1:123456789012:function:other", Target{Kind: TargetFunction, Function: "other"}},
		{"arn:aws:lambda:us-east-1:123456789012:function:other:prod", Target{Kind: TargetFunction, Function: "other", Qualifier: "prod"}},
		{"arn:aws:lambda:us-east-1:123456789012:function:other:$LATEST", Target{Kind: TargetFunction, Function: "other", Qualifier: "$LATEST"}},
		{"arn:aws:lambda:eu-west-1:123456789012:function:other", Target{Kind: TargetInvalid}},
		{"arn:aws:lambda:us-east-1:111111111111:function:other", Target{Kind: TargetInvalid}},
		{"arn:aws:lambda:us-east-1:123456789012:layer:x", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:123456789012:lambda.orders.failed", Target{Kind: TargetSubject, Subject: "lambda.orders.failed"}},
		{"arn:aws:nats:us-east-1:123456789012:lambda.x", Target{Kind: TargetSubject, Subject: "lambda.x"}},
		{"arn:aws:nats:us-east-1:123456789012:orders.failed", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:123456789012:shoal.agent.i-1.cmd", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:123456789012:lambda.>", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:123456789012:lambda.*.x", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:123456789012:lambda..x", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:123456789012:lambda.", Target{Kind: TargetInvalid}},
		{"arn:aws:nats:us-east-1:999999999999:lambda.x", Target{Kind: TargetInvalid}},
		{"arn:aws:sqs:us-east-1:123456789012:queue", Target{Kind: TargetOtherService}},
		{"arn:aws:sns:us-east-1:123456789012:topic", Target{Kind: TargetOtherService}},
		{"arn:aws:events:us-east-1:123456789012:event-bus/default", Target{Kind: TargetOtherService}},
		{"arn:aws:iam:us-east-1:123456789012:function:x", Target{Kind: TargetInvalid}},
		{"not an arn", Target{Kind: TargetInvalid}},
	}
	for _, c := range cases {
		t.Run(c.arn, func(t *testing.T) {
			c.want.ARN = c.arn
			if got := ParseTarget(c.arn, region, account); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDestinationPattern(t *testing.T) {
	for arn, want := range map[string]bool{
		"": true,
		"arn:aws:nats:us-east-1:123456789012:lambda.orders.failed": true,
		"arn:aws:lambda:us-east-1:123456789012:function:f":         true,
		"arn:aws:_-/!lambda:us-east-1:123456789012:function:f":     false,
		"kafka://broker-1":                                           true,
		"arn:aws:sqs::123456789012:q":                                true,
		"arn:aws:lambda:us-east-1:12345678901:function:f":            false,
		"arn:aws:lambda:not-a-region-really:123456789012:function:f": false,
	} {
		if got := MatchesPattern(arn); got != want {
			t.Errorf("MatchesPattern(%q) = %v, want %v", arn, got, want)
		}
	}
}

// FuzzParseTarget: whatever a destination ARN holds, a subject target is a
// literal subject under SubjectPrefix and a function target a function name
// of this account and region.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"arn:aws:nats:us-east-1:123456789012:lambda.orders.failed",
		"arn:aws:lambda:us-east-1:123456789012:function:f:1", "arn:aws:nats:us-east-1:123456789012:shoal.>",
		"arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:nats:us-east-1:123456789012:lambda.a b", ""} {
		f.Add(s)
	}
	name := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	f.Fuzz(func(t *testing.T, arn string) {
		tg := ParseTarget(arn, "us-east-1", "123456789012")
		switch tg.Kind {
		case TargetSubject:
			if !strings.HasPrefix(tg.Subject, SubjectPrefix) || strings.ContainsAny(tg.Subject, "*> \t\r\n") ||
				strings.Contains(tg.Subject, "..") || strings.HasSuffix(tg.Subject, ".") {
				t.Fatalf("subject %q from %q", tg.Subject, arn)
			}
			if SubjectARN("us-east-1", "123456789012", tg.Subject) != arn {
				t.Fatalf("%q is not the ARN of its subject %q", arn, tg.Subject)
			}
		case TargetFunction:
			if !name.MatchString(tg.Function) || !strings.HasPrefix(arn, "arn:aws:lambda:us-east-1:123456789012:function:") {
				t.Fatalf("function %q from %q", tg.Function, arn)
			}
		case TargetOtherService, TargetInvalid:
		default:
			t.Fatalf("kind %d", tg.Kind)
		}
	})
}
