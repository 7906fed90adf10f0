package controlplane

import (
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/bus"
)

func TestClusterConfigValidate(t *testing.T) {
	ext := func() *bus.External { return &bus.External{URLs: []string{"nats://n1:4222"}, CredsFile: "u.creds"} }
	for _, tt := range []struct {
		name string
		cfg  ClusterConfig
		err  string // "" when valid
	}{
		{"embedded", ClusterConfig{Name: "lab", Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222", Advertise: "10.0.0.1",
			Routes: []string{"nats-route://10.0.0.2:6222"}}, ""},
		{"embedded without a name", ClusterConfig{Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222", Advertise: "10.0.0.1"}, "a name is required"},
		{"without an address", ClusterConfig{Name: "lab", Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222"}, "--advertise"},
		{"a bad route", ClusterConfig{Name: "lab", Listen: "0.0.0.0:6222", NATSListen: "0.0.0.0:4222", Advertise: "10.0.0.1",
			Routes: []string{"10.0.0.2"}}, "route"},
		{"external, no name needed, listeners unused", ClusterConfig{External: ext(), Listen: "0.0.0.0:6222", NATSListen: "bad", Advertise: "10.0.0.1"}, ""},
		{"external with routes", ClusterConfig{External: ext(), Advertise: "10.0.0.1", Routes: []string{"nats-route://10.0.0.2:6222"}}, "--routes"},
		{"external without a URL", ClusterConfig{External: &bus.External{}, Advertise: "10.0.0.1"}, "URL"},
		{"a host without a zone", ClusterConfig{External: ext(), Advertise: "10.0.0.1", Host: true}, "zone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			err := cfg.validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one about %q", err, tt.err)
			}
			if tt.err == "" && cfg.Node != cfg.Advertise {
				t.Errorf("node %q, want the advertised address", cfg.Node)
			}
			if tt.err == "" && cfg.External != nil && (cfg.Listen != "" || cfg.NATSListen != "") {
				t.Errorf("an external NATS leaves listeners %q %q", cfg.Listen, cfg.NATSListen)
			}
		})
	}
}
