package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/shopspring/decimal"

	"github.com/shoal-dev/shoal/internal/billing"
	"github.com/shoal-dev/shoal/internal/ledger"
	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/poll"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// ledgerSince reads the usage events that ended at or after since through GET /shoal/v1/usage.
func ledgerSince(hc *http.Client, endpoint string, since time.Time) ([]meter.Event, error) {
	return readUsage(hc, endpoint, url.Values{"since": {since.UTC().Format(time.RFC3339Nano)}})
}

// readUsage reads GET /shoal/v1/usage with the query params, signed by hc.
func readUsage(hc *http.Client, endpoint string, params url.Values) ([]meter.Event, error) {
	resp, err := hc.Get(endpoint + "/shoal/v1/usage?" + params.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("usage: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	events, gaps, err := ledger.DecodeUsage(resp.Body)
	if err == nil && len(gaps) > 0 {
		err = fmt.Errorf("the ledger reports gaps: %+v", gaps)
	}
	return events, err
}

var billedRE = regexp.MustCompile(`Billed Duration: (\d+) ms`)

// billedOf reads the billed milliseconds of an invocation from the REPORT
// line of its log tail.
func billedOf(out *lambda.InvokeOutput) (float64, error) {
	logs, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		return 0, err
	}
	m := billedRE.FindSubmatch(logs)
	if m == nil {
		return 0, fmt.Errorf("no Billed Duration in the log tail:\n%s", logs)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// runningInstances lists the running instances of a capacity provider.
func runningInstances(t *testing.T, s *shoal, cp string) []string {
	t.Helper()
	var ids []string
	for _, in := range getFleet(t, s).Instances {
		if (in.CapacityProvider == cp || strings.HasSuffix(in.CapacityProvider, ":"+cp)) && in.State == "running" {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// TestBilling runs a known load on an on-demand function, a function with
// Provisioned Concurrency and a Managed Instances function, works out by hand
// what that costs from what the test itself saw — the invocations it made,
// the billed durations of their REPORT lines, the memory sizes, the time the
// provisioned environment and the instances ran — and checks that the real
// `shoal cost report -o json` says the same, to the cent and beyond.
func TestBilling(t *testing.T) {
	s := managedShoal(t)
	const odMem, pcMem = 256, 384

	createGoFn(t, s, "bill-od", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(odMem) })

	createGoFn(t, s, "bill-pc", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(pcMem) })
	pv, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("bill-pc")})
	if err != nil {
		t.Fatal(err)
	}
	pcVer := aws.ToString(pv.Version)
	if _, err := s.client.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
		FunctionName: aws.String("bill-pc"), Qualifier: aws.String(pcVer), ProvisionedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, func() error {
		got, err := s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("bill-pc"), Qualifier: aws.String(pcVer)})
		if err != nil {
			return err
		}
		if got.Status != types.ProvisionedConcurrencyStatusEnumReady {
			return errUnexpected("provisioned concurrency status", got.Status)
		}
		return nil
	})

	cpArn := createCapacityProvider(t, s, "bill-cp")
	createManagedFn(t, s, "bill-mi", cpArn, 4)
	miVer := publishBounded(t, s, "bill-mi", 1)

	// The period starts once the ledger has recorded the provisioned
	// environment and every instance running: from then on they are
	// allocated, and billed, without a break.
	instances := runningInstances(t, s, "bill-cp")
	if len(instances) == 0 {
		t.Fatal("the capacity provider has no running instance")
	}
	poll.Until(t, time.Minute, func() error {
		evs, err := ledgerSince(s.http, s.endpoint, time.Now().Add(-time.Hour))
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, ev := range evs {
			switch {
			case ev.Kind == meter.KindProvisioned && ev.Function == "bill-pc":
				seen["pc"] = true
			case ev.Kind == meter.KindInstance && ev.State == meter.InstanceRunning:
				seen[ev.Instance] = true
			}
		}
		for _, id := range append([]string{"pc"}, instances...) {
			if !seen[id] {
				return fmt.Errorf("the ledger has no segment of %s yet", id)
			}
		}
		return nil
	})
	// Wall-clock readings (Round(0) drops the monotonic one), as the ledger
	// and the report have them: the length of the period is their difference.
	since := time.Now().Round(0)

	// The load, and what the test sees of it.
	var odBilled, pcBilled, spillBilled float64
	var odN, pcN, spillN, miN int
	for range 12 {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("bill-od"),
			Payload: []byte(`{"op":"sleep","ms":15}`), LogType: types.LogTypeTail})
		billed, err := billedOf(out)
		if err != nil {
			t.Fatal(err)
		}
		odBilled += billed
		odN++
	}
	var mu sync.Mutex
	// pcCall may run on another goroutine: it reports with Errorf only.
	pcCall := func(ms int) {
		out, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("bill-pc"), Qualifier: aws.String(pcVer),
			Payload: []byte(fmt.Sprintf(`{"op":"env","ms":%d}`, ms)), LogType: types.LogTypeTail})
		if err != nil {
			t.Errorf("invoke bill-pc: %v", err)
			return
		}
		billed, err := billedOf(out)
		if err != nil {
			t.Error(err)
			return
		}
		var env map[string]any
		if err := json.Unmarshal(out.Payload, &env); err != nil {
			t.Errorf("bill-pc payload %s: %v", out.Payload, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch it := env["AWS_LAMBDA_INITIALIZATION_TYPE"]; it {
		case "provisioned-concurrency":
			pcBilled += billed
			pcN++
		case "on-demand":
			spillBilled += billed
			spillN++
		default:
			t.Errorf("bill-pc ran on a %v environment", it)
		}
	}
	for range 8 {
		pcCall(10)
	}
	// Two at once on one provisioned environment: one spills over.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { pcCall(300) })
	}
	wg.Wait()
	for range 12 {
		invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("bill-mi"), Qualifier: aws.String(miVer),
			Payload: []byte(`{"op":"sleep","ms":10}`)})
		miN++
	}
	until := time.Now().Round(0)
	if got := runningInstances(t, s, "bill-cp"); strings.Join(got, ",") != strings.Join(instances, ",") {
		t.Fatalf("the fleet changed during the load: %v, then %v", instances, got)
	}
	if spillN == 0 {
		t.Log("no invocation spilled over")
	}

	// Wait for the ledger to hold every invocation and segments past the period's end.
	poll.Until(t, time.Minute, func() error {
		evs, err := ledgerSince(s.http, s.endpoint, since)
		if err != nil {
			return err
		}
		n := map[string]int{}
		past := map[string]bool{}
		for _, ev := range evs {
			switch ev.Kind {
			case meter.KindInvocation:
				if !ev.End.Before(since) && ev.End.Before(until) {
					n[ev.Function]++
				}
			case meter.KindProvisioned:
				past["pc"] = past["pc"] || !ev.End.Before(until)
			case meter.KindInstance:
				past[ev.Instance] = past[ev.Instance] || !ev.End.Before(until)
				if !ev.End.Before(since) && ev.Start.Before(until) && ev.State != meter.InstanceRunning {
					return fmt.Errorf("instance %s was %s during the period", ev.Instance, ev.State)
				}
			}
		}
		if n["bill-od"] != odN || n["bill-pc"] != pcN+spillN || n["bill-mi"] != miN {
			return fmt.Errorf("ledger has %v invocations, want %d, %d and %d", n, odN, pcN+spillN, miN)
		}
		for _, id := range append([]string{"pc"}, instances...) {
			if !past[id] {
				return fmt.Errorf("the ledger has no segment of %s past the period yet", id)
			}
		}
		return nil
	})

	t.Logf("%.3f s: on-demand %d invocations, %g ms billed; provisioned %d + %d spilled, %g + %g ms; %d on %d instances",
		until.Sub(since).Seconds(), odN, odBilled, pcN, spillN, pcBilled, spillBilled, miN, len(instances))

	// A short load costs fractions of a cent at AWS prices, so the bill is
	// checked twice: at the built-in prices (exactly), and at a catalogue of
	// the same prices 100,000 times higher, where each bill is dollars and
	// the cents say something.
	scaled := scaledCatalog(pricing.Default(), decimal.NewFromInt(100_000))
	pricesFile := filepath.Join(t.TempDir(), "prices.json")
	b, err := json.Marshal(scaled)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pricesFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cat   *pricing.Catalog
		flags []string
	}{
		{"built-in prices", pricing.Default(), nil},
		{"prices x100000", scaled, []string{"--prices", pricesFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The bill by hand, in plain float64, from the catalogue's prices.
			cat := tc.cat
			rates, err := cat.Rates(pricing.X86_64)
			if err != nil {
				t.Fatal(err)
			}
			f := func(d decimal.Decimal) float64 { return d.InexactFloat64() }
			perRequest := f(cat.Lambda.RequestPerMillion) / 1e6
			odPrice := f(rates.FirstTierPrice())
			pcAlloc, pcExec := f(rates.ProvisionedPerGBSecond), f(rates.ProvisionedDurationPerGBSecond)
			it, err := cat.InstanceType("m7i.large")
			if err != nil {
				t.Fatal(err)
			}
			hourly := f(it.OnDemandHourly) * (1 + f(cat.ManagedInstances.ManagementFee))
			miPerRequest := f(cat.ManagedInstances.RequestPerMillion) / 1e6
			secs := until.Sub(since).Seconds()

			wantOD := float64(odN)*perRequest + odBilled/1000*odMem/1024*odPrice
			wantPC := 1*pcMem/1024.0*secs*pcAlloc + pcBilled/1000*pcMem/1024*pcExec + spillBilled/1000*pcMem/1024*odPrice +
				float64(pcN+spillN)*perRequest
			wantCP := float64(len(instances))*secs/3600*hourly + float64(miN)*miPerRequest

			rep := costReport(t, s, since, until, tc.flags...)
			same := func(what string, got billing.Amount, want float64) {
				t.Helper()
				exact, err := strconv.ParseFloat(got.Exact, 64)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if cents := fmt.Sprintf("%.2f", math.Round(want*100)/100); got.USD != cents || math.Abs(exact-want) > 1e-9*max(1, want) {
					t.Errorf("%s: report says $%s (%s), by hand $%s (%.12f)", what, got.USD, got.Exact, cents, want)
				}
			}
			od, pc := reportFunction(t, rep, "bill-od"), reportFunction(t, rep, "bill-pc")
			same("on-demand function", od.Total, wantOD)
			same("provisioned function", pc.Total, wantPC)
			if len(rep.CapacityProviders) != 1 {
				t.Fatalf("%d capacity providers in the report", len(rep.CapacityProviders))
			}
			same("capacity provider", rep.CapacityProviders[0].Bill.Total, wantCP)
			same("total", rep.Total, wantOD+wantPC+wantCP)
			t.Logf("on-demand $%s, provisioned $%s, capacity provider $%s, total $%s",
				od.Total.USD, pc.Total.USD, rep.CapacityProviders[0].Bill.Total.USD, rep.Total.USD)
			for _, jf := range []billing.JSONFunction{od, pc} {
				for _, ch := range jf.Checks {
					if !ch.Agree {
						t.Errorf("%s on %s: predicted %s, metered %s", jf.Function, ch.Compute, ch.Predicted.Exact, ch.Metered.Exact)
					}
				}
				if jf.WhatIf == nil || jf.WhatIf.Recommendation == "" {
					t.Errorf("%s: no what-if (%s)", jf.Function, jf.WhatIfNote)
				}
			}
			if mi := reportFunction(t, rep, "bill-mi"); mi.Invocations != int64(miN) || len(mi.Checks) != 1 || mi.Checks[0].Replay == nil {
				t.Errorf("bill-mi: %d invocations, checks %+v", mi.Invocations, mi.Checks)
			}
		})
	}
}

