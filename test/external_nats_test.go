package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// externalNATS runs a NATS server as an operator would: in operator mode,
// where an account signed by the operator has JetStream, and users of the
// account connect with a credentials file. It returns the server, its URL
// and a user's credentials file.
func externalNATS(t *testing.T) (*server.Server, string, string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "acme"
	skp, err := nkeys.CreateAccount()
	must(err)
	spub, err := skp.PublicKey()
	must(err)
	oc.SystemAccount = spub
	if _, err := oc.Encode(okp); err != nil {
		t.Fatal(err)
	}
	sc := jwt.NewAccountClaims(spub)
	sc.Name = "SYS"
	sjwt, err := sc.Encode(okp)
	must(err)
	akp, err := nkeys.CreateAccount()
	must(err)
	apub, err := akp.PublicKey()
	must(err)
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "lambda"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	must(err)
	ukp, err := nkeys.CreateUser()
	must(err)
	upub, err := ukp.PublicKey()
	must(err)
	uc := jwt.NewUserClaims(upub)
	uc.Name = "shoal"
	ujwt, err := uc.Encode(akp)
	must(err)
	useed, err := ukp.Seed()
	must(err)
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	must(err)
	credsFile := filepath.Join(t.TempDir(), "shoal.creds")
	must(os.WriteFile(credsFile, creds, 0o600))

	resolver := &server.MemAccResolver{}
	must(resolver.Store(spub, sjwt))
	must(resolver.Store(apub, ajwt))
	ns, err := server.NewServer(&server.Options{ServerName: "acme-nats-1", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, SystemAccount: spub,
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver})
	must(err)
	if os.Getenv("SHOAL_TEST_LOG") != "" {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the external NATS did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns, ns.ClientURL(), credsFile
}

var metricsURLRe = regexp.MustCompile(`Prometheus metrics on (http://\S+/metrics)`)

// hostProcess is a running `shoal host`.
type hostProcess struct {
	cmd    *exec.Cmd
	exited chan error
	output *lockedText
}

// startHost runs `shoal host` with args until it says it is up.
func startHost(t *testing.T, args ...string) *hostProcess {
	t.Helper()
	cmd := exec.Command(shoalBin, append([]string{"host", "--log-level", "info"}, args...)...)
	out := &lockedText{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	up, exited := make(chan struct{}), make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "is up in zone") {
				once = true
				close(up)
			}
		}
	}()
	go func() { exited <- cmd.Wait(); pw.Close() }()
	select {
	case <-up:
	case err := <-exited:
		t.Fatalf("shoal host exited: %v\n%s", err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("shoal host did not come up:\n%s", out)
	}
	return &hostProcess{cmd: cmd, exited: exited, output: out}
}

// stop sends SIGTERM and waits for a clean exit.
func (h *hostProcess) stop(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.exited:
		if err != nil {
			t.Fatalf("shoal host exited with %v after SIGTERM:\n%s", err, h.output)
		}
	case <-time.After(time.Minute):
		t.Fatalf("shoal host did not stop after SIGTERM:\n%s", h.output)
	}
}

