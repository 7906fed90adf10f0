package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/netlab"
	"github.com/shoal-dev/shoal/internal/poll"
)

// hostilePy is a function that tries every way out of its environment it
// is told of and reports what it reached.
const hostilePy = `import json, os, socket, urllib.request, urllib.error

def tcp(target):
    host, port = target.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=0.3)
        s.close()
        return True
    except Exception:
        return False

def unix(path):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(path)
        s.close()
        return True
    except Exception:
        return False

def readable(path):
    try:
        with open(path, "rb") as f:
            f.read(16)
        return True
    except Exception:
        return False

def listening():
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(name).read().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A":
                    ports.add(int(f[1].rsplit(":", 1)[1], 16))
        except Exception:
            pass
    return sorted(ports)

def signal(pid):
    try:
        os.kill(pid, 0)
        return True
    except Exception:
        return False

def next_invocation():
    try:
        urllib.request.urlopen("http://%s/2018-06-01/runtime/invocation/next" % os.environ["AWS_LAMBDA_RUNTIME_API"], timeout=2).read()
        return True
    except Exception:
        return False

def delete(api):
    req = urllib.request.Request("http://%s/2015-03-31/functions/victim" % api, method="DELETE")
    try:
        return urllib.request.urlopen(req, timeout=1).status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return 0

def outside(target):
    host, port = target.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=2)
        data = s.recv(64)
        s.close()
        return data.decode()
    except Exception as e:
        return "unreachable: %s" % e

def handler(event, context):
    return {
        "uid": os.getuid(),
        "runtime_api": os.environ.get("AWS_LAMBDA_RUNTIME_API"),
        "listening": listening(),
        "tcp": {t: tcp(t) for t in event.get("tcp", [])},
        "unix": {u: unix(u) for u in event.get("unix", [])},
        "files": {f: readable(f) for f in event.get("files", [])},
        "signals": {str(p): signal(p) for p in event.get("pids", [])},
        "delete": {a: delete(a) for a in event.get("api", [])},
        "tmp_secret": os.path.exists("/tmp/secret"),
        "next": next_invocation(),
        "outside": outside(event["outside"]) if event.get("outside") else "",
        "tmp_bytes": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
    }
`

type hostileReport struct {
	UID        int             `json:"uid"`
	RuntimeAPI string          `json:"runtime_api"`
	Listening  []int           `json:"listening"`
	TCP        map[string]bool `json:"tcp"`
	Unix       map[string]bool `json:"unix"`
	Files      map[string]bool `json:"files"`
	Signals    map[string]bool `json:"signals"`
	Delete     map[string]int  `json:"delete"`
	TmpSecret  bool            `json:"tmp_secret"`
	Next       bool            `json:"next"`
	Outside    string          `json:"outside"`
	TmpBytes   int64           `json:"tmp_bytes"`
}

// hostAddrs lists this host's IPv4 addresses, loopback included, and the
// environments' gateway. Of the test machines' range it keeps only the
// address of lab, this test's own: the labs of other tests come and go
// while this one runs, and an address that is no longer the host's is
// routed out, where the machine's upstream may accept any connection, so
// reaching it would prove nothing. Each address comes once: the gateway is
// on the host's end of every environment's veth, of every shoal on the
// host, and the hostile function tries each address it is given.
func hostAddrs(t *testing.T, lab *netlab.Lab) []string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP.To4())
		if netlab.Range.Contains(ip) && ip.String() != lab.Gateway() {
			continue
		}
		out = append(out, ip.String())
	}
	out = append(out, "10.200.0.1") // the environments' gateway
	slices.Sort(out)
	return slices.Compact(out)
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(addr, "nats://"), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// isolationTargets gathers what a hostile function would aim at on a running
// shoal: the bus, the API, every metrics endpoint (the control plane's and
// each agent's, as the scrape targets list them) and every agent's invoke
// wire, on every address of the host, and the files of the data directory.
func isolationTargets(t *testing.T, s *shoal, lab *netlab.Lab) (tcp, unixSockets, files, api []string) {
	endpoint, dataDir := s.endpoint, s.dataDir
	t.Helper()
	natsAddr, err := os.ReadFile(filepath.Join(dataDir, "nats.addr"))
	if err != nil {
		t.Fatal(err)
	}
	ports := []string{portOf(t, strings.TrimSpace(string(natsAddr))), portOf(t, endpoint), "9001"}
	resp, err := s.http.Get(endpoint + "/shoal/v1/metrics/targets")
	if err != nil {
		t.Fatal(err)
	}
	var groups []struct {
		Targets []string `json:"targets"`
	}
	err = json.NewDecoder(resp.Body).Decode(&groups)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		for _, target := range g.Targets {
			ports = append(ports, portOf(t, target))
		}
	}
	for _, h := range hostAddrs(t, lab) {
		for _, p := range ports {
			if target := net.JoinHostPort(h, p); target != "127.0.0.1:9001" { // its own Runtime API
				tcp = append(tcp, target)
			}
		}
		api = append(api, net.JoinHostPort(h, portOf(t, endpoint)))
	}
	unixSockets, _ = filepath.Glob(filepath.Join(dataDir, "fleet", "*", "*.sock"))
	for _, pattern := range []string{"nats.addr", "shoal.lock", "credentials", "code/*/bootstrap", "nats/*"} {
		m, _ := filepath.Glob(filepath.Join(dataDir, pattern))
		files = append(files, m...)
	}
	return tcp, unixSockets, files, api
}

