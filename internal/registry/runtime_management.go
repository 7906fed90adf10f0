package registry

import (
	"context"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Runtime update modes (UpdateRuntimeOn).
const (
	UpdateRuntimeAuto           = "Auto"
	UpdateRuntimeFunctionUpdate = "FunctionUpdate"
	UpdateRuntimeManual         = "Manual"
)

// RuntimeManagementConfig is when a function version picks up a new build of its
// runtime: with Auto (the default) as the platform rolls it out, with
// FunctionUpdate at its next update or publish, with Manual never: it stays on
// RuntimeVersionArn, which its RuntimeVersionConfig then shows.
type RuntimeManagementConfig struct {
	UpdateRuntimeOn   string `json:"updateRuntimeOn"`
	RuntimeVersionArn string `json:"runtimeVersionArn,omitempty"`
}

// runtimeVersion is the version a qualifier names for a runtime management config:
// "" and "$LATEST" are $LATEST, a number (or $LATEST.PUBLISHED) that version; an
// alias has none.
func (r *Registry) runtimeVersion(rec *functionRecord, function, qualifier string) (*Version, error) {
	switch {
	case qualifier == "" || qualifier == Latest:
		return rec.Latest, nil
	case rec.Versions[qualifier] != nil:
		return rec.Versions[qualifier], nil
	case rec.Aliases[qualifier] != nil:
		return nil, awserr.InvalidParameter("The provided function name %s is invalid. Aliases are not allowed.", r.FunctionARN(function, qualifier))
	}
	return nil, r.functionNotFound(function, qualifier)
}

// GetRuntimeManagementConfig returns a version's runtime management config
// (Auto unless set) and the version.
func (r *Registry) GetRuntimeManagementConfig(ctx context.Context, function, qualifier string) (RuntimeManagementConfig, *Version, error) {
	rec, err := r.load(ctx, function)
	if err != nil {
		if qualifier != "" && awserr.Is(err, awserr.CodeResourceNotFound) {
			return RuntimeManagementConfig{}, nil, r.functionNotFound(function, qualifier)
		}
		return RuntimeManagementConfig{}, nil, err
	}
	v, err := r.runtimeVersion(rec, function, qualifier)
	if err != nil {
		return RuntimeManagementConfig{}, nil, err
	}
	return rec.runtimeConfig(v.Version), v, nil
}

func (rec *functionRecord) runtimeConfig(version string) RuntimeManagementConfig {
	if c, ok := rec.Runtime[version]; ok {
		return c
	}
	return RuntimeManagementConfig{UpdateRuntimeOn: UpdateRuntimeAuto}
}

// PutRuntimeManagementConfig sets a version's runtime management config. Manual
// pins the version's RuntimeVersionConfig to c.RuntimeVersionArn; another mode
// gives it back the runtime's current build.
func (r *Registry) PutRuntimeManagementConfig(ctx context.Context, function, qualifier string, c RuntimeManagementConfig) (*Version, error) {
	var out *Version
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		v, err := r.runtimeVersion(rec, function, qualifier)
		if err != nil {
			return err
		}
		if rec.Runtime == nil {
			rec.Runtime = map[string]RuntimeManagementConfig{}
		}
		if c.UpdateRuntimeOn == UpdateRuntimeAuto {
			delete(rec.Runtime, v.Version)
		} else {
			rec.Runtime[v.Version] = c
		}
		if len(rec.Runtime) == 0 {
			rec.Runtime = nil
		}
		r.pinRuntime(rec, v)
		out = v
		return nil
	})
	if err != nil && qualifier != "" && awserr.Is(err, awserr.CodeResourceNotFound) && r.cached(function) == nil {
		return nil, r.functionNotFound(function, qualifier)
	}
	return out, err
}

// pinRuntime sets v's RuntimeVersionConfig from its runtime management config:
// the pinned build for Manual, the runtime's current one otherwise.
func (r *Registry) pinRuntime(rec *functionRecord, v *Version) {
	arn := r.runtimeVersionArn(v.Runtime)
	if c := rec.runtimeConfig(v.Version); c.UpdateRuntimeOn == UpdateRuntimeManual {
		arn = c.RuntimeVersionArn
	}
	v.RuntimeVersionConfig = &RuntimeVersionConfig{RuntimeVersionArn: arn}
}

// inheritRuntime gives a version just published from $LATEST $LATEST's runtime
// management config.
func inheritRuntime(rec *functionRecord, v *Version) {
	c, ok := rec.Runtime[Latest]
	if !ok {
		delete(rec.Runtime, v.Version)
		return
	}
	rec.Runtime[v.Version] = c
}
