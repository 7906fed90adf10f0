package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/envnet"
	"github.com/shoal-dev/shoal/internal/fleet"
	"github.com/shoal-dev/shoal/internal/pki"
)

// ClusterConfig makes shoal up a node of a cluster (docs/cluster.md): its
// embedded NATS server routes to the other nodes', JetStream replicates the
// registry, code, logs, usage and fleet state across them, every node serves
// the Lambda API and routes invocations to any machine, and one elected
// leader runs the scaler and the fleet.
type ClusterConfig struct {
	// Name is the cluster's name, the same on every node.
	Name string
	// External, when set, is a NATS cluster someone else runs, which the
	// nodes share instead of each running an embedded server: Listen,
	// Routes and NATSListen are then unused.
	External *bus.External
	// Listen is where this node's NATS routes listen (host:port).
	Listen string
	// Routes are the other nodes' routes (nats-route://host:port).
	Routes []string
	// NATSListen is where hosts and agents connect to this node's NATS
	// (host:port, over TLS).
	NATSListen string
	// Advertise is the address the other machines use for this one.
	Advertise string
	// Node names this node (default Advertise).
	Node string
	// Host runs instances on this machine too (shoal up --host); its zone,
	// vCPUs and memory (0: detected).
	Host     bool
	Zone     string
	VCPU     int
	MemoryMB int
}

// validate fills defaults and checks the values.
func (c *ClusterConfig) validate() error {
	if c.Node == "" {
		c.Node = c.Advertise
	}
	if c.External != nil {
		if err := c.External.Validate(); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		if len(c.Routes) > 0 {
			return errors.New("cluster: --routes joins embedded NATS servers; with --nats the external NATS is the cluster")
		}
		c.Listen, c.NATSListen = "", ""
	}
	switch {
	case c.Name == "" && c.External == nil:
		return errors.New("cluster: a name is required (--cluster-name)")
	case c.Advertise == "":
		return errors.New("cluster: the address other machines reach this one at is required (--advertise)")
	case strings.ContainsAny(c.Node, " *>"):
		return fmt.Errorf("cluster: node name %q", c.Node)
	}
	for _, a := range []string{c.Listen, c.NATSListen} {
		if a == "" && c.External != nil {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("cluster: listen address %q: %w", a, err)
		}
	}
	for _, r := range c.Routes {
		if u, err := url.Parse(r); err != nil || u.Host == "" {
			return fmt.Errorf("cluster: route %q: want nats-route://host:port", r)
		}
	}
	if c.Host {
		if c.Zone == "" {
			return errors.New("cluster: a host needs a zone (--zone)")
		}
		if c.VCPU == 0 || c.MemoryMB == 0 {
			v, m := fleet.MachineCapacity()
			c.VCPU, c.MemoryMB = cmp0(c.VCPU, v), cmp0(c.MemoryMB, m)
		}
	}
	return nil
}