// TestHostileFunction: a function that tries every way out of its
// environment, while another function serves invocations that carry a
// secret, reaches nothing but the outside world: no other Runtime API, no
// bus, no invoke wire, no agent, no metrics, no unsigned API, no other
// environment's processes or files, and no invocation but its own. Every
// invocation of the other function succeeds. With --egress none it does not
// reach the outside world either.
func TestHostileFunction(t *testing.T) {
	if why := netlab.Available(); why != "" {
		t.Skip(why)
	}
	lab := netlab.New(t)
	outside := lab.Machine().Serve(7000, "outside")

	dataDir := t.TempDir()
	// Function URLs are served on every address of the host, as a public
	// front door would be, so that a way in from an environment would show.
	urlPort := portOf(t, freePort(t))
	p := runShoalUp(t, dataDir, freePort(t), "--url-listen", "0.0.0.0:"+urlPort)
	s := p.api(dataDir)

	// A Managed Instances fleet runs too, so its agents and wire are there to aim at.
	cpArn := createCapacityProvider(t, s, "cp-iso")
	createManagedFn(t, s, "mvictim", cpArn, 2)
	publishBounded(t, s, "mvictim", 1)

	const secret = "s3cr3t-0f-the-v1ct1m"
	createGoFn(t, s, "victim", func(in *lambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"SECRET": secret}}
	})
	out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("victim"),
		Payload: []byte(`{"op":"tmp","key":"secret","value":"` + secret + `"}`)})
	if string(out.Payload) != `"written"` {
		t.Fatalf("victim wrote its secret: %s", out.Payload)
	}
	createSourceFn(t, s, "hostile", types.RuntimePython311, "app.handler", map[string]string{"app.py": hostilePy})
	if _, err := s.client.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("hostile"), Timeout: aws.Int32(120), MemorySize: aws.Int32(256),
		EphemeralStorage: &types.EphemeralStorage{Size: aws.Int32(1024)}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, func() error {
		got, err := s.client.GetFunctionConfiguration(ctx(t), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("hostile")})
		if err != nil {
			return err
		}
		if got.LastUpdateStatus != types.LastUpdateStatusSuccessful {
			return errUnexpected("last update status", got.LastUpdateStatus)
		}
		return nil
	})

	// The victim serves invocations carrying the secret the whole time.
	stop := make(chan struct{})
	var served, failed atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopVictim := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	t.Cleanup(stopVictim) // when the test fails before it stops the victim itself
	for w := range 1 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				payload := fmt.Sprintf(`{"secret":%q,"n":%d}`, secret, w*1_000_000+i)
				out, err := s.noRetry.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("victim"), Payload: []byte(payload)})
				if err != nil {
					failed.Add(1)
					failures.Store(payload, err.Error())
					continue
				}
				if out.FunctionError != nil || string(out.Payload) != payload {
					failed.Add(1)
					failures.Store(payload, string(out.Payload))
					continue
				}
				served.Add(1)
			}
		})
	}
	poll.Until(t, 30*time.Second, func() error {
		if served.Load() < 10 {
			return fmt.Errorf("%d victim invocations served", served.Load())
		}
		return nil
	})
	pids := processesOf("victim")
	if len(pids) == 0 {
		t.Fatal("no process of the victim found")
	}
	victimUID := uidOf(t, pids[0])

	tcp, unixSockets, files, api := isolationTargets(t, s, lab)
	if len(unixSockets) == 0 {
		t.Fatal("no agent wire socket found to aim at")
	}
	for _, h := range hostAddrs(t, lab) {
		target := net.JoinHostPort(h, urlPort)
		tcp = append(tcp, target)
		if h == "10.200.0.1" { // the environments' gateway: the host answers there, environments must not reach it
			if c, err := net.DialTimeout("tcp", target, 2*time.Second); err != nil {
				t.Fatalf("the function URL listener is not listening on %s: %v", target, err)
			} else {
				c.Close()
			}
		}
	}
	event, _ := json.Marshal(map[string]any{"tcp": tcp, "unix": unixSockets, "files": files, "pids": pids,
		"api": api, "outside": outside})
	out = invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("hostile"), Payload: event})
	stopVictim()
	if out.FunctionError != nil {
		t.Fatalf("the hostile function failed: %s", out.Payload)
	}
	var r hostileReport
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("report %s: %v", out.Payload, err)
	}
	t.Logf("the hostile function (uid %d) aimed at %d TCP addresses, %d sockets, %d files, %d processes; %d victim invocations served meanwhile",
		r.UID, len(tcp), len(unixSockets), len(files), len(pids), served.Load())

	if r.RuntimeAPI != "127.0.0.1:9001" {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q, want 127.0.0.1:9001", r.RuntimeAPI)
	}
	if len(r.Listening) != 1 || r.Listening[0] != 9001 {
		t.Errorf("the function sees listening ports %v, want only its own Runtime API (9001)", r.Listening)
	}
	for target, reached := range r.TCP {
		if reached {
			t.Errorf("the hostile function reached %s", target)
		}
	}
	for path, reached := range r.Unix {
		if reached {
			t.Errorf("the hostile function connected to %s", path)
		}
	}
	for path, read := range r.Files {
		if read {
			t.Errorf("the hostile function read %s", path)
		}
	}
	for pid, signalled := range r.Signals {
		if signalled {
			t.Errorf("the hostile function can signal the victim's process %s", pid)
		}
	}
	for a, code := range r.Delete {
		if code != 0 && code < 400 {
			t.Errorf("an unsigned DELETE from the function to %s answered %d", a, code)
		}
	}
	if r.TmpSecret {
		t.Error("the hostile function sees the victim's /tmp")
	}
	if r.Next {
		t.Error("the hostile function received an invocation from its Runtime API that was not its own")
	}
	if r.UID == victimUID || r.UID == 0 {
		t.Errorf("the hostile function runs as uid %d, the victim as %d", r.UID, victimUID)
	}
	if r.Outside != "outside" {
		t.Errorf("the function did not reach the test host %s: %s", outside, r.Outside)
	}
	if gib := float64(r.TmpBytes) / (1 << 30); gib < 0.9 || gib > 1.0 {
		t.Errorf("/tmp holds %.2f GiB, want its EphemeralStorage of 1024 MB", gib)
	}
	if n := failed.Load(); n > 0 {
		failures.Range(func(k, v any) bool { t.Logf("victim invocation %s: %s", k, v); return true })
		t.Errorf("%d of %d victim invocations failed", n, n+served.Load())
	}
	if _, err := s.client.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("victim")}); err != nil {
		t.Errorf("the victim after the attack: %v", err)
	}
	p.stop(t)

	// With --egress none the outside world is out of reach too.
	dataDir2 := t.TempDir()
	p2 := runShoalUp(t, dataDir2, freePort(t), "--egress", "none")
	s2 := p2.api(dataDir2)
	createSourceFn(t, s2, "hostile", types.RuntimePython311, "app.handler", map[string]string{"app.py": hostilePy})
	event, _ = json.Marshal(map[string]any{"outside": outside})
	out = invoke(t, s2, &lambda.InvokeInput{FunctionName: aws.String("hostile"), Payload: event})
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("report %s: %v", out.Payload, err)
	}
	if !strings.HasPrefix(r.Outside, "unreachable") {
		t.Errorf("with --egress none the function reached %s: %q", outside, r.Outside)
	}
	p2.stop(t)
}

// uidOf reads the real uid of a process.
func uidOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return 0
}
