package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/internal/asyncq"
	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Asynchronous invocation: the API queues events through the invoker, and the
// queue runs each attempt through the same invoker as a synchronous Invoke,
// so that an event is admitted, placed, metered and counted as any
// invocation is.

var _ lambdaapi.AsyncInvoker = (*invoker)(nil)

// InvokeAsync queues an event.
func (i *invoker) InvokeAsync(ctx context.Context, req *lambdaapi.InvokeRequest) error {
	return i.async.Enqueue(ctx, &asyncq.Event{
		RequestID:     req.RequestID,
		Function:      req.Version.FunctionName,
		Qualifier:     req.Qualifier,
		InvokedARN:    req.InvokedARN,
		ClientContext: req.ClientContext,
		Payload:       req.Payload,
	})
}

// asyncRunner is what the queue runs events with and reads their settings from.
type asyncRunner struct {
	inv *invoker
	reg *registry.Registry
	// maxResponse is Lambda's limit on a response (6 MB): a larger one is a
	// function error, as for a synchronous invocation.
	maxResponse int
}

var (
	_ asyncq.Invoker  = asyncRunner{}
	_ asyncq.Settings = asyncRunner{}
)

// InvokeEvent runs one attempt: the qualifier is resolved now (a weighted
// alias picks its version per attempt), then the event goes the way of any
// invocation.
func (r asyncRunner) InvokeEvent(ctx context.Context, ev *asyncq.Event) (asyncq.Response, error) {
	v, err := r.reg.ResolveInvocation(ctx, ev.Function, ev.Qualifier)
	if err != nil {
		return asyncq.Response{}, err
	}
	res, err := r.inv.Invoke(ctx, &lambdaapi.InvokeRequest{
		Version:       v,
		Qualifier:     ev.Qualifier,
		InvokedARN:    ev.InvokedARN,
		RequestID:     ev.RequestID,
		Payload:       ev.Payload,
		ClientContext: ev.ClientContext,
	})
	if err != nil {
		return asyncq.Response{}, err
	}
	out := asyncq.Response{
		FunctionARN:     r.reg.FunctionARN(v.FunctionName, v.Version),
		ExecutedVersion: res.ExecutedVersion,
		FunctionError:   res.FunctionError,
		Payload:         res.Payload,
	}
	if len(out.Payload) > r.maxResponse {
		out.FunctionError = "Unhandled"
		out.Payload = []byte(`{"errorMessage":"Response payload size exceeded maximum allowed payload size (` +
			strconv.Itoa(r.maxResponse) + ` bytes).","errorType":"Function.ResponseSizeTooLarge"}`)
	}
	return out, nil
}

// EventSettings reads what applies to an event from the registry's copy.
func (r asyncRunner) EventSettings(function, qualifier string) (asyncq.EventSettings, error) {
	s, err := r.reg.EventInvokeSettings(function, qualifier)
	if err != nil {
		return asyncq.EventSettings{}, err
	}
	ctx := context.Background()
	v, err := r.reg.ResolveVersion(ctx, function, qualifier)
	if err != nil {
		return asyncq.EventSettings{}, err
	}
	reserved, err := r.reg.GetFunctionConcurrency(ctx, function)
	if err != nil && !awserr.Is(err, awserr.CodeResourceNotFound) {
		return asyncq.EventSettings{}, err
	}
	out := asyncq.EventSettings{
		EventInvokeSettings: s,
		FunctionARN:         r.reg.FunctionARN(function, v.Version),
		ReservedZero:        reserved != nil && *reserved == 0,
		Managed:             v.CapacityProviderConfig != nil,
	}
	if v.DeadLetterConfig != nil {
		out.DeadLetter = v.DeadLetterConfig.TargetArn
	}
	return out, nil
}

// DestinationKeyFile is the file of the data directory that holds the nkey
// seed of bus.DestinationReader, with which a NATS client reads the records
// and dead letters sent to NATS subjects (mode 0600).
const DestinationKeyFile = "lambda-destinations.nk"

// openAsync opens the asynchronous invocation queue, which runs its events
// through inv, and writes the key of the records' readers into dataDir.
func (s *Server) openAsync(ctx context.Context, dataDir string, inv *invoker, maxResponse int) (*asyncq.Queue, error) {
	// On a NATS someone else runs, its accounts say who may read the
	// records; on shoal's own, this key may.
	if s.cfg.Cluster == nil || s.cfg.Cluster.External == nil {
		creds, err := s.secret.CredentialsFor(bus.DestinationReader)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dataDir, DestinationKeyFile), append(creds.Seed, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("destination readers' key: %w", err)
		}
	}
	policy := asyncq.DefaultPolicy()
	policy.RetryDelays = []time.Duration{s.cfg.AsyncRetryDelay, 2 * s.cfg.AsyncRetryDelay}
	runner := asyncRunner{inv: inv, reg: s.reg, maxResponse: maxResponse}
	// In a cluster every node runs a queue: they share its consumers.
	cfg := asyncq.Config{Region: s.cfg.Region, AccountID: s.cfg.AccountID, Policy: policy,
		MaxWindow: s.cfg.AccountConcurrency, Replicas: s.replicas, Shared: s.cfg.Cluster != nil}
	deps := asyncq.Deps{JetStream: s.bus.JetStream(), Invoker: runner, Settings: runner, Watcher: s.reg,
		Metrics: s.metrics.reg, Clock: s.clock, Logger: s.logger}
	var q *asyncq.Queue
	err := s.retrying(ctx, "the queue of asynchronous invocations", func(ctx context.Context) (err error) {
		q, err = asyncq.Open(ctx, cfg, deps)
		return err
	})
	return q, err
}
