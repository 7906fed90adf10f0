package test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
)

// usageEvents reads the ledger through GET /shoal/v1/usage; raw keeps every
// stored message, repeats included.
func usageEvents(p *shoalProcess, raw bool) ([]meter.Event, error) {
	params := url.Values{}
	if raw {
		params.Set("raw", "true")
	}
	return readUsage(p.keys.http, p.endpoint, params)
}

// completed is the set of invocations whose answer a client received.
type completed struct {
	mu  sync.Mutex
	ids map[string]string // request id → function
}

func (c *completed) add(id, fn string) {
	c.mu.Lock()
	c.ids[id] = fn
	c.mu.Unlock()
}

func (c *completed) count(fn string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range c.ids {
		if f == fn {
			n++
		}
	}
	return n
}

// TestLedgerSurvivesKills runs a load on an on-demand and a Managed Instances
// function, SIGKILLs one instance's agent and then the control plane in the
// middle of it, starts the control plane again, and finds every invocation a
// client saw complete in the ledger exactly once.
func TestLedgerSurvivesKills(t *testing.T) {
	dataDir, addr := t.TempDir(), freePort(t)
	p := runShoalUp(t, dataDir, addr)
	s := &shoal{client: newClient(p.endpoint, p.keys.creds),
		noRetry:  newClient(p.endpoint, p.keys.creds, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }),
		endpoint: p.endpoint, dataDir: dataDir, keys: p.keys, http: p.keys.http}

	createGoFn(t, s, "metered-od")
	cpArn := createCapacityProvider(t, s, "metered-cp")
	createManagedFn(t, s, "metered-mi", cpArn, 8)
	ver := publishBounded(t, s, "metered-mi", 2)

	done := &completed{ids: map[string]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	load := func(fn, qualifier string) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			in := &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"op":"sleep","ms":5}`)}
			if qualifier != "" {
				in.Qualifier = aws.String(qualifier)
			}
			out, err := s.noRetry.Invoke(c, in)
			cancel()
			if err != nil {
				time.Sleep(20 * time.Millisecond) // the control plane is down or restarting
				continue
			}
			if out.FunctionError != nil {
				t.Errorf("%s: function error %s", fn, out.Payload)
				continue
			}
			id, ok := awsmw.GetRequestIDMetadata(out.ResultMetadata)
			if !ok || id == "" {
				t.Errorf("%s: no request id in the answer", fn)
				continue
			}
			done.add(id, fn)
		}
	}
	wg.Add(4)
	go load("metered-od", "")
	go load("metered-od", "")
	go load("metered-mi", ver)
	go load("metered-mi", ver)

	waitCount := func(fn string, n int) {
		poll.Until(t, 2*time.Minute, func() error {
			if got := done.count(fn); got < n {
				return fmt.Errorf("%s: %d invocations completed, waiting for %d", fn, got, n)
			}
			return nil
		})
	}
	waitCount("metered-od", 50)
	waitCount("metered-mi", 50)

	// One instance's agent dies under load.
	f := getFleet(t, s)
	if len(f.Instances) == 0 {
		t.Fatal("no instances")
	}
	victim := f.Instances[0].ID
	if err := syscall.Kill(agentPid(t, victim), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mi := done.count("metered-mi")
	waitCount("metered-mi", mi+50)

	// Then the control plane. The instances running now (heartbeating, so
	// with an alive stamp) are recorded up to its death or past it.
	var survivors []string
	for _, in := range getFleet(t, s).Instances {
		if in.ID != victim && in.State == meter.InstanceRunning {
			survivors = append(survivors, in.ID)
		}
	}
	if len(survivors) == 0 {
		t.Fatal("no running instance besides the killed one")
	}
	od := done.count("metered-od")
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	killedAt := time.Now()
	p = runShoalUp(t, dataDir, addr)
	waitCount("metered-od", od+50)
	waitCount("metered-mi", done.count("metered-mi")+20)
	close(stop)
	wg.Wait()

	done.mu.Lock()
	want := done.ids
	done.mu.Unlock()
	t.Logf("%d invocations completed (%d on-demand, %d managed)", len(want), done.count("metered-od"), done.count("metered-mi"))
	var stored map[string]int
	poll.Until(t, time.Minute, func() error {
		events, err := usageEvents(p, true)
		if err != nil {
			return err
		}
		stored = map[string]int{}
		for _, ev := range events {
			if ev.Kind == meter.KindInvocation {
				stored[ev.RequestID]++
			}
		}
		missing := 0
		for id := range want {
			if stored[id] == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d completed invocations not in the ledger yet", missing, len(want))
		}
		return nil
	})
	for id, n := range stored {
		if n != 1 {
			t.Errorf("invocation %s stored %d times", id, n)
		}
	}
	events, err := usageEvents(p, false)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]meter.Event{}
	for _, ev := range events {
		byID[ev.RequestID] = ev
	}
	for id, fn := range want {
		ev := byID[id]
		wantCompute := meter.OnDemand
		if fn == "metered-mi" {
			wantCompute = meter.ManagedInstances
		}
		if ev.Function != fn || ev.Compute != wantCompute || ev.Outcome != meter.OutcomeSuccess || ev.DurationMs < 5 {
			t.Errorf("invocation %s recorded as %+v", id, ev)
			break
		}
		if fn == "metered-mi" && (ev.Instance == "" || ev.Zone == "" || ev.CapacityProvider != "metered-cp") {
			t.Errorf("managed invocation %s without its instance: %+v", id, ev)
			break
		}
		if fn == "metered-od" && (ev.BilledMs < int64(ev.DurationMs) || ev.MemoryMB != 256) {
			t.Errorf("on-demand invocation %s billed %d ms for %.2f ms at %d MB", id, ev.BilledMs, ev.DurationMs, ev.MemoryMB)
			break
		}
	}
	// The time of each instance alive at the control plane's death is
	// recorded without a hole: its segments follow each other from its launch
	// to its agent's last heartbeat (1 s apart) when the agent died with the
	// control plane (it is confined, and its sandbox dies with shoal), or past
	// the death when the next control plane adopted it.
	poll.Until(t, time.Minute, func() error {
		events, err := usageEvents(p, false)
		if err != nil {
			return err
		}
		for _, id := range survivors {
			var segs []meter.Event
			for _, ev := range events {
				if ev.Kind == meter.KindInstance && ev.Instance == id {
					segs = append(segs, ev)
				}
			}
			slices.SortFunc(segs, func(a, b meter.Event) int { return a.Start.Compare(b.Start) })
			if len(segs) == 0 || segs[0].State != meter.InstancePending {
				return fmt.Errorf("instance %s: the ledger has not its launch: %+v", id, segs)
			}
			for i := 1; i < len(segs); i++ {
				if !segs[i].Start.Equal(segs[i-1].End) {
					return fmt.Errorf("instance %s: unrecorded from %v to %v", id, segs[i-1].End, segs[i].Start)
				}
			}
			if end := segs[len(segs)-1].End; end.Before(killedAt.Add(-2 * time.Second)) {
				return fmt.Errorf("instance %s: recorded until %v, the control plane died at %v", id, end, killedAt)
			}
		}
		return nil
	})
	p.stop(t)
}
