// Package bench holds shoal's benchmarks. Each compares shoal with its baselines in
// one run; bench/RESULTS.md records the figures. Run them with
//
//	go test -run '^$' -bench . -benchtime 5s ./bench/
package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/sigv4"
)

var (
	buildOnce sync.Once
	buildErr  error
	binDir    string

	// refusing holds the benchmarks whose target is known to refuse some
	// invocations (the emulator, at any concurrency above one). Their errors
	// are counted and reported; every other target must answer all of them.
	refusing sync.Map // *testing.B → true
)

// binaries builds shoal, the plain echo server and the aws-lambda-go test function once.
func binaries(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		binDir, buildErr = os.MkdirTemp("", "shoal-bench-")
		if buildErr != nil {
			return
		}
		for out, pkg := range map[string]string{"shoal": "./cmd/shoal", "echo": "./bench/echo", "bootstrap": "./test/testdata/gofn"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, out), pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if o, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
				return
			}
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binDir
}

func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs a server binary until the benchmark ends, waits until addr
// accepts and returns its process id.
func startProcess(b *testing.B, addr string, environ []string, name string, args ...string) int {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), environ...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not listen on %s:\n%s", name, addr, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shoalUp runs `shoal up` with args added and returns its endpoint, its pid and
// an SDK client that signs with the key shoal wrote to its credentials file;
// the load clients sign with it too (signerFor).
func shoalUp(b *testing.B, args ...string) (endpoint string, pid int, client *lambda.Client) {
	b.Helper()
	return shoalUpIn(b, b.TempDir(), args...)
}

// shoalUpIn is shoalUp with the data directory given.
func shoalUpIn(b *testing.B, data string, args ...string) (endpoint string, pid int, client *lambda.Client) {
	b.Helper()
	addr := freeAddr(b)
	pid = startProcess(b, addr, shoalEnv(), filepath.Join(binaries(b), "shoal"),
		append([]string{"up", "--data", data, "--listen", addr, "--metrics-listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0"}, args...)...)
	endpoint = "http://" + addr
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if profiles, err := sigv4.ReadCredentialsFile(filepath.Join(data, "credentials")); err == nil && len(profiles) > 0 {
		creds = credentials.NewStaticCredentialsProvider(profiles[0].AccessKeyID, profiles[0].SecretAccessKey, "")
		keysByHost.Store(addr, creds)
	} else if i := slices.Index(args, "--auth"); !slices.Contains(args, "--auth=none") && (i < 0 || i+1 >= len(args) || args[i+1] != "none") {
		b.Fatalf("shoal's credentials: %v", err)
	}
	return endpoint, pid, lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: creds})
}

// keysByHost holds the credentials of each shoal a benchmark started, by
// host:port, for the load clients.
var keysByHost sync.Map // string → aws.CredentialsProvider

// signerFor returns a transport for the load on u: base itself for a target
// without keys (the plain server, the emulator, shoal --auth none), else one
// that signs as the SDKs do. Every request of a load is the same, so its
// signature is made once a minute and reused: the client's own signing cost
// stays out of the figures, the server's verification stays in.
func signerFor(u string, base http.RoundTripper) http.RoundTripper {
	pu, err := url.Parse(u)
	if err != nil {
		return base
	}
	creds, ok := keysByHost.Load(pu.Host)
	if !ok {
		return base
	}
	return &reusedSignature{base: base, creds: creds.(aws.CredentialsProvider)}
}

// reusedSignature signs a request once and sends the same headers with every
// request of that method, URL and body for a minute.
type reusedSignature struct {
	base  http.RoundTripper
	creds aws.CredentialsProvider
	mu    sync.Mutex
	key   string
	at    time.Time
	hdr   http.Header
}

func (t *reusedSignature) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	key := req.Method + " " + req.URL.String() + "\n" + string(body)
	t.mu.Lock()
	if key != t.key || time.Since(t.at) > time.Minute {
		signed := req.Clone(req.Context())
		signed.Body = io.NopCloser(bytes.NewReader(body))
		signed.ContentLength = int64(len(body))
		if err := sigv4.Sign(req.Context(), signed, t.creds, "us-east-1", "", time.Now()); err != nil {
			t.mu.Unlock()
			return nil, err
		}
		t.key, t.at, t.hdr = key, time.Now(), signed.Header
	}
	hdr := t.hdr
	t.mu.Unlock()
	r := req.Clone(req.Context())
	r.Header = hdr.Clone()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return t.base.RoundTrip(r)
}

