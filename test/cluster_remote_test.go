package test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/netlab"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// classicFleet is what GET /shoal/v1/fleet shows of the cluster's classic
// agents: the hosts' on-demand and provisioned environments.
type classicFleet struct {
	Classic []struct {
		ID           string `json:"id"`
		Host         string `json:"host"`
		InvokeAddr   string `json:"invoke_addr"`
		Environments []struct {
			ID       string `json:"id"`
			Function string `json:"function"`
			InitType string `json:"init_type"`
			State    string `json:"state"`
		} `json:"environments"`
	} `json:"classic"`
}

// envHosts maps each environment of function with the init type, in state,
// to the host whose agent runs it.
func (f classicFleet) envHosts(function, initType, state string) map[string]string {
	out := map[string]string{}
	for _, a := range f.Classic {
		for _, e := range a.Environments {
			if e.Function == function && e.InitType == initType && e.State == state {
				out[e.ID] = a.Host
			}
		}
	}
	return out
}

// bootCluster starts three nodes and a host on machines of lab, each with
// its extra flags, and returns them once all are up. Every node takes the
// same API keys: one credentials file, given to all. When the test fails,
// its cleanup logs each node's view of the cluster and the end of each
// machine's log, then a summary of each machine's last warnings.
func bootCluster(t *testing.T, lab *netlab.Lab, nodeFlags [3][]string, hostFlags []string) (nodes []*machine, host *machine, keys apiKeys) {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "cluster-secret")
	credsFile := filepath.Join(dir, "credentials")
	if _, err := sigv4.EnsureCredentialsFile(credsFile); err != nil {
		t.Fatal(err)
	}
	keys = readKeys(t, credsFile)
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for i := range 3 {
		nodes = append(nodes, &machine{m: lab.Machine(), name: fmt.Sprintf("node%d", i+1), zone: zones[i],
			dataDir: filepath.Join(dir, fmt.Sprintf("node%d", i+1))})
	}
	host = &machine{m: lab.Machine(), name: "host4", zone: zones[0], dataDir: filepath.Join(dir, "host4")}
	all := append(append([]*machine(nil), nodes...), host)
	t.Cleanup(func() {
		show := t.Failed() || os.Getenv("SHOAL_TEST_LOG") != ""
		var status []string
		if show { // each live node's view of the cluster, before the kill
			for _, mc := range nodes {
				raw := json.RawMessage("null")
				err := getJSON(keys.http, mc.endpoint(), "/shoal/v1/cluster", &raw)
				line := fmt.Sprintf("%s %s: %s %v", mc.name, mc.m.IP, raw, err)
				status = append(status, line[:min(len(line), 400)])
			}
		}
		for _, mc := range all {
			mc.kill(t)
		}
		if show {
			var last []string
			for _, mc := range all {
				log := compactLog(mc.log())
				if len(log) > 20000 {
					log = log[len(log)-20000:]
				}
				t.Logf("%s's log (the end, repeated messages folded):\n%s", mc.name, log)
				last = append(last, mc.name+": "+strings.Join(lastWarnings(mc.log(), 3), " | "))
			}
			// Last, so that the end of a long output says what went wrong.
			t.Logf("summary:\n%s\n%s", strings.Join(status, "\n"), strings.Join(last, "\n"))
		}
	})
	var join []string
	for i, n := range nodes {
		var routes []string
		for j, o := range nodes {
			if j != i {
				routes = append(routes, "nats-route://"+o.m.IP+":6222")
			}
		}
		join = append(join, "nats://"+n.m.IP+":4222")
		n.args = append([]string{"up", "--data", n.dataDir, "--listen", n.m.IP + ":9000",
			"--cluster-name", "lab", "--cluster-listen", n.m.IP + ":6222", "--routes", strings.Join(routes, ","),
			"--nats-listen", n.m.IP + ":4222", "--advertise", n.m.IP, "--zone", n.zone,
			"--cluster-secret", secret, "--credentials", credsFile, "--log-level", "info"}, nodeFlags[i]...)
	}
	host.args = append([]string{"host", "--join", strings.Join(join, ","), "--cluster-secret", secret,
		"--name", "host4", "--zone", host.zone, "--advertise", host.m.IP, "--data", host.dataDir,
		"--log-level", "info"}, hostFlags...)

	// The first node writes the secret; the others are given a copy (the
	// same file here). A node is up once JetStream has its quorum: start
	// them together.
	var wg sync.WaitGroup
	for i, n := range nodes {
		if i == 1 {
			poll.Until(t, time.Minute, func() error {
				_, err := os.Stat(secret)
				return err
			})
		}
		wg.Go(func() { n.start(t, "shoal is up") })
	}
	wg.Wait()
	host.start(t, "is up in zone")
	return nodes, host, keys
}

