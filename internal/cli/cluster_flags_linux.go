package cli

import (
	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/controlplane"
)

// clusterFlags are shoal up's flags for a node of a cluster.
type clusterFlags struct {
	cfg        controlplane.ClusterConfig
	secretFile string
	memoryMB   int
	ext        bus.External
}

func (f *clusterFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.cfg.Name, "cluster-name", "", "run as a node of the cluster of this name (docs/cluster.md)")
	fs.StringVar(&f.cfg.Listen, "cluster-listen", "0.0.0.0:6222", "where this node's NATS routes listen (cluster)")
	fs.StringSliceVar(&f.cfg.Routes, "routes", nil, "the other nodes' routes, nats-route://host:port,... (cluster)")
	fs.StringVar(&f.cfg.NATSListen, "nats-listen", "0.0.0.0:4222", "where hosts and agents connect to this node's NATS, over TLS (cluster)")
	fs.StringSliceVar(&f.ext.URLs, "nats", nil, "run on an external NATS cluster, nats://host:4222,... (or tls://), instead of an embedded server (cluster)")
	fs.StringVar(&f.ext.CredsFile, "nats-creds", "", "NATS user credentials file for --nats")
	fs.StringVar(&f.ext.CAFile, "nats-ca", "", "PEM file of the authorities of the --nats servers' certificates (default the system's)")
	fs.StringVar(&f.cfg.Advertise, "advertise", "", "the address the other machines use for this one (cluster)")
	fs.StringVar(&f.cfg.Node, "node", "", "this node's name (cluster; default the --advertise address)")
	fs.StringVar(&f.secretFile, "cluster-secret", "", "file of the cluster's secret (default <data>/cluster-secret, written when missing)")
	fs.BoolVar(&f.cfg.Host, "host", true, "run Managed Instances instances on this machine too (cluster)")
	fs.StringVar(&f.cfg.Zone, "zone", "", "this machine's availability zone, as a host (cluster)")
	fs.IntVar(&f.cfg.VCPU, "vcpus", 0, "vCPUs this machine offers as a host (cluster; default all)")
	fs.IntVar(&f.memoryMB, "memory", 0, "memory (MiB) this machine offers as a host (cluster; default all)")
}

// apply sets cfg's cluster fields from the flags.
func (f *clusterFlags) apply(cfg *controlplane.Config) {
	cfg.SecretFile = f.secretFile
	if f.cfg.Name == "" && len(f.ext.URLs) == 0 {
		return
	}
	cc := f.cfg
	if len(f.ext.URLs) > 0 {
		ext := f.ext
		cc.External = &ext
	}
	cc.MemoryMB = f.memoryMB
	cfg.Cluster = &cc
}
