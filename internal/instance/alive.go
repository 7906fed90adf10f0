package instance

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AliveFile, in an agent's work directory, holds the time of its latest
// heartbeat (Unix nanoseconds). It outlives the agent: a control plane that
// finds the agent gone knows from it until when the instance ran.
const AliveFile = "alive"

// aliveStamp rewrites AliveFile in place at every heartbeat: one pwrite.
type aliveStamp struct {
	f *os.File // nil: no stamp (the file could not be opened)
}

func openAliveStamp(dir string, log *slog.Logger) aliveStamp {
	f, err := os.OpenFile(filepath.Join(dir, AliveFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		log.Warn("no alive stamp: a control plane that finds this agent dead cannot tell when it stopped", "err", err)
		return aliveStamp{}
	}
	return aliveStamp{f: f}
}

func (s aliveStamp) write(now time.Time) {
	if s.f == nil {
		return
	}
	// Fixed width, so that a rewrite never leaves the tail of a longer one.
	_, _ = s.f.WriteAt(fmt.Appendf(nil, "%020d", now.UnixNano()), 0)
}

func (s aliveStamp) close() {
	if s.f != nil {
		s.f.Close()
	}
}

// LastAlive reads the time of an agent's latest heartbeat from its work
// directory; false when there is none.
func LastAlive(workDir string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(workDir, AliveFile))
	if err != nil {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}
