package controlplane

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/registry"
)

// The environment's spec carries the version's LoggingConfig; a Managed
// Instances version logs JSON even if its stored record says Text.
func TestTargetLogging(t *testing.T) {
	managed := &registry.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &registry.ManagedInstancesConfig{
		CapacityProviderArn: "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp"}}
	cases := []struct {
		name      string
		lc        *registry.LoggingConfig
		cpc       *registry.CapacityProviderConfig
		wantGroup string
		want      env.LogConfig
	}{
		{"none", nil, nil, "", env.LogConfig{}},
		{"text", &registry.LoggingConfig{LogFormat: "Text", LogGroup: "/aws/lambda/fn"}, nil, "/aws/lambda/fn", env.LogConfig{Format: "Text"}},
		{"json", &registry.LoggingConfig{LogFormat: "JSON", LogGroup: "g", ApplicationLogLevel: "DEBUG", SystemLogLevel: "WARN"}, nil, "g",
			env.LogConfig{Format: env.LogFormatJSON, ApplicationLevel: "DEBUG", SystemLevel: "WARN"}},
		{"managed json", &registry.LoggingConfig{LogFormat: "JSON", LogGroup: "g", ApplicationLogLevel: "ERROR", SystemLogLevel: "INFO"}, managed, "g",
			env.LogConfig{Format: env.LogFormatJSON, ApplicationLevel: "ERROR", SystemLevel: "INFO"}},
		{"managed stored as text", &registry.LoggingConfig{LogFormat: "Text", LogGroup: "g"}, managed, "g", env.LogConfig{Format: env.LogFormatJSON}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := &registry.Version{FunctionName: "fn", Version: "$LATEST", FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:fn",
				LoggingConfig: c.lc, CapacityProviderConfig: c.cpc}
			spec := targetFor(v, Config{}).Spec
			if diff := cmp.Diff(c.want, spec.Logging); diff != "" || spec.LogGroup != c.wantGroup {
				t.Errorf("log group %q, Logging (-want +got):\n%s", spec.LogGroup, diff)
			}
		})
	}
}
