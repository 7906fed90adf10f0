package agent

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/internal/meter"
)

// AliveFile, in an agent's work directory, is its alive stamp (meter.Stamp):
// the time of its latest heartbeat. A control plane that finds the agent gone
// knows from it until when the instance ran.
const AliveFile = "alive"

func openAliveStamp(dir string, log *slog.Logger) *meter.Stamp {
	s, err := meter.OpenStamp(filepath.Join(dir, AliveFile))
	if err != nil {
		log.Warn("no alive stamp: a control plane that finds this agent dead cannot tell when it stopped", "err", err)
		return nil
	}
	return s
}

// LastAlive reads the time of an agent's latest heartbeat from its work
// directory; false when there is none.
func LastAlive(workDir string) (time.Time, bool) {
	return meter.ReadStamp(filepath.Join(workDir, AliveFile))
}
