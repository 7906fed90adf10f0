package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/meter"
)

// openMeter sets up the usage ledger of the agent's environments: every
// finished invocation is journaled in WorkDir/meter before its result goes
// back, and published to the ledger whenever the bus is reachable. A journal
// an earlier agent process left in the same directory is published first.
func (a *Agent) openMeter(ctx context.Context, js jetstream.JetStream, rec UsageRecorder) error {
	if a.cfg.NoMeter {
		return nil
	}
	if rec == nil {
		// The control plane keeps the ledger's stream; the journal holds the
		// events until they reach it. Subjects end with the instance's id.
		r, err := ledger.NewRecorder(ledger.Config{Dir: filepath.Join(a.cfg.WorkDir, "meter"), Source: a.cfg.ID}, js, a.log)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		a.meter, rec = r, r
	}
	a.envDeps.Usage = &usageSink{rec: rec, cfg: &a.cfg}
	return nil
}

// closeMeter publishes what the journal still holds (for a little while) and
// closes it; what is left is published by the next agent on the directory or
// by the control plane when it cleans the instance up.
func (a *Agent) closeMeter() {
	if a.meter == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.meter.Close(ctx); err != nil {
		a.log.Warn("usage events left in the journal", "err", err)
	}
}

// usageSink turns finished invocations into Managed Instances usage events;
// on a classic agent, into the on-demand and provisioned ones that the
// control plane records for its own environments, the same events whichever
// machine ran them.
type usageSink struct {
	rec UsageRecorder
	cfg *Config
}

func (u *usageSink) InvocationDone(spec *env.Spec, requestID string, start time.Time, r *env.Result) {
	if u.cfg.Classic {
		compute := meter.OnDemand
		if spec.InitType == env.InitProvisioned {
			compute = meter.Provisioned
		}
		u.rec.Record(env.UsageEvent(spec, requestID, start, r, compute))
		return
	}
	ev := env.UsageEvent(spec, requestID, start, r, meter.ManagedInstances)
	ev.CapacityProvider, ev.Instance, ev.InstanceType, ev.Zone = u.cfg.CapacityProvider, u.cfg.ID, u.cfg.Type, u.cfg.Zone
	u.rec.Record(ev)
}
