package asyncq

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/shoal-dev/shoal/internal/bus"
)

// Where invocation records and dead letters go.
//
// A destination (OnSuccess, OnFailure) or a dead-letter target (the function's
// DeadLetterConfig) is an ARN of one of two kinds:
//
//   - a Lambda function of this account and region,
//     arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], which is invoked
//     asynchronously with the record (or, as a dead-letter target, the event) as
//     its payload;
//   - a NATS subject on shoal's cluster, arn:aws:nats:REGION:ACCOUNT:SUBJECT,
//     where SUBJECT lies under "lambda." (for example lambda.orders.failed).
//     Every message published there is also kept in the JetStream stream
//     SHOAL_DESTINATIONS, so a reader that was away still finds it.
//
// Subjects outside "lambda." belong to shoal itself (its heartbeats, usage,
// logs, commands and JetStream's API), which a record must never reach; the
// namespace also lets the bus give readers of records exactly these subjects.

// TargetKind is what a target ARN names.
type TargetKind int

const (
	// TargetFunction is a Lambda function of this account and region.
	TargetFunction TargetKind = iota + 1
	// TargetSubject is a NATS subject under SubjectPrefix.
	TargetSubject
	// TargetOtherService is an ARN of a service shoal does not deliver to
	// (SQS, SNS, EventBridge, S3): valid on AWS, refused here.
	TargetOtherService
	// TargetInvalid is an ARN Lambda itself refuses (another service, or a
	// Lambda ARN that names no function).
	TargetInvalid
)

// SubjectPrefix is the namespace of the NATS subjects that records and dead
// letters may be published on; bus.DestinationReader may read it.
const SubjectPrefix = bus.DestinationPrefix

// DestinationStream is the JetStream stream that keeps what is published
// under SubjectPrefix.
const DestinationStream = bus.DestinationStream

// Target is a parsed destination or dead-letter ARN.
type Target struct {
	Kind TargetKind
	ARN  string
	// Function and Qualifier name a TargetFunction ("" qualifier: unqualified).
	Function, Qualifier string
	// Subject is a TargetSubject's subject.
	Subject string
}

// DestinationPattern is Lambda's pattern for a destination ARN (the
// ValidationException of PutFunctionEventInvokeConfig quotes it).
const DestinationPattern = `$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)`

var (
	destinationRE = regexp.MustCompile(`^(?:` + DestinationPattern + `)$`)
	arnRE         = regexp.MustCompile(`^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-]+):([^:]*):([^:]*):(.*)$`)
	functionRE    = regexp.MustCompile(`^function:([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]{1,128}))?$`)
	tokenRE       = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

// MatchesPattern reports whether arn satisfies Lambda's destination pattern.
func MatchesPattern(arn string) bool { return destinationRE.MatchString(arn) }

// maxSubjectBytes bounds a subject's length.
const maxSubjectBytes = 255

// ParseTarget classifies a destination or dead-letter ARN of the account and
// region given.
func ParseTarget(arn, region, account string) Target {
	t := Target{ARN: arn, Kind: TargetInvalid}
	m := arnRE.FindStringSubmatch(arn)
	if m == nil {
		return t
	}
	service, rgn, acct, resource := m[2], m[3], m[4], m[5]
	switch service {
	case "lambda":
		f := functionRE.FindStringSubmatch(resource)
		if f == nil || rgn != region || acct != account {
			return t
		}
		t.Kind, t.Function, t.Qualifier = TargetFunction, f[1], f[2]
	case "nats":
		if rgn != region || acct != account || !ValidSubject(resource) {
			return t
		}
		t.Kind, t.Subject = TargetSubject, resource
	case "sqs", "sns", "events", "s3":
		t.Kind = TargetOtherService
	}
	return t
}

// ValidSubject reports whether s is a subject records may be published on: a
// NATS subject without wildcards under SubjectPrefix.
func ValidSubject(s string) bool {
	rest, ok := strings.CutPrefix(s, SubjectPrefix)
	if !ok || rest == "" || len(s) > maxSubjectBytes {
		return false
	}
	for tok := range strings.SplitSeq(rest, ".") {
		if !tokenRE.MatchString(tok) {
			return false
		}
	}
	return true
}

// SubjectARN is the ARN of a NATS subject destination.
func SubjectARN(region, account, subject string) string {
	return fmt.Sprintf("arn:aws:nats:%s:%s:%s", region, account, subject)
}
