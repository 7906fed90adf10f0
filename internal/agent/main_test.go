package agent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/env"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/testfn"
)

// goFnZip is the aws-lambda-go test function (test/testdata/gofn) packaged
// as a provided-runtime zip with its bootstrap.
var goFnZip []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shoal-instance-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goFnZip, err = testfn.GoZip(dir, "../../test/testdata/gofn")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeMetrics reports what the test sets; with panics set, it panics.
type fakeMetrics struct {
	cpu      atomic.Uint64
	mem      atomic.Int64
	panics   atomic.Bool
	panicked atomic.Int64
}

func (f *fakeMetrics) Sample(time.Time, int) (float64, int) {
	if f.panics.Load() {
		f.panicked.Add(1)
		panic("the host metrics broke")
	}
	return math.Float64frombits(f.cpu.Load()), int(f.mem.Load())
}

func (f *fakeMetrics) set(cpu float64, memMB int) {
	f.cpu.Store(math.Float64bits(cpu))
	f.mem.Store(int64(memMB))
}

// heartbeats keeps the latest heartbeat of every agent.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]Heartbeat
	peak map[string]int     // environment id → highest PeakInFlight seen
	cpu  map[string]float64 // environment id → highest CPUUtilization seen
}

func watchHeartbeats(t testing.TB, nc *nats.Conn) *heartbeats {
	h := &heartbeats{last: map[string]Heartbeat{}, peak: map[string]int{}, cpu: map[string]float64{}}
	sub, err := nc.Subscribe(HeartbeatWildcard, func(m *nats.Msg) {
		var hb Heartbeat
		if json.Unmarshal(m.Data, &hb) == nil {
			h.mu.Lock()
			if prev, ok := h.last[hb.ID]; !ok || hb.Seq > prev.Seq || hb.Pid != prev.Pid {
				h.last[hb.ID] = hb
			}
			for _, e := range hb.Environments {
				h.peak[e.ID] = max(h.peak[e.ID], e.PeakInFlight)
				h.cpu[e.ID] = max(h.cpu[e.ID], e.CPUUtilization)
			}
			h.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return h
}

func (h *heartbeats) cpuOf(envID string) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cpu[envID]
}

func (h *heartbeats) peakOf(envID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak[envID]
}

func (h *heartbeats) get(id string) (Heartbeat, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hb, ok := h.last[id]
	return hb, ok
}

// testSecret is the bus secret of the tests' buses.
var testSecret = bus.Secret("a test secret of thirty-two bytes")

// credsFile writes the bus credentials of the agent of instance id, as the
// control plane does for each agent it launches.
func credsFile(t testing.TB, id string) string {
	t.Helper()
	c, err := testSecret.CredentialsFor(bus.AgentIdentity(id))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bus.creds")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// testBus starts an embedded bus that authenticates its clients, with a TCP
// listener, the streams the control plane keeps, and the code of the test
// function in its object store; it returns the bus and the code's sha.
func testBus(t testing.TB) (*bus.Bus, string) {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := ledger.EnsureStream(ctx, b.JetStream(), 0, 1); err != nil {
		t.Fatal(err)
	}
	ls, err := logs.Open(ctx, b.JetStream(), logs.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ls.Close()
	obj, err := b.JetStream().CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "shoal_code"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(goFnZip)
	sha, key := base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sum[:])
	if _, err := obj.PutBytes(ctx, key, goFnZip); err != nil {
		t.Fatal(err)
	}
	return b, sha
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func sleepySpec(n int) env.Spec {
	return env.Spec{
		FunctionName: "sleepy", FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:sleepy",
		Version: "1", Runtime: "provided.al2023", Handler: "bootstrap", MemoryMB: 512,
		Timeout: 10 * time.Second, MaxConcurrency: n, AccountID: "123456789012",
	}
}

// wireKey is the invoke connection's key of the agent of instance id.
func wireKey(t testing.TB, id string) []byte {
	t.Helper()
	c, err := testSecret.CredentialsFor(bus.AgentIdentity(id))
	if err != nil {
		t.Fatal(err)
	}
	return c.WireKey()
}
