package lambdaapi

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it starts. Idle keep-alive connections of the HTTP clients
// are the clients' own and are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// nats.go parks this goroutine of its async publisher (used by the object
		// store) on a nil channel for the life of the process.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}