// TestExternalNATS: two shoal up nodes share a NATS that someone else runs
// (--nats, --nats-creds) instead of embedded servers, and a shoal host
// joins it with the same credentials. A function made through one node is
// served by both, a Managed Instances function's instances spread over the
// node that hosts and the host, their agents on that NATS too; and
// the functions outlive both nodes and their data directories, for they
// live in the external NATS's JetStream.
func TestExternalNATS(t *testing.T) {
	ns, natsURL, natsCreds := externalNATS(t)
	dir := t.TempDir()
	secret, credsFile := filepath.Join(dir, "cluster-secret"), filepath.Join(dir, "credentials")
	if _, err := sigv4.EnsureCredentialsFile(credsFile); err != nil {
		t.Fatal(err)
	}
	keys := readKeys(t, credsFile)
	node := func(name, dataDir string, extra ...string) *shoalProcess {
		args := append([]string{"--nats", natsURL, "--nats-creds", natsCreds, "--advertise", "127.0.0.1", "--node", name,
			"--zone", "us-east-1a", "--cluster-secret", secret, "--credentials", credsFile}, extra...)
		p := runShoalUp(t, dataDir, freePort(t), args...)
		p.keys = keys
		return p
	}
	aDir, bDir := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	a := node("a", aDir, "--vcpus", "4", "--memory", "16384")
	b := node("b", bDir, "--host=false")
	sa, sb := a.api(aDir), b.api(bDir)
	// A host of its own joins the same NATS with its credentials.
	host := startHost(t, "--join", natsURL, "--nats-creds", natsCreds, "--cluster-secret", secret, "--name", "h",
		"--zone", "us-east-1b", "--advertise", "127.0.0.1", "--data", filepath.Join(dir, "h"), "--vcpus", "4", "--memory", "16384")

	cpArn := createCapacityProvider(t, sb, "cp-ext")
	createManagedFn(t, sb, "mi", cpArn, 4)
	createGoFn(t, sb, "plain")
	v, err := sb.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("mi")})
	if err != nil {
		t.Fatal(err)
	}
	waitVersionState(t, sa, "mi", aws.ToString(v.Version), types.StateActive)
	// Its instances spread over both hosts, one in each zone.
	poll.Until(t, time.Minute, func() error {
		var fv clusterFleet
		if err := getJSON(keys.http, a.endpoint, "/shoal/v1/fleet", &fv); err != nil {
			return err
		}
		if hosts := fv.readyHosts("mi"); hosts["a"] != "us-east-1a" || hosts["h"] != "us-east-1b" {
			return fmt.Errorf("ready environments on hosts %v, want a and h", hosts)
		}
		return nil
	})
	for _, s := range []*shoal{sa, sb} {
		for _, fn := range []string{"plain", "mi:" + aws.ToString(v.Version)} {
			out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"via":"` + s.endpoint + `"}`)})
			if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), s.endpoint) {
				t.Fatalf("invoke %s through %s: %v %s", fn, s.endpoint, err, out.Payload)
			}
		}
	}

	// Every process of the cluster is a client of the external NATS: the
	// nodes and the agents of node a's instances.
	connz, err := ns.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range connz.Conns {
		names = append(names, c.Name)
	}
	joined := strings.Join(names, " ")
	if strings.Count(joined, bus.ControlPlane) < 2 || !strings.Contains(joined, "shoal-agent-") {
		t.Errorf("clients of the external NATS: %v", names)
	}
	var cv struct {
		Leader  string `json:"leader"`
		Streams []struct {
			Name     string `json:"name"`
			Replicas int    `json:"replicas"`
		} `json:"streams"`
	}
	if err := getJSON(keys.http, b.endpoint, "/shoal/v1/cluster", &cv); err != nil {
		t.Fatal(err)
	}
	if cv.Leader != "a" && cv.Leader != "b" {
		t.Errorf("leader %q", cv.Leader)
	}
	var usage bool
	for _, st := range cv.Streams {
		usage = usage || st.Name == "SHOAL_USAGE" && st.Replicas == 1
	}
	if !usage {
		t.Errorf("streams %+v: no SHOAL_USAGE at R1 (one server)", cv.Streams)
	}

	host.stop(t)
	// Node a's /metrics has a series per host, and says who leads.
	m := metricsURLRe.FindStringSubmatch(a.output.String())
	if m == nil {
		t.Fatalf("no metrics address in node a's output:\n%s", a.output)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`shoal_host_up{host="h",zone="us-east-1b"} 1`, `shoal_host_up{host="a",zone="us-east-1a"} 1`,
		`shoal_host_vcpus{host="h",zone="us-east-1b"} 4`, `shoal_cluster_leader{node="a"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("node a's metrics lack %s", want)
		}
	}

	// Both nodes go, with their data directories; a new node on the same
	// NATS finds every function.
	a.stop(t)
	b.stop(t)
	for _, d := range []string{aDir, bDir} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	cDir := filepath.Join(dir, "c")
	c := node("c", cDir, "--host=false")
	sc := c.api(cDir)
	for _, fn := range []string{"plain", "mi"} {
		if _, err := sc.client.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String(fn)}); err != nil {
			t.Errorf("after a new node on the same NATS: %s: %v", fn, err)
		}
	}
	out, err := sc.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("plain"), Payload: []byte(`{"again":1}`)})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke through the new node: %v", err)
	}
	c.stop(t)
}