// distinct counts the hosts in m's values.
func distinct(m map[string]string) int {
	seen := map[string]bool{}
	for _, h := range m {
		seen[h] = true
	}
	return len(seen)
}

// hostNameOf is a node's name as a host of the cluster.
func hostNameOf(mc *machine) string { return strings.ReplaceAll(mc.m.IP, ".", "-") }

// TestClusterRemoteEnvironments: on-demand and Provisioned Concurrency
// environments run on hosts other than the front that invokes them. Node 1
// is no host, so every environment it starts runs elsewhere; node 2 has
// room for one environment of its own, so a second at once goes elsewhere;
// the provisioned environments the leader keeps spread over the hosts with
// room, one on each, and serve every node. A crash answers
// Runtime.ExitError and the next invocation gets a fresh environment; a
// lost host's environments are replaced; a host that comes back takes
// environments again; a bounded load through node 1 spreads over the
// hosts; the ledger holds every invocation once, as on-demand or
// provisioned.
func TestClusterRemoteEnvironments(t *testing.T) {
	nodes, hostM, keys := bootCluster(t, netlab.New(t), [3][]string{
		{"--host=false"},
		{"--vcpus", "2", "--memory", "256"},
		{"--vcpus", "4", "--memory", "8192"},
	}, []string{"--vcpus", "8", "--memory", "16384"})
	var clients []*lambda.Client
	for _, n := range nodes {
		clients = append(clients, newClient(n.endpoint(), keys.creds, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }))
	}
	s1 := &shoal{client: clients[0], endpoint: nodes[0].endpoint(), keys: keys, http: keys.http}
	createGoFn(t, s1, "od")
	createGoFn(t, s1, "spill")
	createGoFn(t, s1, "pc")
	if _, err := clients[0].PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("pc")}); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[0].CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("pc"),
		Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}

	// Every answered invocation, and the compute type it must be metered as.
	want := map[string]string{}
	var wantMu sync.Mutex
	type answer struct {
		out  *lambda.InvokeOutput
		env  map[string]string // what op "env" returns
		tail string
	}
	// tryInvoke invokes fn through a node; compute "" takes the compute type
	// the function reports (op "env").
	tryInvoke := func(node int, fn, qualifier, payload, compute string) (answer, error) {
		in := &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(payload), LogType: types.LogTypeTail}
		if qualifier != "" {
			in.Qualifier = aws.String(qualifier)
		}
		out, err := clients[node].Invoke(ctx(t), in)
		if err != nil {
			return answer{}, fmt.Errorf("invoke %s through node %d: %w", fn, node+1, err)
		}
		a := answer{out: out}
		if b, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); err == nil {
			a.tail = string(b)
		}
		if strings.Contains(payload, `"env"`) && out.FunctionError == nil {
			if err := json.Unmarshal(out.Payload, &a.env); err != nil {
				return answer{}, fmt.Errorf("invoke %s through node %d: %s: %w", fn, node+1, out.Payload, err)
			}
			if compute == "" {
				compute = a.env["AWS_LAMBDA_INITIALIZATION_TYPE"]
			}
		}
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		wantMu.Lock()
		want[id] = compute
		wantMu.Unlock()
		return a, nil
	}
	invoke := func(node int, fn, qualifier, payload, compute string) answer {
		t.Helper()
		a, err := tryInvoke(node, fn, qualifier, payload, compute)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	fleetOf := func(node int) classicFleet {
		t.Helper()
		var f classicFleet
		if err := getJSON(keys.http, nodes[node].endpoint(), "/shoal/v1/fleet", &f); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// On demand through node 1, which is no host: the environment runs on
	// another machine's agent, cold the first time, warm the next.
	first := invoke(0, "od", "", `{"op":"env"}`, "")
	if got := first.env["AWS_LAMBDA_INITIALIZATION_TYPE"]; got != "on-demand" {
		t.Fatalf("init type %q, want on-demand", got)
	}
	if !strings.Contains(first.tail, "Init Duration:") {
		t.Fatalf("the first invocation's REPORT has no Init Duration:\n%s", first.tail)
	}
	odHosts := fleetOf(0).envHosts("od", "on-demand", "ready")
	if len(odHosts) != 1 {
		t.Fatalf("environments of od on the hosts' agents: %v, want 1", odHosts)
	}
	t.Logf("node 1's environment of od runs on %v", odHosts)
	warm := invoke(0, "od", "", `{"op":"env"}`, "")
	if warm.env["AWS_LAMBDA_LOG_STREAM_NAME"] != first.env["AWS_LAMBDA_LOG_STREAM_NAME"] || strings.Contains(warm.tail, "Init Duration:") {
		t.Fatalf("the second invocation did not reuse the warm environment: %s then %s",
			first.env["AWS_LAMBDA_LOG_STREAM_NAME"], warm.env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	// Its log reaches the log store, read through another node.
	token := fmt.Sprintf("remote-%d", time.Now().UnixNano())
	invoke(0, "od", "", `{"op":"log","value":"`+token+`"}`, meter.OnDemand)
	poll.Until(t, time.Minute, func() error {
		resp, err := keys.http.Get(nodes[1].endpoint() + "/shoal/v1/functions/od/logs")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "hello from the function: "+token) {
			return fmt.Errorf("the function's line is not in its logs yet")
		}
		return nil
	})

	// A crash answers Runtime.ExitError; the next invocation gets a fresh
	// environment, cold.
	crash := invoke(0, "od", "", `{"op":"crash"}`, meter.OnDemand)
	if aws.ToString(crash.out.FunctionError) != "Unhandled" || !strings.Contains(string(crash.out.Payload), "Runtime.ExitError") {
		t.Fatalf("the crash answered %q %s", aws.ToString(crash.out.FunctionError), crash.out.Payload)
	}
	fresh := invoke(0, "od", "", `{"op":"env"}`, "")
	if fresh.env["AWS_LAMBDA_LOG_STREAM_NAME"] == first.env["AWS_LAMBDA_LOG_STREAM_NAME"] || !strings.Contains(fresh.tail, "Init Duration:") {
		t.Fatalf("after the crash the invocation did not get a fresh environment: %s, tail:\n%s",
			fresh.env["AWS_LAMBDA_LOG_STREAM_NAME"], fresh.tail)
	}

	// Node 2 has room for one environment: two invocations at once give it
	// one of its own and one on another machine.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			if _, err := tryInvoke(1, "spill", "", `{"op":"sleep","ms":1500}`, meter.OnDemand); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	spilled := fleetOf(1).envHosts("spill", "on-demand", "ready")
	if len(spilled) != 1 {
		t.Fatalf("node 2's environments of spill on the hosts' agents: %v, want 1", spilled)
	}
	for _, h := range spilled {
		if h == hostNameOf(nodes[1]) {
			t.Fatalf("node 2's second environment runs on node 2's own agent")
		}
	}
	invoke(2, "od", "", `{"op":"env"}`, "")

	// Provisioned Concurrency: the leader spreads the environments over
	// the hosts with room; every node's invocations run on them.
	if _, err := clients[1].PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("pc"), Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// pcReady waits until the provisioned environments are ready, and every
	// node sees them, none on host avoid.
	pcReady := func(avoid string) map[string]string {
		t.Helper()
		var hosts map[string]string
		poll.Until(t, 2*time.Minute, func() error {
			got, err := clients[2].GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
				FunctionName: aws.String("pc"), Qualifier: aws.String("live")})
			if err != nil {
				return err
			}
			if got.Status != types.ProvisionedConcurrencyStatusEnumReady {
				return fmt.Errorf("provisioned concurrency is %s (%s)", got.Status, aws.ToString(got.StatusReason))
			}
			for i := range nodes {
				var f classicFleet
				if err := getJSON(keys.http, nodes[i].endpoint(), "/shoal/v1/fleet", &f); err != nil {
					return err
				}
				hosts = f.envHosts("pc", "provisioned-concurrency", "ready")
				if len(hosts) != 2 {
					return fmt.Errorf("node %d sees provisioned environments %v, want 2", i+1, hosts)
				}
				for _, h := range hosts {
					if h == avoid {
						return fmt.Errorf("node %d sees a provisioned environment on %s", i+1, avoid)
					}
				}
			}
			return nil
		})
		return hosts
	}
	pcHosts := pcReady("")
	t.Logf("provisioned environments on %v", pcHosts)
	if spread := distinct(pcHosts); spread != 2 {
		t.Fatalf("the 2 provisioned environments are on %d hosts (%v), want one on each of two: hosts 4 and 3 have room", spread, pcHosts)
	}
	for i := range nodes {
		a := invoke(i, "pc", "live", `{"op":"env"}`, "")
		if got := a.env["AWS_LAMBDA_INITIALIZATION_TYPE"]; got != "provisioned-concurrency" {
			t.Fatalf("node %d's invocation of pc:live ran as %q, want provisioned-concurrency", i+1, got)
		}
		elsewhere := false
		for _, h := range pcHosts {
			elsewhere = elsewhere || h != hostNameOf(nodes[i])
		}
		if !elsewhere {
			t.Fatalf("every provisioned environment runs on node %d's own machine: %v", i+1, pcHosts)
		}
	}
	// A provisioned environment that crashes is replaced.
	crash = invoke(2, "pc", "live", `{"op":"crash"}`, meter.Provisioned)
	if !strings.Contains(string(crash.out.Payload), "Runtime.ExitError") {
		t.Fatalf("the crash of a provisioned environment answered %s", crash.out.Payload)
	}
	poll.Until(t, 2*time.Minute, func() error {
		var f classicFleet
		if err := getJSON(keys.http, nodes[1].endpoint(), "/shoal/v1/fleet", &f); err != nil {
			return err
		}
		now := f.envHosts("pc", "provisioned-concurrency", "ready")
		replaced := 0
		for id := range now {
			if _, old := pcHosts[id]; !old {
				replaced++
			}
		}
		if len(now) != 2 || replaced != 1 {
			return fmt.Errorf("provisioned environments %v (before the crash %v)", now, pcHosts)
		}
		return nil
	})
	pcHosts = pcReady("")
	if a := invoke(1, "pc", "live", `{"op":"env"}`, ""); a.env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" {
		t.Fatalf("after the crash node 2's invocation ran as %q", a.env["AWS_LAMBDA_INITIALIZATION_TYPE"])
	}

	// The host with the most room goes away with its environments: node 1's
	// next invocation runs elsewhere, and the leader replaces the
	// provisioned ones there.
	killed := time.Now()
	hostM.kill(t)
	poll.Until(t, time.Minute, func() error { // node 1 noticed
		for _, a := range fleetOf(0).Classic {
			if a.Host == "host4" {
				return fmt.Errorf("node 1 still lists host4's agent")
			}
		}
		return nil
	})
	after := invoke(0, "od", "", `{"op":"env"}`, "")
	if after.out.FunctionError != nil {
		t.Fatalf("node 1's invocation after host4's loss failed: %s", after.out.Payload)
	}
	t.Logf("node 1 invoked again %v after host4's loss", time.Since(killed).Round(time.Millisecond))
	for _, h := range fleetOf(0).envHosts("od", "on-demand", "ready") {
		if h == "host4" {
			t.Fatal("node 1's environment of od still runs on host4")
		}
	}
	pcReady("host4")
	for i := range nodes {
		if a := invoke(i, "pc", "live", `{"op":"env"}`, ""); a.env["AWS_LAMBDA_INITIALIZATION_TYPE"] != "provisioned-concurrency" {
			t.Fatalf("after host4's loss node %d's invocation ran as %q", i+1, a.env["AWS_LAMBDA_INITIALIZATION_TYPE"])
		}
	}

	// host4 comes back (its journal holds what its agent answered last)
	// and takes environments again.
	hostM.start(t, "is up in zone")
	poll.Until(t, time.Minute, func() error {
		for _, a := range fleetOf(0).Classic {
			if a.Host == "host4" {
				return nil
			}
		}
		return fmt.Errorf("node 1 does not list host4's agent yet")
	})

	// Bounded load through node 1, which is no host: 8 clients at once, of
	// a function whose environments take 2 GiB each. No machine is the
	// ceiling: the environments spread over the hosts with room, never
	// more of them than invocations in flight, and every invocation
	// succeeds.
	createGoFn(t, s1, "wide", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(2048) })
	const workers, rounds = 8, 6
	start := make(chan struct{})
	loadErrs := make(chan error, workers*rounds)
	for range workers {
		wg.Go(func() {
			<-start
			for range rounds {
				a, err := tryInvoke(0, "wide", "", `{"op":"sleep","ms":500}`, meter.OnDemand)
				switch {
				case err != nil:
					loadErrs <- err
				case a.out.FunctionError != nil:
					loadErrs <- fmt.Errorf("invoke wide: %s %s", aws.ToString(a.out.FunctionError), a.out.Payload)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(loadErrs)
	for err := range loadErrs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	wide := fleetOf(0).envHosts("wide", "on-demand", "ready")
	spread := map[string]int{}
	for _, h := range wide {
		spread[h]++
	}
	if len(wide) == 0 || len(wide) > workers || len(spread) < 2 {
		t.Fatalf("node 1's environments of wide after %d clients at once: %v on hosts %v; want at most %d, on two hosts or more",
			workers, len(wide), spread, workers)
	}
	t.Logf("%d invocations from %d clients at once ran on %d environments: %v", workers*rounds, workers, len(wide), spread)

	// The ledger holds every invocation once, on the compute type it ran on.
	poll.Until(t, 2*time.Minute, func() error {
		events, err := ledgerSince(keys.http, nodes[2].endpoint(), killed.Add(-30*time.Minute))
		if err != nil {
			return err
		}
		got := map[string][]string{}
		for _, ev := range events {
			if ev.Kind == meter.KindInvocation {
				got[ev.RequestID] = append(got[ev.RequestID], ev.Compute)
			}
		}
		for id, compute := range want {
			if len(got[id]) != 1 || got[id][0] != compute {
				return fmt.Errorf("invocation %s is in the ledger as %v, want once as %s", id, got[id], compute)
			}
		}
		return nil
	})
	t.Logf("%d invocations in the ledger once each, as on-demand or provisioned", len(want))
}