// costReport runs the shoal binary's `cost report -o json` for [since, until).
func costReport(t *testing.T, s *shoal, since, until time.Time, flags ...string) billing.JSONReport {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"cost", "report", "--endpoint-url", s.endpoint, "-o", "json",
		"--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano)}, flags...)
	cmd := exec.CommandContext(c, shoalBin, args...)
	cmd.Env = append(os.Environ(), "AWS_SHARED_CREDENTIALS_FILE="+s.keys.file, "AWS_ACCESS_KEY_ID=", "AWS_PROFILE=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shoal %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep billing.JSONReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return rep
}

func reportFunction(t *testing.T, rep billing.JSONReport, name string) billing.JSONFunction {
	t.Helper()
	for _, f := range rep.Functions {
		if f.Function == name {
			return f
		}
	}
	t.Fatalf("no function %s in the report", name)
	return billing.JSONFunction{}
}

// scaledCatalog is cat with every price multiplied by k.
func scaledCatalog(cat *pricing.Catalog, k decimal.Decimal) *pricing.Catalog {
	c := *cat
	c.Version += "-scaled"
	c.Lambda.RequestPerMillion = c.Lambda.RequestPerMillion.Mul(k)
	archs := map[pricing.Arch]pricing.ArchRates{}
	for a, r := range cat.Lambda.Architectures {
		tiers := make([]pricing.Tier, len(r.DurationTiers))
		for i, tier := range r.DurationTiers {
			tiers[i] = pricing.Tier{UpToGBSeconds: tier.UpToGBSeconds, PerGBSecond: tier.PerGBSecond.Mul(k)}
		}
		r.DurationTiers = tiers
		r.ProvisionedPerGBSecond = r.ProvisionedPerGBSecond.Mul(k)
		r.ProvisionedDurationPerGBSecond = r.ProvisionedDurationPerGBSecond.Mul(k)
		archs[a] = r
	}
	c.Lambda.Architectures = archs
	c.ManagedInstances.RequestPerMillion = c.ManagedInstances.RequestPerMillion.Mul(k)
	c.ManagedInstances.InstanceTypes = make([]pricing.InstanceType, len(cat.ManagedInstances.InstanceTypes))
	for i, it := range cat.ManagedInstances.InstanceTypes {
		it.OnDemandHourly = it.OnDemandHourly.Mul(k)
		c.ManagedInstances.InstanceTypes[i] = it
	}
	return &c
}
