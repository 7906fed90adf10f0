package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/netlab"
	"github.com/shoal-dev/shoal/internal/poll"
)

// machine is one test machine of a cluster test: a network namespace and
// the shoal process it runs (a node's `shoal up`, or `shoal host`).
type machine struct {
	m       *netlab.Machine
	name    string
	zone    string
	dataDir string
	args    []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	output *strings.Builder
	// exited is closed once the process has exited and been waited for,
	// by the one goroutine that waits for it (start's): two concurrent
	// waits for one process can leave one waiting for ever.
	exited chan struct{}
}

// endpoint is the machine's Lambda API (nodes only).
func (mc *machine) endpoint() string { return "http://" + mc.m.IP + ":9000" }

// start runs the machine's shoal process and waits for want in its output.
func (mc *machine) start(t *testing.T, want string) {
	t.Helper()
	cmd := mc.m.Command(shoalBin, mc.args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// The output pipe closes a while after the process ends, even if one of
	// its children lives on with a copy of it.
	cmd.WaitDelay = 5 * time.Second
	out := &strings.Builder{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	mc.mu.Lock()
	mc.cmd, mc.output, mc.exited = cmd, out, exited
	mc.mu.Unlock()
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			mc.mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mc.mu.Unlock()
			if !once && strings.Contains(sc.Text(), want) {
				once = true
				close(up)
			}
		}
	}()
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	select {
	case <-up:
	case <-exited:
		t.Fatalf("%s exited: %v\n%s", mc.name, waitErr, mc.log())
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s did not come up:\n%s", mc.name, mc.log())
	}
}

func (mc *machine) log() string {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.output == nil {
		return ""
	}
	return mc.output.String()
}

// kill sends SIGKILL to every process of the machine, and to its shoal
// process by its pid too: while one of its threads sets up an
// environment's namespace, it may not be listed in the machine's.
func (mc *machine) kill(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", mc.m.Name).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", mc.m.Name, err)
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	mc.mu.Lock()
	cmd, exited := mc.cmd, mc.exited
	mc.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-exited
	}
}

// compactLog folds runs of log lines that carry the same message (slog's
// msg="...") into their first line and a count, so that a process retrying
// one thing for minutes does not hide what came before.
func compactLog(log string) string {
	msgOf := func(line string) string {
		if i := strings.Index(line, " msg="); i >= 0 {
			line = line[i:]
			if j := strings.Index(line[1:], " err="); j >= 0 {
				return line[:j+1]
			}
			return line
		}
		return line
	}
	var b strings.Builder
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	for i := 0; i < len(lines); {
		j := i + 1
		for j < len(lines) && msgOf(lines[j]) == msgOf(lines[i]) {
			j++
		}
		b.WriteString(lines[i] + "\n")
		if j-i > 1 {
			fmt.Fprintf(&b, "    … the same message %d more times, the last: %s\n", j-i-1, lines[j-1])
		}
		i = j
	}
	return b.String()
}

