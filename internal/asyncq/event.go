package asyncq

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Event is one asynchronous invocation in the queue.
type Event struct {
	// RequestID is the invocation's request id: the Invoke answer's
	// x-amzn-RequestId, the runtime's request id on every attempt, the
	// record's requestId.
	RequestID string
	// Function and Qualifier are what the caller invoked ("" qualifier:
	// unqualified, $LATEST); the qualifier is resolved at each attempt.
	Function, Qualifier string
	// InvokedARN is the ARN the caller named.
	InvokedARN string
	// ClientContext is the decoded X-Amz-Client-Context ("" if none).
	ClientContext string
	Payload       []byte
	// Accepted is when the queue took the event; its age counts from here.
	Accepted time.Time
}

// The event's headers on its message. The payload is the message's data.
const (
	hdrRequestID     = "Shoal-Request-Id"
	hdrQualifier     = "Shoal-Qualifier"
	hdrInvokedARN    = "Shoal-Invoked-Arn"
	hdrClientContext = "Shoal-Client-Context" // base64: the JSON may hold line breaks
	hdrAccepted      = "Shoal-Accepted"       // Unix nanoseconds
)

// subjectPrefix is where the events of each function are queued:
// shoal.async.fn.<function>.
const subjectPrefix = "shoal.async.fn."

func eventSubject(function string) string { return subjectPrefix + function }

// message encodes ev as the message queued for it. dedupe, when set, is its
// Nats-Msg-Id: the queue keeps one message per id within its duplicate window.
func (ev *Event) message(dedupe string) *nats.Msg {
	m := nats.NewMsg(eventSubject(ev.Function))
	m.Data = ev.Payload
	h := m.Header
	h[hdrRequestID] = []string{ev.RequestID}
	h[hdrAccepted] = []string{strconv.FormatInt(ev.Accepted.UnixNano(), 10)}
	if ev.Qualifier != "" {
		h[hdrQualifier] = []string{ev.Qualifier}
	}
	if ev.InvokedARN != "" {
		h[hdrInvokedARN] = []string{ev.InvokedARN}
	}
	if ev.ClientContext != "" {
		h[hdrClientContext] = []string{base64.StdEncoding.EncodeToString([]byte(ev.ClientContext))}
	}
	if dedupe != "" {
		h[nats.MsgIdHdr] = []string{dedupe}
	}
	return m
}

var errMalformed = errors.New("asyncq: malformed event message")

// decodeEvent reads an event back from its message.
func decodeEvent(subject string, h nats.Header, data []byte) (Event, error) {
	fn, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok || fn == "" {
		return Event{}, errMalformed
	}
	ev := Event{Function: fn, Payload: data, RequestID: h.Get(hdrRequestID), Qualifier: h.Get(hdrQualifier),
		InvokedARN: h.Get(hdrInvokedARN)}
	if ev.RequestID == "" {
		return Event{}, errMalformed
	}
	ns, err := strconv.ParseInt(h.Get(hdrAccepted), 10, 64)
	if err != nil {
		return Event{}, errMalformed
	}
	ev.Accepted = time.Unix(0, ns)
	if cc := h.Get(hdrClientContext); cc != "" {
		b, err := base64.StdEncoding.DecodeString(cc)
		if err != nil {
			return Event{}, errMalformed
		}
		ev.ClientContext = string(b)
	}
	return ev, nil
}
