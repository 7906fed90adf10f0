package agent

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/internal/ledger"
)

// AliveFile, in an agent's work directory, is its alive stamp (ledger.Stamp):
// the time of its latest heartbeat. A control plane that finds the agent gone
// knows from it until when the instance ran.
const AliveFile = "alive"

func openAliveStamp(dir string, log *slog.Logger) *ledger.Stamp {
	s, err := ledger.OpenStamp(filepath.Join(dir, AliveFile))
	if err != nil {
		log.Warn("no alive stamp: a control plane that finds this agent dead cannot tell when it stopped", "err", err)
		return nil
	}
	return s
}

// LastAlive reads the time of an agent's latest heartbeat from its work
// directory; false when there is none.
func LastAlive(workDir string) (time.Time, bool) {
	return ledger.ReadStamp(filepath.Join(workDir, AliveFile))
}
