package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// statusJSON is GET /shoal/v1/cluster as node answers it, from a cluster
// whose meta leader is node1 and whose node3 is behind.
func statusJSON(node string) string {
	peers := map[string]string{
		"node1": `{"name":"node1","current":true},{"name":"node2","current":true},{"name":"node3","current":false,"lag":9}`,
		// A follower knows only the leader's state besides its own.
		"node2": `{"name":"node2","current":true},{"name":"node1","current":true},{"name":"node3","current":false}`,
	}[node]
	if node == "ext" { // on an external NATS: its servers, as the connection knows them
		return `{"node":"node1","leader":"node3","external":true,"jetstream":{"cluster":"acme","size":2,"peers":[
		  {"name":"tls://10.0.0.12:4222","current":true},{"name":"tls://10.0.0.11:4222"}]},
		"streams":[{"name":"SHOAL_USAGE","replicas":3,"leader":"nats2","peers":[{"name":"nats1","current":true},{"name":"nats3","current":true}],"messages":7}]}`
	}
	if node == "node3" { // alone: no quorum, no leaders, no stream can be listed
		return `{"name":"demo","node":"node3","jetstream":{"cluster":"demo","size":3,"peers":[
		  {"name":"node3","current":true},{"name":"node1","offline":true},{"name":"node2"}]},"streams":[]}`
	}
	return `{"name":"demo","node":"` + node + `","leader":"node2",
	"jetstream":{"cluster":"demo","leader":"node1","size":3,"peers":[` + peers + `]},
	"streams":[
	  {"name":"KV_shoal_registry","replicas":3,"leader":"node1","peers":[{"name":"node2","current":true},{"name":"node3","current":false,"lag":4}],"messages":5},
	  {"name":"SHOAL_USAGE","replicas":3,"leader":"node2","peers":[{"name":"node1","current":true},{"name":"node3","current":true}],"messages":300}],
	"hosts":[{"name":"host4","zone":"us-east-1a","vcpu":8,"memory_mb":16384,"used_vcpu":2,"used_memory_mb":4096,
	  "instances":1,"classic_environments":3,"classic_memory_mb":768,"last_heartbeat":"2026-12-07T21:00:00.4Z","state":"up"}]}`
}

func TestWriteClusterStatus(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 1, 0, time.UTC)
	tests := []struct {
		name, node string
		want       string
	}{
		{name: "asked of the meta leader", node: "node1", want: `cluster demo, answered by node1; leader node2; JetStream meta leader node1

NODE   CURRENT  OFFLINE  LAG
node1  true     false    0
node2  true     false    0
node3  false    false    9

STREAM / BUCKET    REPLICAS  LEADER  REPLICAS CURRENT     MESSAGES
KV_shoal_registry  3         node1   2/3 (behind: node3)  5
SHOAL_USAGE        3         node2   3/3                  300

HOST   ZONE        STATE  VCPU USED  MEMORY USED    INSTANCES  ON-DEMAND/PROVISIONED  LAST HEARTBEAT
host4  us-east-1a  up     2/8        4096/16384 MB  1          3 (768 MB)             600ms ago
`},
		{name: "asked of a follower, which cannot know how current node3 is", node: "node2",
			want: `cluster demo, answered by node2; leader node2; JetStream meta leader node1

NODE   CURRENT  OFFLINE  LAG
node2  true     false    0
node1  true     false    0
node3  -        false    -
(how current each node is, only the meta leader node1 knows: ask it for the whole view)

STREAM / BUCKET    REPLICAS  LEADER  REPLICAS CURRENT     MESSAGES
KV_shoal_registry  3         node1   2/3 (behind: node3)  5
SHOAL_USAGE        3         node2   3/3                  300

HOST   ZONE        STATE  VCPU USED  MEMORY USED    INSTANCES  ON-DEMAND/PROVISIONED  LAST HEARTBEAT
host4  us-east-1a  up     2/8        4096/16384 MB  1          3 (768 MB)             600ms ago
`},
		{name: "asked of the only node up", node: "node3",
			want: `cluster demo, answered by node3; leader none; JetStream meta leader none
JetStream has no meta leader: fewer than a majority of the nodes are up, or they cannot reach each other. Invocations go on; changes and scaling wait until a majority is back.

NODE   CURRENT  OFFLINE  LAG
node3  true     false    0
node1  -        true     -
node2  -        false    -

STREAM / BUCKET  REPLICAS  LEADER  REPLICAS CURRENT  MESSAGES
`},
		{name: "on an external NATS, which has no meta group of the nodes' own", node: "ext",
			want: `cluster on the external NATS cluster acme, answered by node1; leader node3
(JetStream's meta group is for that NATS's system account to see)

NATS SERVER           CONNECTED
tls://10.0.0.12:4222  true
tls://10.0.0.11:4222  false

STREAM / BUCKET  REPLICAS  LEADER  REPLICAS CURRENT  MESSAGES
SHOAL_USAGE      3         nats2   3/3               7
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st clusterStatus
			if err := json.Unmarshal([]byte(statusJSON(tt.node)), &st); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := writeClusterStatus(&b, st, now); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteInstancesHosts: in a cluster, each instance shows its host; alone,
// there is no HOST column.
func TestWriteInstancesHosts(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 30, 0, time.UTC)
	launched := now.Add(-30 * time.Second)
	in := fleetInstance{ID: "i-1", CapacityProvider: "cp1", Type: "c6i.large", Zone: "us-east-1a", State: "running",
		MemoryMB: 4096, LaunchedAt: launched, RotationDue: launched.Add(14 * 24 * time.Hour)}
	tests := []struct {
		name string
		host string
		want string
	}{
		{name: "alone", want: `INSTANCE  CAPACITY PROVIDER  TYPE       ZONE        STATE    AGE  LAUNCHED (UTC)       ROTATION DUE  CPU  MEMORY          ENVIRONMENTS  IN FLIGHT
i-1       cp1                c6i.large  us-east-1a  running  30s  2026-12-07 21:00:00  in 13d23h     0 %  0 % of 4096 MB  0             0
`},
		{name: "on a host of a cluster", host: "host4", want: `INSTANCE  CAPACITY PROVIDER  TYPE       HOST   ZONE        STATE    AGE  LAUNCHED (UTC)       ROTATION DUE  CPU  MEMORY          ENVIRONMENTS  IN FLIGHT
i-1       cp1                c6i.large  host4  us-east-1a  running  30s  2026-12-07 21:00:00  in 13d23h     0 %  0 % of 4096 MB  0             0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := in
			in.Host = tt.host
			var b strings.Builder
			if err := writeInstances(&b, []fleetInstance{in}, now); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
