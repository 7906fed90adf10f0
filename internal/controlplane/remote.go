package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/remote"
	"github.com/shoal-dev/shoal/internal/router"
)

// remotePlane is, on a node of a cluster, what runs on-demand and
// Provisioned Concurrency environments on any host (internal/remote): the
// placer that is the router's Starter and Shared, and, when the node is a
// host, the classic agent that serves the environments other fronts place
// on this machine.
type remotePlane struct {
	placer *remote.Placer
	agent  *agent.Agent // nil on a node that is no host
}

// withCode completes a spec with the code unpacked on this machine before
// start runs it here: in a cluster the router leaves that to its Starter,
// since an environment placed on another host fetches its code there.
func withCode(start router.Starter, code router.CodeSource) router.Starter {
	return func(ctx context.Context, t *router.Target, spec env.Spec) (router.Env, error) {
		dir, err := code.CodeDir(ctx, t.CodeSha256)
		if err != nil {
			return nil, awserr.Service(err, "The function's code could not be loaded.")
		}
		spec.CodeDir = dir
		if spec.OptDir, err = code.OptDir(ctx, spec.Layers); err != nil {
			return nil, awserr.Service(err, "The function's layers could not be loaded.")
		}
		return start(ctx, t, spec)
	}
}

// placing is the router's Starter in a cluster: the placer's, once it runs.
func (s *Server) placing(local router.Starter) router.Starter {
	return func(ctx context.Context, t *router.Target, spec env.Spec) (router.Env, error) {
		if s.remote == nil {
			return local(ctx, t, spec)
		}
		return s.remote.placer.Start(ctx, t, spec)
	}
}

// startRemote starts, on a node of a cluster, the placer and (on a host)
// the classic agent, and gives the router the cluster's provisioned
// environments. It runs after the Managed Instances plane, whose pool,
// hosts and host it uses, and before the API listens.
func (s *Server) startRemote(ctx context.Context, dataDir string, local router.Starter) error {
	cc, m := s.cfg.Cluster, s.managed
	rp := &remotePlane{}
	self := ""
	var room func() (float64, int)
	if m.host != nil {
		self, room = hostName(cc.Node), m.host.Free
	}
	var usage env.UsageSink
	if s.meter != nil {
		usage = usageSink{rec: s.meter}
	}
	var err error
	rp.placer, err = remote.New(remote.Config{Self: self, Heartbeat: s.cfg.Heartbeat},
		remote.Deps{NATS: s.bus.Conn(), Pool: m.pool, Hosts: m.cluster.Hosts, Start: local, Room: room,
			Usage: usage, Logger: s.logger, Clock: s.clock})
	if err != nil {
		return err
	}
	if m.host != nil {
		rp.agent, err = remote.Serve(ctx, remote.ServeConfig{Host: self, Zone: cc.Zone, Advertise: cc.Advertise,
			WorkDir: filepath.Join(dataDir, "classic"), Heartbeat: s.cfg.Heartbeat, Isolate: s.cfg.Isolate,
			NoMeter: s.cfg.NoMeter, StopTimeout: s.cfg.ShutdownTimeout},
			remote.ServeDeps{NATS: s.bus.Conn(), Secret: s.secret, CA: s.tls.ca, Usage: agentUsage(s.meter),
				Logger: s.logger, Clock: s.clock},
			m.host, rp.placer.LocalUse)
		if err != nil {
			rp.placer.Close()
			return fmt.Errorf("environments for other fronts: %w", err)
		}
	}
	s.router.Share(rp.placer)
	s.remote = rp
	return nil
}

// close stops the placer, then the classic agent: the environments other
// fronts placed here stop, in-flight invocations first.
func (rp *remotePlane) close() error {
	rp.placer.Close()
	if rp.agent != nil {
		return rp.agent.Close()
	}
	return nil
}

// classicView is a host's classic agent and its environments, as GET
// /shoal/v1/fleet shows them under "classic".
type classicView struct {
	ID            string            `json:"id"`
	Host          string            `json:"host"`
	Zone          string            `json:"zone"`
	InvokeAddr    string            `json:"invoke_addr"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	Environments  []fleet.EnvStatus `json:"environments"`
}

// classicAgents lists the cluster's classic agents (nil alone).
func (s *Server) classicAgents() []classicView {
	if s.remote == nil {
		return nil
	}
	out := []classicView{}
	for _, a := range s.remote.placer.Agents() {
		out = append(out, classicView{ID: a.Heartbeat.ID, Host: a.Heartbeat.Host, Zone: a.Heartbeat.Zone,
			InvokeAddr: a.Heartbeat.InvokeAddr, LastHeartbeat: a.At, Environments: a.Heartbeat.Environments})
	}
	return out
}

// agentUsage is rec as an agent's usage recorder, nil when metering is off.
func agentUsage(rec *ledger.Recorder) agent.UsageRecorder {
	if rec == nil {
		return nil
	}
	return rec
}
