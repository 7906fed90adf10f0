package ledger

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Stamp is a file its writer rewrites in place with the current time (Unix
// nanoseconds, fixed width) while it runs. It outlives the writer: whoever
// finds the writer dead reads from it until when the writer ran, and so
// until when the usage it was metering lasted.
type Stamp struct {
	f *os.File
}

// OpenStamp opens (creating) the stamp at path.
func OpenStamp(path string) (*Stamp, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledger: stamp: %w", err)
	}
	return &Stamp{f: f}, nil
}

// Write stamps t: one pwrite. A nil Stamp does nothing.
func (s *Stamp) Write(t time.Time) {
	if s == nil {
		return
	}
	_, _ = s.f.WriteAt(fmt.Appendf(nil, "%020d", t.UnixNano()), 0)
}

// Close closes the file; the stamp stays.
func (s *Stamp) Close() {
	if s != nil {
		s.f.Close()
	}
}

// ReadStamp returns the time stamped at path; false when there is none.
func ReadStamp(path string) (time.Time, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}
