package wire

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// connection's reader and every invocation's goroutine must end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