func cmp0(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// NodeName is the bus identity of cluster node or host name: it sorts the
// names of nodes and hosts apart from agents'.
func hostName(name string) string { return strings.NewReplacer(".", "-", ":", "-").Replace(name) }

// clusterTLS is a node's TLS: the cluster's authority and this node's
// certificate, for its NATS listener and routes and as a client of agents.
type clusterTLS struct {
	ca   *pki.Authority
	cert tls.Certificate
}

// startClusterBus starts this node's NATS server in the cluster and waits
// until JetStream has its quorum (a majority of the nodes up).
func (s *Server) startClusterBus(ctx context.Context, dataDir string) error {
	cc := s.cfg.Cluster
	ca, err := pki.New(s.secret)
	if err != nil {
		return err
	}
	hosts := []string{"127.0.0.1", "localhost", cc.Advertise}
	for _, a := range []string{cc.Listen, cc.NATSListen} {
		if h, _, err := net.SplitHostPort(a); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	cert, err := ca.Issue("node."+hostName(cc.Node), hosts)
	if err != nil {
		return err
	}
	s.tls = &clusterTLS{ca: ca, cert: cert}
	if cc.External != nil {
		if s.bus, err = bus.Dial(*cc.External, s.logger.With("component", "nats")); err != nil {
			return err
		}
		s.replicas = s.bus.ExternalReplicas()
		s.logger.Warn("the bus is an external NATS: its accounts decide what each connection may do, " +
			"so agents are not confined to their own subjects there")
		return s.bus.WaitJetStream(ctx, 5*time.Minute, func(err error) {
			s.logger.Warn("waiting for the external NATS's JetStream", "err", err)
		})
	}
	_, routePort, _ := net.SplitHostPort(cc.Listen)
	busCfg := bus.Config{
		DataDir: filepath.Join(dataDir, "nats"), Listen: cc.NATSListen,
		Logger: s.logger.With("component", "nats"), Secret: s.secret,
		TLS: &bus.TLS{Server: ca.ServerConfig(cert)},
		Cluster: &bus.Cluster{Name: cc.Name, Node: hostName(cc.Node), Listen: cc.Listen,
			Advertise: net.JoinHostPort(cc.Advertise, routePort), Routes: cc.Routes},
		ClientAdvertise: advertised(cc.Advertise, cc.NATSListen),
	}
	s.replicas = busCfg.Replicas()
	s.bus, err = bus.Start(ctx, busCfg)
	if err != nil {
		return err
	}
	return s.bus.WaitJetStream(ctx, 5*time.Minute, func(err error) {
		s.logger.Warn("waiting for the cluster's JetStream quorum", "err", err)
	})
}

// advertised is host with the port of listen.
func advertised(host, listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// clusterView is GET /shoal/v1/cluster: the nodes, the leader, and the
// replication of every stream and bucket.
type clusterView struct {
	Name   string `json:"name,omitempty"`
	Node   string `json:"node,omitempty"`
	Leader string `json:"leader,omitempty"`
	// External: the cluster runs on a NATS someone else runs (--nats); Meta
	// then lists its servers as this node's connection knows them, not
	// JetStream's meta group, which only that NATS's system account sees.
	External bool               `json:"external,omitempty"`
	Meta     bus.Meta           `json:"jetstream"`
	Streams  []streamView       `json:"streams"`
	Hosts    []fleet.HostStatus `json:"hosts,omitempty"`
}

type streamView struct {
	Name     string     `json:"name"`
	Replicas int        `json:"replicas"`
	Leader   string     `json:"leader,omitempty"`
	Peers    []bus.Peer `json:"peers,omitempty"`
	Messages uint64     `json:"messages"`
	Bytes    uint64     `json:"bytes"`
}

// serveCluster answers GET /shoal/v1/cluster.
func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) {
	v := clusterView{Meta: s.bus.Meta(), External: s.bus.External(), Streams: []streamView{}}
	if cc := s.cfg.Cluster; cc != nil {
		v.Name, v.Node = cc.Name, hostName(cc.Node)
	}
	if m := s.managed; m != nil {
		if m.lease != nil {
			v.Leader = m.lease.leader()
		} else {
			v.Leader = v.Node
		}
		if m.cluster != nil {
			v.Hosts = m.cluster.Hosts()
		}
	}
	// While the cluster elects new stream leaders, stream listings wait:
	// the status answers anyway, with the streams it could read.
	sctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for info := range s.bus.JetStream().ListStreams(sctx).Info() {
		sv := streamView{Name: info.Config.Name, Replicas: info.Config.Replicas,
			Messages: info.State.Msgs, Bytes: info.State.Bytes}
		if c := info.Cluster; c != nil {
			sv.Leader = c.Leader
			for _, p := range c.Replicas {
				sv.Peers = append(sv.Peers, bus.Peer{Name: p.Name, Current: p.Current, Offline: p.Offline, Active: p.Active, Lag: p.Lag})
			}
		}
		v.Streams = append(v.Streams, sv)
	}
	slices.SortFunc(v.Streams, func(a, b streamView) int { return strings.Compare(a.Name, b.Name) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// retrying runs open, a step of the start that makes JetStream streams and
// buckets. Alone it runs once, with ctx. In a cluster it is tried again while
// it fails for up to five minutes: nodes that start together create the same
// streams at once, and JetStream leaves some of those requests unanswered
// (the client's wait runs out) while the others' are applied. So each try
// has its own short deadline, doubled at every try up to bus.APITimeout: an
// unanswered request costs seconds, not the whole API timeout, and a loaded
// machine still gets the time it needs.
func (s *Server) retrying(ctx context.Context, what string, open func(ctx context.Context) error) error {
	if s.cfg.Cluster == nil {
		return open(ctx)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for wait := firstTryTimeout; ; wait = min(2*wait, bus.APITimeout) {
		tctx, cancel := context.WithTimeout(ctx, wait)
		err := open(tctx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		s.logger.Warn("opening "+what+" in the cluster; trying again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// firstTryTimeout is the deadline of the first try of a step of the start in
// a cluster.
const firstTryTimeout = 5 * time.Second

// denyEgress keeps environments off the addresses of --egress-deny and, in
// a cluster, off the other machines of the cluster that this node knows
// (its routes, the external NATS servers, its own advertised address):
// egress reaches the network, and those machines serve the bus, the API
// and the metrics. Hosts that join later are added as they are heard of
// (followHosts).
func (s *Server) denyEgress() (err error) {
	var urls []string
	if cc := s.cfg.Cluster; cc != nil {
		urls = append([]string{cc.Advertise}, cc.Routes...)
		if cc.External != nil {
			urls = append(urls, cc.External.URLs...)
		}
	}
	s.deny, err = envnet.NewClusterDeny(s.cfg.EgressDeny, urls, s.logger)
	return err
}

// followHosts adds each host of the cluster, at its first heartbeat, to
// what the environments here do not reach (denyEgress).
func (s *Server) followHosts() error {
	if s.deny == nil || s.cfg.Cluster == nil {
		return nil
	}
	var err error
	s.hostAddrs, err = fleet.FollowHostAddrs(s.bus.Conn(), func(addr string) {
		if err := s.deny.Add(addr); err != nil {
			s.logger.Warn("environments may reach a host of the cluster", "addr", addr, "err", err)
		}
	})
	return err
}