// startShoal runs `shoal up` (with args added) and deploys the aws-lambda-go
// test function as "echo".
func startShoal(b *testing.B, memoryMB int32, args ...string) (endpoint string, client *lambda.Client) {
	b.Helper()
	endpoint, _, client = shoalUp(b, args...)
	deployEcho(b, client, memoryMB)
	return endpoint, client
}

// deployEcho deploys the aws-lambda-go test function as "echo".
func deployEcho(b *testing.B, client *lambda.Client, memoryMB int32) {
	b.Helper()
	dir := binaries(b)
	zipData := zipFile(b, filepath.Join(dir, "bootstrap"))
	_, err := client.CreateFunction(context.Background(), &lambda.CreateFunctionInput{
		FunctionName: aws.String("echo"), Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Role: aws.String("arn:aws:iam::123456789012:role/bench"), Code: &types.FunctionCode{ZipFile: zipData},
		MemorySize: aws.Int32(memoryMB), Timeout: aws.Int32(30),
	})
	if err != nil {
		b.Fatal(err)
	}
}

// startEcho runs the plain net/http echo server (bench/echo) and returns its URL
// and its process, the baseline every invoke benchmark runs beside.
func startEcho(b *testing.B) (string, watched) {
	b.Helper()
	addr := freeAddr(b)
	pid := startProcess(b, addr, nil, filepath.Join(binaries(b), "echo"), "-listen", addr)
	return "http://" + addr + "/", watched{name: "server", pids: []int{pid}}
}

// zipFile zips the executable at path as "bootstrap".
func zipFile(b *testing.B, path string) []byte {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return zipSource(b, "bootstrap", string(data))
}

