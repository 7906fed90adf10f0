package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shoal-dev/shoal/internal/env"
)

// Client sends commands to agents over NATS request/reply. It is what the
// control plane (the scaler's loop, the fleet) uses to place and remove
// environments. Safe for concurrent use.
type Client struct {
	nc *nats.Conn
}

// NewClient returns a client on nc.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc} }

// ErrNoAgent is returned when no agent answers on an instance's subject.
var ErrNoAgent = errors.New("agent: no agent answers")

// request sends cmd to agent id and decodes the reply. Without a deadline on
// ctx it waits at most wait.
func (c *Client) request(ctx context.Context, id string, cmd Command, wait time.Duration) (Reply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	body, err := json.Marshal(cmd)
	if err != nil {
		return Reply{}, fmt.Errorf("agent: %w", err)
	}
	msg, err := c.nc.RequestWithContext(ctx, CommandSubject(id), body)
	if errors.Is(err, nats.ErrNoResponders) {
		return Reply{}, fmt.Errorf("%w: %s", ErrNoAgent, id)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("agent: %s %s: %w", cmd.Op, id, err)
	}
	var rep Reply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return Reply{}, fmt.Errorf("agent: %s %s: bad reply: %w", cmd.Op, id, err)
	}
	return rep, nil
}

// StartEnvironment starts an environment on instance id and returns once its
// init is over. A failed init returns *agent.InitError (its Payload lacks
// the request id Lambda adds to platform errors). Without a deadline on ctx
// it waits up to the environment's init timeout and a minute more.
func (c *Client) StartEnvironment(ctx context.Context, id string, req StartEnv) (EnvStatus, error) {
	wait := req.Spec.InitTimeout
	if wait <= 0 {
		wait = InitTimeout(req.Spec.Timeout)
	}
	rep, err := c.request(ctx, id, Command{Op: OpStart, Start: &req}, wait+time.Minute)
	if err != nil {
		return EnvStatus{}, err
	}
	if rep.Init != nil {
		return EnvStatus{}, env.ReportedInitError(rep.Init.ErrorType, rep.Init.Message, rep.Init.Payload, rep.Init.Log,
			rep.Init.InitDuration, rep.Init.Platform)
	}
	if !rep.OK {
		return EnvStatus{}, fmt.Errorf("agent: start %s on %s: %s", req.EnvID, id, rep.Error)
	}
	if rep.Env == nil {
		return EnvStatus{}, fmt.Errorf("agent: start %s on %s: no environment in the reply", req.EnvID, id)
	}
	return *rep.Env, nil
}

// StopEnvironment drains environment envID of instance id (no new
// invocations, in-flight ones finish) and returns once it has ended.
// Stopping an unknown environment succeeds.
func (c *Client) StopEnvironment(ctx context.Context, id, envID string) error {
	rep, err := c.request(ctx, id, Command{Op: OpStop, EnvID: envID}, 16*time.Minute)
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("agent: stop %s on %s: %s", envID, id, rep.Error)
	}
	return nil
}

// Drain drains instance id: it refuses new work and returns once every
// environment has ended.
func (c *Client) Drain(ctx context.Context, id string) (Heartbeat, error) {
	return c.heartbeatOp(ctx, id, OpDrain, 16*time.Minute)
}

// Shutdown drains instance id, then its agent exits.
func (c *Client) Shutdown(ctx context.Context, id string) (Heartbeat, error) {
	return c.heartbeatOp(ctx, id, OpShutdown, 16*time.Minute)
}

// Status asks instance id for its current heartbeat.
func (c *Client) Status(ctx context.Context, id string) (Heartbeat, error) {
	return c.heartbeatOp(ctx, id, OpStatus, 10*time.Second)
}

func (c *Client) heartbeatOp(ctx context.Context, id, op string, wait time.Duration) (Heartbeat, error) {
	rep, err := c.request(ctx, id, Command{Op: op}, wait)
	if err != nil {
		return Heartbeat{}, err
	}
	if !rep.OK || rep.Heartbeat == nil {
		return Heartbeat{}, fmt.Errorf("agent: %s %s: %s", op, id, rep.Error)
	}
	return *rep.Heartbeat, nil
}

// Keep tells classic agent id that its caller still wants environments
// envIDs (Config.KeepTimeout), and returns those the agent no longer serves.
func (c *Client) Keep(ctx context.Context, id string, envIDs []string) (gone []string, err error) {
	rep, err := c.request(ctx, id, Command{Op: OpKeep, Keep: envIDs}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if !rep.OK {
		return nil, fmt.Errorf("agent: keep on %s: %s", id, rep.Error)
	}
	return rep.Gone, nil
}
