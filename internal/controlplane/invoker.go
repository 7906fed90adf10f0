package controlplane

import (
	"context"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/asyncq"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/registry"
	"github.com/shoal-dev/shoal/internal/router"
)

// invoker connects the REST API's Invoke to the router: it turns the resolved
// version into a router target and the request into an invocation.
type invoker struct {
	reg     *registry.Registry
	router  *router.Router
	managed *router.Managed
	metrics *serverMetrics
	cfg     Config
	// async queues asynchronous invocations (async.go).
	async *asyncq.Queue
}

var _ lambdaapi.Invoker = (*invoker)(nil)

func (i *invoker) Invoke(ctx context.Context, req *lambdaapi.InvokeRequest) (*lambdaapi.InvokeResult, error) {
	v := req.Version
	i.metrics.begin(v)
	res, ran, err := i.invoke(ctx, req)
	i.metrics.end(v, res, err)
	if err != nil {
		return nil, err
	}
	return result(res, ran), nil
}

// invoke runs the invocation and returns its result and the version that ran
// it: req.Version, or during a rollout the version on its other side when
// req.Version had no environment to take it (RolloutAlternate).
func (i *invoker) invoke(ctx context.Context, req *lambdaapi.InvokeRequest) (env.Result, *registry.Version, error) {
	v := req.Version
	inv := env.Invocation{
		RequestID:     req.RequestID,
		Payload:       req.Payload,
		InvokedARN:    req.InvokedARN,
		ClientContext: req.ClientContext,
		TailLog:       req.TailLog,
	}
	if req.Stream != nil {
		inv.Stream = req.Stream
	}
	if v.CapacityProviderConfig != nil {
		alt := i.reg.RolloutAlternate(v.FunctionName, req.Qualifier, v)
		altKey := ""
		if alt != nil && alt.CapacityProviderConfig != nil {
			altKey = router.RouteKey(alt.FunctionName, alt.Version, alt.RevisionId)
		}
		res, usedAlt, err := i.managed.InvokeEither(ctx, router.RouteKey(v.FunctionName, v.Version, v.RevisionId), altKey, inv)
		if usedAlt {
			return res, alt, err
		}
		return res, v, err
	}
	reserved, err := i.reg.GetFunctionConcurrency(ctx, v.FunctionName)
	if err != nil {
		return env.Result{}, v, err
	}
	t := targetFor(v, i.cfg)
	t.Reserved = reserved
	res, err := i.router.Invoke(ctx, t, inv)
	return res, v, err
}

func result(res env.Result, v *registry.Version) *lambdaapi.InvokeResult {
	return &lambdaapi.InvokeResult{
		Payload:         res.Payload,
		FunctionError:   res.FunctionError,
		LogTail:         res.LogTail,
		ExecutedVersion: v.Version,
		ErrorType:       res.ErrorType,
		Streamed:        res.Streamed,
		ContentType:     res.ContentType,
	}
}

// targetKey names one runnable configuration: published versions never change,
// and $LATEST's ConfigKey changes with every update of its code or configuration
// (not with a publish or a tag, which renew its RevisionId).
func targetKey(v *registry.Version) string {
	return v.FunctionName + ":" + v.Version + ":" + v.ConfigKey()
}

// targetFor builds the router target of a resolved version.
func targetFor(v *registry.Version, cfg Config) *router.Target {
	arn := v.FunctionArn
	if v.Version != registry.Latest {
		arn = strings.TrimSuffix(arn, ":"+v.Version)
	}
	arch := "x86_64"
	if len(v.Architectures) > 0 {
		arch = v.Architectures[0]
	}
	var vars map[string]string
	if v.Environment != nil {
		vars = v.Environment.Variables
	}
	tmpMB := 0
	if v.EphemeralStorage != nil {
		tmpMB = v.EphemeralStorage.Size
	}
	logGroup := ""
	var logging env.LogConfig
	if lc := v.LoggingConfig; lc != nil {
		logGroup = lc.LogGroup
		logging = env.LogConfig{Format: lc.LogFormat, ApplicationLevel: lc.ApplicationLogLevel, SystemLevel: lc.SystemLogLevel}
	}
	if v.CapacityProviderConfig != nil && logging.Format != env.LogFormatJSON {
		// Managed Instances functions always log JSON (a record stored before
		// shoal defaulted them may still say Text).
		logging = env.LogConfig{Format: env.LogFormatJSON}
	}
	return &router.Target{
		Key:        targetKey(v),
		Function:   v.FunctionName,
		Version:    v.Version,
		CodeSha256: v.CodeSha256,
		Spec: env.Spec{
			FunctionName: v.FunctionName,
			FunctionARN:  arn,
			Version:      v.Version,
			Runtime:      v.Runtime,
			Handler:      v.Handler,
			MemoryMB:     v.MemorySize,
			Timeout:      time.Duration(v.Timeout) * time.Second,
			Environment:  vars,
			Layers:       v.LayerCode(),
			Architecture: arch,
			Region:       cfg.Region,
			AccountID:    cfg.AccountID,
			LogGroup:     logGroup,
			Logging:      logging,
			NoEgress:     cfg.Egress == EgressNone,
			TmpMB:        tmpMB,
		},
	}
}