// zipSource zips one file, name, holding data.
func zipSource(b *testing.B, name, data string) []byte {
	b.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.WriteString(w, data); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// load sends b.N POSTs of body to url from clients goroutines, each on its own
// keep-alive connection, and reports throughput and latency percentiles, and
// the CPU time, context switches and run-queue wait each of procs, and the
// load generator itself ("client"), had per invocation during the measured run.
func load(b *testing.B, url string, clients int, body []byte, procs ...watched) {
	b.Helper()
	loadFrom(b, url, clients, body, 0, procs...)
}

// loadFrom is load with the clients' first measured requests spread evenly
// over spread instead of sent all at once. With a fixed handler time, clients
// that start together stay bunched in convoys for the whole run; spreading
// them over one handler time starts the run with the concurrency evenly in
// flight.
func loadFrom(b *testing.B, url string, clients int, body []byte, spread time.Duration, procs ...watched) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: signerFor(url, tr)}
	post := func() (time.Duration, error) {
		t0 := time.Now()
		resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Amz-Function-Error") != "" {
			return 0, fmt.Errorf("status %d %s", resp.StatusCode, resp.Header.Get("X-Amz-Function-Error"))
		}
		return time.Since(t0), nil
	}
	// Warm up: environments started, every client's connection open. Errors here
	// are not counted (the emulator refuses some at every concurrency); those of
	// the measured run are, in the "errors" metric, and fail the benchmark unless
	// its target is the emulator (refusing).
	var warm sync.WaitGroup
	for range clients {
		warm.Go(func() {
			for range max(4, 200/clients) {
				_, _ = post()
			}
		})
	}
	warm.Wait()
	lat := make([][]time.Duration, clients)
	done := make([][]time.Duration, clients) // when each answer came, from start
	var errs sync.Map
	procs = append(slices.Clip(procs), watched{name: "client", pids: []int{os.Getpid()}})
	cpu0 := make([]time.Duration, len(procs))
	wait0 := make([]time.Duration, len(procs))
	sw0 := make([]int, len(procs))
	for i, p := range procs {
		cpu0[i], wait0[i], sw0[i] = p.cpu(), p.runWait(), p.switches()
	}
	next := make(chan struct{}, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	for i := range clients {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * spread / time.Duration(clients))
			for range next {
				d, err := post()
				if err != nil {
					errs.Store(err.Error(), true)
					continue
				}
				lat[i] = append(lat[i], d)
				done[i] = append(done[i], time.Since(start))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for i, p := range procs {
		b.ReportMetric(float64((p.cpu()-cpu0[i]).Microseconds())/float64(b.N), p.name+"-cpu-µs/op")
		b.ReportMetric(float64(p.switches()-sw0[i])/float64(b.N), p.name+"-switches/op")
		b.ReportMetric(float64((p.runWait()-wait0[i]).Microseconds())/float64(b.N), p.name+"-runq-µs/op")
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	failed := b.N - len(all)
	errs.Range(func(k, _ any) bool { b.Logf("error (one of each kind): %v", k); return true })
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(steadyRate(done, elapsed), "steady-req/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(failed), "errors")
	writeTrace(b, lat, done)
	if _, ok := refusing.Load(b); !ok && failed > 0 {
		b.Errorf("%d of %d invocations failed", failed, b.N)
	}
}

// writeTrace writes, when SHOAL_BENCH_TRACE names a directory, one line per
// answer of the measured run ("client answered-at-µs latency-µs", the times from
// the run's start) to a file named after the benchmark, to look for stalls.
func writeTrace(b *testing.B, lat, done [][]time.Duration) {
	dir := os.Getenv("SHOAL_BENCH_TRACE")
	if dir == "" {
		return
	}
	var buf bytes.Buffer
	for i := range lat {
		for j := range lat[i] {
			fmt.Fprintf(&buf, "%d %d %d\n", i, done[i][j].Microseconds(), lat[i][j].Microseconds())
		}
	}
	name := strings.NewReplacer("/", "_", "=", "").Replace(b.Name())
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), buf.Bytes(), 0o644); err != nil {
		b.Error(err)
	}
}

// steadyRate is the rate of answers in the middle 80 % of a run of length
// elapsed, leaving out the start, where every client sends at once, and the
// end, where clients run out of requests one by one and the concurrency the
// run is meant to hold falls away.
func steadyRate(done [][]time.Duration, elapsed time.Duration) float64 {
	from, to := elapsed/10, elapsed-elapsed/10
	n := 0
	for _, d := range done {
		for _, t := range d {
			if t >= from && t < to {
				n++
			}
		}
	}
	return float64(n) / (to - from).Seconds()
}

// shoalEnv is extra environment for the shoal process under test (SHOAL_BENCH_ENV,
// space-separated KEY=VALUE pairs), to compare settings such as GOMAXPROCS.
func shoalEnv() []string { return strings.Fields(os.Getenv("SHOAL_BENCH_ENV")) }

// watched is a group of processes whose CPU time a load run reports.
type watched struct {
	name string
	pids []int
}

// cpu is the user and system CPU time the processes have used so far (the
// whole thread group of each, from /proc/<pid>/stat; 0 for one that is gone).
func (w watched) cpu() time.Duration {
	var total time.Duration
	for _, pid := range w.pids {
		utime, stime, err := procTimes(pid)
		if err == nil {
			total += utime + stime
		}
	}
	return total
}

// threadFiles returns the contents of /proc/<pid>/task/*/<name> for every
// thread of the processes (threads that have exited are left out).
func (w watched) threadFiles(name string) [][]byte {
	var out [][]byte
	for _, pid := range w.pids {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/%s", pid, name))
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil {
				out = append(out, data)
			}
		}
	}
	return out
}

// switches is the number of context switches, voluntary and involuntary, of
// the processes' threads so far.
func (w watched) switches() int {
	n := 0
	for _, data := range w.threadFiles("status") {
		for line := range strings.SplitSeq(string(data), "\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches" {
				x, _ := strconv.Atoi(strings.TrimSpace(v))
				n += x
			}
		}
	}
	return n
}

// runWait is the time the processes' threads have spent runnable but waiting
// for a CPU so far (the second field of schedstat). On the invoke path it is
// latency.
func (w watched) runWait() time.Duration {
	var total time.Duration
	for _, data := range w.threadFiles("schedstat") {
		if f := strings.Fields(string(data)); len(f) >= 2 {
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTick = 10 * time.Millisecond

func procTimes(pid int) (utime, stime time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which may hold spaces: state is field 3,
	// utime field 14, stime field 15.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(u) * clockTick, time.Duration(s) * clockTick, nil
}

// children returns the processes whose parent is pid.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}

// descendants returns pid's children, their children and so on.
func descendants(pid int) []int {
	var out []int
	for _, c := range children(pid) {
		out = append(out, c)
		out = append(out, descendants(c)...)
	}
	return out
}
