package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/poll"
)

func newTestServer(t *testing.T, slots int) *Server {
	t.Helper()
	s, err := New(Config{Slots: slots})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func url(s *Server, p string) string { return "http://" + s.Addr() + "/2018-06-01/runtime/" + p }

type nextResp struct {
	status int
	header http.Header
	body   string
}

func get(ctx context.Context, c *http.Client, u string) (nextResp, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		return nextResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return nextResp{resp.StatusCode, resp.Header, string(b)}, nil
}

func post(c *http.Client, u, body string, hdr map[string]string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNextHeadersAndResponse(t *testing.T) {
	s := newTestServer(t, 1)
	c := &http.Client{}
	deadline := time.UnixMilli(1_800_000_000_123)
	inv := &Invocation{ID: "req-1", Payload: []byte(`{"a":1}`), Deadline: deadline,
		InvokedARN: "arn:aws:lambda:us-east-1:123456789012:function:f:prod", TraceID: "Root=1-x",
		ClientContext: `{"custom":{}}`, CognitoIdentity: `{"cognitoIdentityId":"c"}`, TenantID: "tenant-1"}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	r, err := get(context.Background(), c, url(s, "invocation/next"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Lambda-Runtime-Aws-Request-Id":       "req-1",
		"Lambda-Runtime-Deadline-Ms":          "1800000000123",
		"Lambda-Runtime-Invoked-Function-Arn": inv.InvokedARN,
		"Lambda-Runtime-Trace-Id":             "Root=1-x",
		"Lambda-Runtime-Client-Context":       `{"custom":{}}`,
		"Lambda-Runtime-Cognito-Identity":     `{"cognitoIdentityId":"c"}`,
		"Lambda-Runtime-Aws-Tenant-Id":        "tenant-1",
		"Content-Type":                        "application/json",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.status != 200 || r.body != `{"a":1}` {
		t.Fatalf("next = %d %q", r.status, r.body)
	}
	select {
	case <-s.Ready():
	default:
		t.Error("Ready not closed after the first poll")
	}
	if st, _ := post(c, url(s, "invocation/req-1/response"), `"ok"`, nil); st != 202 {
		t.Fatalf("response status %d", st)
	}
	o := <-inv.Done()
	if string(o.Payload) != `"ok"` || o.Error {
		t.Errorf("outcome %+v", o)
	}
	if s.InUse() != 0 {
		t.Errorf("InUse = %d after the answer", s.InUse())
	}
	// The same id again is unknown now.
	if st, body := post(c, url(s, "invocation/req-1/response"), `"again"`, nil); st != 400 || !strings.Contains(body, "InvalidRequestID") {
		t.Errorf("second response: %d %s", st, body)
	}
}

func TestErrorEndpoint(t *testing.T) {
	cases := []struct {
		name, header, body string
		wantType, wantBody string
	}{
		{"header type", "Custom.Type", `{"errorMessage":"m","errorType":"Body.Type"}`, "Custom.Type", `{"errorMessage":"m","errorType":"Body.Type"}`},
		{"body type", "", `{"errorMessage":"m","errorType":"Body.Type","stackTrace":[]}`, "Body.Type", `{"errorMessage":"m","errorType":"Body.Type","stackTrace":[]}`},
		{"not json", "X", `oops`, "X", `{"errorMessage":"oops","errorType":"X"}`},
		{"empty", "", ``, "Unhandled", `{"errorMessage":"","errorType":"Unhandled"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, 1)
			c := &http.Client{}
			inv := &Invocation{ID: "e1", Deadline: time.Now().Add(time.Minute)}
			if err := s.Submit(inv); err != nil {
				t.Fatal(err)
			}
			if _, err := get(context.Background(), c, url(s, "invocation/next")); err != nil {
				t.Fatal(err)
			}
			hdr := map[string]string{}
			if tc.header != "" {
				hdr["Lambda-Runtime-Function-Error-Type"] = tc.header
			}
			if st, _ := post(c, url(s, "invocation/e1/error"), tc.body, hdr); st != 202 {
				t.Fatalf("status %d", st)
			}
			o := <-inv.Done()
			if !o.Error || o.ErrorType != tc.wantType || string(o.Payload) != tc.wantBody {
				t.Errorf("outcome %+v %s", o, o.Payload)
			}
		})
	}
}

// More pollers than slots never get more than Slots invocations at once.
func TestSlotsEnforced(t *testing.T) {
	const slots, pollers, total = 3, 10, 60
	s := newTestServer(t, slots)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pollers}}
	var held, maxHeld atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := get(ctx, c, url(s, "invocation/next"))
				if err != nil || r.status != 200 {
					return
				}
				n := held.Add(1)
				for {
					m := maxHeld.Load()
					if n <= m || maxHeld.CompareAndSwap(m, n) {
						break
					}
				}
				id := r.header.Get("Lambda-Runtime-Aws-Request-Id")
				held.Add(-1)
				if st, _ := post(c, url(s, "invocation/"+id+"/response"), `"`+id+`"`, nil); st != 202 {
					// The last answers may meet the server's Close (the
					// invocation is settled before the 202 is written).
					if ctx.Err() == nil {
						t.Errorf("response %s: %d", id, st)
					}
					return
				}
			}
		}()
	}
	// Drive the load: keep every slot busy, count refusals.
	var busy int
	invs := make(chan *Invocation, total)
	for i := 0; i < total; {
		inv := &Invocation{ID: fmt.Sprintf("r%d", i), Deadline: time.Now().Add(time.Minute)}
		err := s.Submit(inv)
		if errors.Is(err, ErrNoSlot) {
			busy++
			if s.InUse() > slots {
				t.Fatalf("InUse %d > slots", s.InUse())
			}
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		invs <- inv
		i++
	}
	for range total {
		inv := <-invs
		o := <-inv.Done()
		if string(o.Payload) != `"`+inv.ID+`"` {
			t.Errorf("%s got %s", inv.ID, o.Payload)
		}
	}
	cancel()
	s.Close()
	wg.Wait()
	if m := maxHeld.Load(); m > slots || m < 1 {
		t.Errorf("max handed out at once = %d, slots %d", m, slots)
	}
	if busy == 0 {
		t.Log("no refusal observed (load too light); the slot bound still held")
	}
}

// With every slot out, further polls wait: they get nothing until a slot frees.
func TestPollsBeyondSlotsWait(t *testing.T) {
	s := newTestServer(t, 2)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for i := range 2 {
		if err := s.Submit(&Invocation{ID: fmt.Sprint("a", i), Deadline: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Submit(&Invocation{ID: "a2"}); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("third submit: %v, want ErrNoSlot", err)
	}
	got := make(chan string, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 5 {
		go func() {
			r, err := get(ctx, c, url(s, "invocation/next"))
			if err == nil && r.status == 200 {
				got <- r.header.Get("Lambda-Runtime-Aws-Request-Id")
			}
		}()
	}
	ids := []string{<-got, <-got}
	poll.Until(t, 5*time.Second, func() error {
		if n := len(s.Outstanding()); n != 2 {
			return fmt.Errorf("%d outstanding", n)
		}
		return nil
	})
	select {
	case id := <-got:
		t.Fatalf("a third poll got %s with 2 slots", id)
	default:
	}
	// Answer one; a new submission reaches one of the waiting polls.
	if st, _ := post(c, url(s, "invocation/"+ids[0]+"/response"), `1`, nil); st != 202 {
		t.Fatal(st)
	}
	if err := s.Submit(&Invocation{ID: "a3", Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatalf("submit after a slot freed: %v", err)
	}
	if id := <-got; id != "a3" {
		t.Errorf("got %s", id)
	}
}

// A response for an invocation whose caller went away is still 202.
func TestLateResponseAfterCallerGone(t *testing.T) {
	s := newTestServer(t, 1)
	c := &http.Client{}
	inv := &Invocation{ID: "late", Deadline: time.Now().Add(time.Minute)}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	if _, err := get(context.Background(), c, url(s, "invocation/next")); err != nil {
		t.Fatal(err)
	}
	// The caller gives up: the runtime already has it, so it cannot be withdrawn.
	if s.Withdraw(inv) {
		t.Fatal("withdrew an invocation the runtime holds")
	}
	if st, body := post(c, url(s, "invocation/late/response"), `"too late"`, nil); st != 202 {
		t.Fatalf("late response: %d %s", st, body)
	}
	if s.InUse() != 0 {
		t.Errorf("slot not freed")
	}
}

// A withdrawn invocation is never handed out and its slot comes back.
func TestWithdrawBeforePoll(t *testing.T) {
	s := newTestServer(t, 1)
	c := &http.Client{}
	inv := &Invocation{ID: "gone"}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	if !s.Withdraw(inv) {
		t.Fatal("could not withdraw a pending invocation")
	}
	next := &Invocation{ID: "next", Deadline: time.Now().Add(time.Minute)}
	got := make(chan string, 1)
	go func() {
		r, _ := get(context.Background(), c, url(s, "invocation/next"))
		got <- r.header.Get("Lambda-Runtime-Aws-Request-Id")
	}()
	poll.Until(t, 5*time.Second, func() error {
		if err := s.Submit(next); err != nil {
			return err
		}
		return nil
	})
	if id := <-got; id != "next" {
		t.Errorf("handed out %q", id)
	}
}

func TestInitError(t *testing.T) {
	var gotType, gotBody string
	done := make(chan struct{})
	s, err := New(Config{OnInitError: func(typ string, body []byte) {
		gotType, gotBody = typ, string(body)
		close(done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, body := post(&http.Client{}, url(s, "init/error"), `{"errorMessage":"no","errorType":"Runtime.ImportModuleError"}`,
		map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
	if st != 202 || !strings.Contains(body, `"OK"`) {
		t.Fatalf("init/error: %d %s", st, body)
	}
	<-done
	if gotType != "Runtime.ImportModuleError" || !strings.Contains(gotBody, `"no"`) {
		t.Errorf("got %s %s", gotType, gotBody)
	}
}

func TestRoutes(t *testing.T) {
	cases := []struct {
		path string
		rt   route
		id   string
	}{
		{"/2018-06-01/runtime/invocation/next", routeNext, ""},
		{"/2018-06-01/runtime/invocation/abc-1/response", routeResponse, "abc-1"},
		{"/2018-06-01/runtime/invocation/abc-1/error", routeError, "abc-1"},
		{"/2018-06-01/runtime/init/error", routeInitError, ""},
		{"/2018-06-01/runtime/invocation//response", routeNotFound, ""},
		{"/2018-06-01/runtime/invocation/a/b/response", routeNotFound, ""},
		{"/2018-06-01/runtime/invocation/a/other", routeNotFound, ""},
		{"/2020-01-01/runtime/invocation/next", routeNotFound, ""},
		{"", routeNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			rt, id := parsePath(c.path)
			if rt != c.rt || id != c.id {
				t.Errorf("parsePath(%q) = %v %q, want %v %q", c.path, rt, id, c.rt, c.id)
			}
		})
	}
}

func TestResponseTooLarge(t *testing.T) {
	s := newTestServer(t, 1)
	c := &http.Client{}
	inv := &Invocation{ID: "big", Deadline: time.Now().Add(time.Minute)}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	if _, err := get(context.Background(), c, url(s, "invocation/next")); err != nil {
		t.Fatal(err)
	}
	st, _ := post(c, url(s, "invocation/big/response"), strings.Repeat("x", MaxResponseBytes+1), nil)
	if st != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d", st)
	}
	o := <-inv.Done()
	if o.ErrorType != "Function.ResponseSizeTooLarge" || !o.Error {
		t.Errorf("outcome %+v", o)
	}
}

// TestConnectionPanic: a request whose handling panics (here the OnTake
// hook) is answered 500 ServiceException on its connection, which closes;
// the server goes on serving the runtime's next requests.
func TestConnectionPanic(t *testing.T) {
	s, err := New(Config{Slots: 2, OnTake: func(inv *Invocation) {
		if inv.ID == "boom" {
			panic("the hook broke")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Submit(&Invocation{ID: "boom", Payload: []byte(`{}`), Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	r, err := get(t.Context(), &http.Client{}, url(s, "invocation/next"))
	if err != nil || r.status != 500 || !strings.Contains(r.body, `"errorType":"ServiceException"`) {
		t.Fatalf("next that panicked: %v %+v", err, r)
	}
	inv := &Invocation{ID: "ok", Payload: []byte(`{}`), Deadline: time.Now().Add(time.Minute)}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	if r, err := get(t.Context(), &http.Client{}, url(s, "invocation/next")); err != nil || r.status != 200 || r.header.Get("Lambda-Runtime-Aws-Request-Id") != "ok" {
		t.Fatalf("next after the panic: %v %+v", err, r)
	}
	if status, body := post(&http.Client{}, url(s, "invocation/ok/response"), `"done"`, nil); status != 202 {
		t.Fatalf("response: %d %s", status, body)
	}
	if o := <-inv.Done(); string(o.Payload) != `"done"` {
		t.Fatalf("outcome %+v", o)
	}
}
