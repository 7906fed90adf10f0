package registry

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops what it starts: the registry's watch and Watch goroutines, the
// embedded server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// nats.go parks this goroutine of its async publisher (used by the object
		// store) on a nil channel for the life of the process.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}