// lastWarnings returns the last n distinct messages of a log's WARN and
// ERROR lines (and of a panic), shortened.
func lastWarnings(log string, n int) []string {
	var out []string
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		l := lines[i]
		if !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") && !strings.HasPrefix(l, "panic:") {
			continue
		}
		if i := strings.Index(l, " level="); i >= 0 {
			l = l[i+1:]
		}
		l = l[:min(len(l), 200)]
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// getJSON reads a shoal endpoint of a node with a client that signs.
func getJSON(c *http.Client, endpoint, path string, v any) error {
	resp, err := c.Get(endpoint + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

type clusterFleet struct {
	Hosts []struct {
		Name  string `json:"name"`
		Zone  string `json:"zone"`
		State string `json:"state"`
	} `json:"hosts"`
	Instances []struct {
		ID           string `json:"id"`
		Host         string `json:"host"`
		Zone         string `json:"zone"`
		State        string `json:"state"`
		Environments []struct {
			Function, Version, State string
		} `json:"environments"`
	} `json:"instances"`
}

// running maps each running instance to its zone.
func (f clusterFleet) running() map[string]string {
	out := map[string]string{}
	for _, in := range f.Instances {
		if in.State == "running" {
			out[in.ID] = in.Zone
		}
	}
	return out
}

// readyHosts maps each host that runs a ready environment of function to its zone.
func (f clusterFleet) readyHosts(function string) map[string]string {
	out := map[string]string{}
	for _, in := range f.Instances {
		for _, e := range in.Environments {
			if in.State == "running" && e.Function == function && e.State == "ready" {
				out[in.Host] = in.Zone
			}
		}
	}
	return out
}

// TestCluster runs shoal on four machines: three nodes of a cluster and one
// host. A Managed Instances function spreads over three zones; load runs
// through two nodes' APIs while a machine, then the leader, is killed.
func TestCluster(t *testing.T) {
	lab := netlab.New(t)
	room := []string{"--vcpus", "8", "--memory", "32768"}
	// The host has more room than node1 in the same zone: the instance of
	// that zone lands there.
	nodes, hostM, keys := bootCluster(t, lab, [3][]string{room, room, room}, []string{"--vcpus", "16", "--memory", "65536"})

	c1, c2 := newClient(nodes[0].endpoint(), keys.creds), newClient(nodes[1].endpoint(), keys.creds)
	s1 := &shoal{client: c1, endpoint: nodes[0].endpoint(), keys: keys, http: keys.http}
	cpArn := createCapacityProvider(t, s1, "cp-cluster")
	createManagedFn(t, s1, "spread", cpArn, 4)
	createGoFn(t, s1, "plain")

	// A function reaches the network (a machine outside the cluster) but
	// none of the cluster's other nodes: not their API, bus or routes; nor
	// the invoke wire of any machine's classic agent. host4 joined after
	// the nodes started: it is denied once it is heard of.
	outside := lab.Machine().Serve(7000, "outside")
	createSourceFn(t, s1, "prober", types.RuntimePython311, "app.handler", map[string]string{"app.py": hostilePy})
	var targets []string
	for _, n := range nodes[1:] {
		for _, port := range []string{"9000", "4222", "6222"} {
			targets = append(targets, net.JoinHostPort(n.m.IP, port))
		}
	}
	var classic classicFleet
	poll.Until(t, time.Minute, func() error {
		if err := getJSON(keys.http, nodes[0].endpoint(), "/shoal/v1/fleet", &classic); err != nil {
			return err
		}
		for _, a := range classic.Classic {
			if a.Host == "host4" && a.InvokeAddr != "" {
				return nil
			}
		}
		return fmt.Errorf("no classic agent of host4 among %+v", classic.Classic)
	})
	for _, a := range classic.Classic {
		targets = append(targets, a.InvokeAddr)
	}
	event, _ := json.Marshal(map[string]any{"tcp": targets, "outside": outside})
	probe, err := c1.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("prober"), Payload: event})
	if err != nil {
		t.Fatal(err)
	}
	var r hostileReport
	if err := json.Unmarshal(probe.Payload, &r); err != nil || probe.FunctionError != nil {
		t.Fatalf("the probing function answered %s (%v)", probe.Payload, err)
	}
	for target, reached := range r.TCP {
		if reached {
			t.Errorf("a function on node1 reached %s, a machine of the cluster", target)
		}
	}
	if len(r.TCP) != len(targets) {
		t.Errorf("the probing function tried %d of %d addresses", len(r.TCP), len(targets))
	}
	if r.Outside != "outside" {
		t.Errorf("a function on node1 did not reach %s, outside the cluster: %q", outside, r.Outside)
	}
	if _, err := c1.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("plain"),
		Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	v, err := c1.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("spread")})
	if err != nil {
		t.Fatal(err)
	}
	ver := aws.ToString(v.Version)
	// The version is read, and becomes Active, through another node.
	waitVersionState(t, &shoal{client: c2}, "spread", ver, types.StateActive)
	var fv clusterFleet
	poll.Until(t, time.Minute, func() error {
		if err := getJSON(keys.http, nodes[1].endpoint(), "/shoal/v1/fleet", &fv); err != nil {
			return err
		}
		hosts := fv.readyHosts("spread")
		seen := map[string]bool{}
		for _, z := range hosts {
			seen[z] = true
		}
		if len(hosts) < 3 || len(seen) < 3 {
			return fmt.Errorf("ready environments on hosts %v, want 3 hosts in 3 zones", hosts)
		}
		return nil
	})
	t.Logf("instances on hosts %v", fv.readyHosts("spread"))
	if _, ok := fv.readyHosts("spread")["host4"]; !ok {
		t.Fatalf("no instance on host4, the host with the most room in %s: %v", hostM.zone, fv.readyHosts("spread"))
	}

	// Load through node 1 and node 2 at once.
	type outcome struct {
		at, end   time.Time // when it was sent, and answered
		requestID string
		status    int // 0: no answer (the front is gone)
		err       error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     atomic.Bool
		loaders  sync.WaitGroup
	)
	for i, n := range nodes[:2] {
		client := newClient(n.endpoint(), keys.creds, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
		loaders.Go(func() {
			for k := 0; !stop.Load(); k++ {
				start := time.Now()
				out, err := client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("spread"),
					Qualifier: aws.String(ver), Payload: []byte(fmt.Sprintf(`{"front":%d,"n":%d}`, i+1, k))})
				o := outcome{at: start, end: time.Now(), err: err, status: 200}
				var re *awshttp.ResponseError
				switch {
				case err == nil && out.FunctionError != nil:
					o.err = fmt.Errorf("function error %s", out.Payload)
				case err == nil:
					o.requestID, _ = awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
				case errors.As(err, &re):
					o.status = re.HTTPStatusCode()
				default:
					o.status = 0 // the front did not answer
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if o.status == 0 {
					time.Sleep(50 * time.Millisecond) // a dead front: keep trying, bounded
				}
			}
		})
	}
	defer func() { stop.Store(true); loaders.Wait() }()
	poll.Until(t, time.Minute, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(outcomes) < 50 {
			return fmt.Errorf("%d invocations so far", len(outcomes))
		}
		return nil
	})

	// Kill every process of the host machine: its instances are replaced.
	killHost := time.Now()
	hostM.kill(t)
	var noticed time.Time
	poll.Until(t, time.Minute, func() error {
		var f clusterFleet
		if err := getJSON(keys.http, nodes[1].endpoint(), "/shoal/v1/fleet", &f); err != nil {
			return err
		}
		for _, h := range f.Hosts {
			if h.Name == "host4" && h.State != "lost" {
				return fmt.Errorf("host4 is %s", h.State)
			}
		}
		for _, in := range f.Instances {
			if in.Host == "host4" {
				return fmt.Errorf("instance %s of host4 is still listed (%s)", in.ID, in.State)
			}
		}
		if noticed.IsZero() {
			noticed = time.Now()
		}
		running, zones := f.running(), map[string]bool{}
		for _, z := range running {
			zones[z] = true
		}
		if len(running) < 3 || len(zones) < 3 {
			return fmt.Errorf("running instances %v, want 3 in 3 zones", running)
		}
		return nil
	})
	t.Logf("host4 killed; its loss noticed after %v; its instances replaced after %v",
		noticed.Sub(killHost).Round(time.Millisecond), time.Since(killHost).Round(time.Millisecond))

	// Kill the leader's machine: another node leads within 10 s, and
	// scaling goes on.
	var cv struct {
		Leader string `json:"leader"`
	}
	if err := getJSON(keys.http, nodes[0].endpoint(), "/shoal/v1/cluster", &cv); err != nil {
		t.Fatal(err)
	}
	var leaderM *machine
	for _, n := range nodes {
		if strings.ReplaceAll(n.m.IP, ".", "-") == cv.Leader {
			leaderM = n
		}
	}
	if leaderM == nil {
		t.Fatalf("leader %q is no node", cv.Leader)
	}
	killLeader := time.Now()
	leaderM.kill(t)
	var survivor *machine
	for _, n := range nodes {
		if n != leaderM {
			survivor = n
			break
		}
	}
	var newLeader string
	poll.Until(t, 30*time.Second, func() error {
		if err := getJSON(keys.http, survivor.endpoint(), "/shoal/v1/cluster", &cv); err != nil {
			return err
		}
		if cv.Leader == "" || cv.Leader == strings.ReplaceAll(leaderM.m.IP, ".", "-") {
			return fmt.Errorf("leader %q", cv.Leader)
		}
		newLeader = cv.Leader
		return nil
	})
	took := time.Since(killLeader)
	t.Logf("leader %s killed; %s leads after %v", leaderM.name, newLeader, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("another node took the lead after %v, want within 10 s", took)
	}
	poll.Until(t, 2*time.Minute, func() error {
		var f clusterFleet
		if err := getJSON(keys.http, survivor.endpoint(), "/shoal/v1/fleet", &f); err != nil {
			return err
		}
		dead := strings.ReplaceAll(leaderM.m.IP, ".", "-")
		for _, in := range f.Instances {
			if in.Host == dead {
				return fmt.Errorf("instance %s of the dead leader is still listed", in.ID)
			}
		}
		if running := f.running(); len(running) < 3 {
			return fmt.Errorf("running instances %v, want 3", running)
		}
		if hosts := f.readyHosts("spread"); len(hosts) < 2 {
			return fmt.Errorf("ready environments on hosts %v", hosts)
		}
		return nil
	})
	leaderGone := time.Now()
	poll.Until(t, time.Minute, func() error { // some load on the survivors alone
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.at.After(leaderGone) && o.status != 0 {
				n++
			}
		}
		if n < 20 {
			return fmt.Errorf("%d invocations since the leader's instances were replaced", n)
		}
		return nil
	})
	stop.Store(true)
	loaders.Wait()

	// Every invocation a living front accepted after a loss was noticed
	// succeeded, or was throttled, unless the next loss caught it in flight.
	completed := map[string]bool{}
	var failedAfter, throttled, beforeLoss, noAnswer int
	for _, o := range outcomes {
		switch {
		case o.status == 200 && o.err == nil:
			completed[o.requestID] = true
		case o.status == 429:
			throttled++
		case o.status == 0:
			noAnswer++
		// In flight when the leader's machine died, it may fail with it.
		case o.at.After(noticed) && o.end.Before(killLeader), o.at.After(leaderGone):
			failedAfter++
			t.Errorf("an invocation accepted after a loss failed: %d %v", o.status, o.err)
		default:
			beforeLoss++
		}
	}
	t.Logf("%d invocations: %d succeeded, %d throttled, %d failed while a loss was not yet noticed, %d not answered by a dead front",
		len(outcomes), len(completed), throttled, beforeLoss, noAnswer)
	if len(completed) == 0 {
		t.Fatal("no invocation succeeded")
	}

	// The dead machines come back (their journals hold what their agents
	// answered last); then everything is there, and the ledger holds every
	// completed invocation once.
	leaderM.start(t, "shoal is up")
	hostM.start(t, "is up in zone")
	for _, check := range []func() error{
		func() error {
			_, err := c2.GetAlias(ctx(t), &lambda.GetAliasInput{FunctionName: aws.String("plain"), Name: aws.String("live")})
			return err
		},
		func() error {
			_, err := c2.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("plain"), Qualifier: aws.String("1")})
			return err
		},
		func() error {
			_, err := c2.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("spread"), Qualifier: aws.String(ver)})
			return err
		},
		func() error {
			_, err := c2.GetCapacityProvider(ctx(t), &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("cp-cluster")})
			return err
		},
	} {
		if err := check(); err != nil {
			t.Errorf("after the losses: %v", err)
		}
	}
	poll.Until(t, 2*time.Minute, func() error {
		events, err := ledgerSince(keys.http, survivor.endpoint(), killHost.Add(-10*time.Minute))
		if err != nil {
			return err
		}
		count := map[string]int{}
		for _, ev := range events {
			if ev.Kind == meter.KindInvocation && ev.Function == "spread" {
				count[ev.RequestID]++
			}
		}
		var missing, twice int
		for id := range completed {
			switch count[id] {
			case 0:
				missing++
			case 1:
			default:
				twice++
			}
		}
		if missing > 0 || twice > 0 {
			return fmt.Errorf("of %d completed invocations the ledger misses %d and holds %d more than once", len(completed), missing, twice)
		}
		return nil
	})
}
