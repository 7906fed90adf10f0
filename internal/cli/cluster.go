package cli

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// hostView is a host as GET /shoal/v1/fleet and /shoal/v1/cluster show it.
type hostView struct {
	Name          string    `json:"name"`
	Zone          string    `json:"zone"`
	VCPU          int       `json:"vcpu"`
	MemoryMB      int       `json:"memory_mb"`
	UsedVCPU      int       `json:"used_vcpu"`
	UsedMemoryMB  int       `json:"used_memory_mb"`
	Instances     int       `json:"instances"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	State         string    `json:"state"`
	// The on-demand and provisioned environments the host runs.
	ClassicEnvironments int `json:"classic_environments"`
	ClassicMemoryMB     int `json:"classic_memory_mb"`
}

// writeHosts prints the hosts of a cluster.
func writeHosts(w io.Writer, hosts []hostView, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tZONE\tSTATE\tVCPU USED\tMEMORY USED\tINSTANCES\tON-DEMAND/PROVISIONED\tLAST HEARTBEAT")
	for _, h := range hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d/%d MB\t%d\t%d (%d MB)\t%s ago\n", h.Name, h.Zone, h.State, h.UsedVCPU, h.VCPU,
			h.UsedMemoryMB, h.MemoryMB, h.Instances, h.ClassicEnvironments, h.ClassicMemoryMB,
			now.Sub(h.LastHeartbeat).Round(100*time.Millisecond))
	}
	return tw.Flush()
}

type clusterStatus struct {
	Name     string `json:"name"`
	Node     string `json:"node"`
	Leader   string `json:"leader"`
	External bool   `json:"external"`
	Meta     struct {
		Cluster string `json:"cluster"`
		Leader  string `json:"leader"`
		Size    int    `json:"size"`
		Peers   []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
			Lag     uint64 `json:"lag"`
		} `json:"peers"`
	} `json:"jetstream"`
	Streams []struct {
		Name     string `json:"name"`
		Replicas int    `json:"replicas"`
		Leader   string `json:"leader"`
		Peers    []struct {
			Name    string `json:"name"`
			Current bool   `json:"current"`
			Offline bool   `json:"offline"`
			Lag     uint64 `json:"lag"`
		} `json:"peers"`
		Messages uint64 `json:"messages"`
	} `json:"streams"`
	Hosts []hostView `json:"hosts"`
}

// newClusterCmd is `shoal cluster status`.
func newClusterCmd() *cobra.Command {
	c := &cobra.Command{Use: "cluster", Short: "Look at a shoal cluster"}
	var cf clientFlags
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster's nodes, its leader, and the replication of every stream and bucket",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := cf.validate(); err != nil {
				return err
			}
			hc, err := cf.httpClient(ctxOf(c), 0)
			if err != nil {
				return err
			}
			var st clusterStatus
			if err := getShoal(ctxOf(c), hc, cf.endpoint, "/shoal/v1/cluster", "cluster", &st); err != nil {
				return err
			}
			if cf.json() {
				return printJSON(c.OutOrStdout(), st)
			}
			return writeClusterStatus(c.OutOrStdout(), st, time.Now())
		},
	}
	cf.register(status)
	c.AddCommand(status)
	return c
}

// writeClusterStatus prints the cluster as a node sees it. How current the
// other nodes' copies of JetStream's meta data are is known to the meta
// leader only: asked of another node, those are shown as "-".
func writeClusterStatus(w io.Writer, st clusterStatus, now time.Time) error {
	if st.External {
		if err := writeExternalNATS(w, st); err != nil {
			return err
		}
		return writeStreamsAndHosts(w, st, now)
	}
	name := st.Name
	if name == "" {
		name = "(one node, no cluster)"
	}
	leader, meta := cmp.Or(st.Leader, "none"), cmp.Or(st.Meta.Leader, "none")
	fmt.Fprintf(w, "cluster %s, answered by %s; leader %s; JetStream meta leader %s\n", name, st.Node, leader, meta)
	if st.Meta.Leader == "" && st.Name != "" {
		fmt.Fprintln(w, "JetStream has no meta leader: fewer than a majority of the nodes are up, or they cannot reach each other."+
			" Invocations go on; changes and scaling wait until a majority is back.")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCURRENT\tOFFLINE\tLAG")
	unknown := false
	for _, p := range st.Meta.Peers {
		current, lag := fmt.Sprint(p.Current), fmt.Sprint(p.Lag)
		if st.Node != st.Meta.Leader && p.Name != st.Node && p.Name != st.Meta.Leader {
			current, lag, unknown = "-", "-", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", p.Name, current, p.Offline, lag)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if unknown && st.Meta.Leader != "" {
		fmt.Fprintf(w, "(how current each node is, only the meta leader %s knows: ask it for the whole view)\n", st.Meta.Leader)
	}
	return writeStreamsAndHosts(w, st, now)
}

// writeExternalNATS heads the status of a cluster on an external NATS: its
// nodes do not run NATS, so there is no meta group of theirs to show; the
// NATS servers are listed as the answering node's connection knows them.
func writeExternalNATS(w io.Writer, st clusterStatus) error {
	on := "an external NATS"
	if st.Meta.Cluster != "" {
		on = "the external NATS cluster " + st.Meta.Cluster
	}
	fmt.Fprintf(w, "cluster on %s, answered by %s; leader %s\n", on, st.Node, cmp.Or(st.Leader, "none"))
	fmt.Fprintln(w, "(JetStream's meta group is for that NATS's system account to see)")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NATS SERVER\tCONNECTED")
	for _, p := range st.Meta.Peers {
		fmt.Fprintf(tw, "%s\t%v\n", p.Name, p.Current)
	}
	return tw.Flush()
}

// writeStreamsAndHosts prints the replication of every stream and bucket,
// then the hosts.
func writeStreamsAndHosts(w io.Writer, st clusterStatus, now time.Time) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM / BUCKET\tREPLICAS\tLEADER\tREPLICAS CURRENT\tMESSAGES")
	for _, s := range st.Streams {
		current := 1
		var lagging []string
		for _, p := range s.Peers {
			if p.Current && !p.Offline {
				current++
			} else {
				lagging = append(lagging, p.Name)
			}
		}
		if s.Leader == "" {
			current = 0
		}
		state := fmt.Sprintf("%d/%d", current, s.Replicas)
		if len(lagging) > 0 {
			state += " (behind: " + strings.Join(lagging, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\n", s.Name, s.Replicas, s.Leader, state, s.Messages)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.Hosts) > 0 {
		fmt.Fprintln(w)
		return writeHosts(w, st.Hosts, now)
	}
	return nil
}
