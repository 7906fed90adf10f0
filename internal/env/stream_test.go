package env

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recStream is a caller's stream that records what arrives.
type recStream struct {
	mu     sync.Mutex
	ct     string
	starts int
	body   strings.Builder
	got    chan string
}

func newRecStream() *recStream { return &recStream{got: make(chan string, 64)} }

func (s *recStream) Start(ct string) {
	s.mu.Lock()
	s.ct, s.starts = ct, s.starts+1
	s.mu.Unlock()
}

func (s *recStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.body.Write(p)
	s.mu.Unlock()
	s.got <- string(p)
	return len(p), nil
}

func (s *recStream) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body.String()
}

// gate is an HTTP endpoint that answers once it is opened.
type gate struct {
	srv  *httptest.Server
	open chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.open:
			_, _ = w.Write([]byte("open"))
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

const nodeStreamCode = `
exports.gated = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  responseStream.write('first;');
  const r = await fetch(event.gate);
  responseStream.write('then ' + await r.text() + ';' + context.awsRequestId);
  responseStream.end();
});
exports.http = awslambda.streamifyResponse(async (event, responseStream) => {
  const s = awslambda.HttpResponseStream.from(responseStream, { statusCode: 201, headers: { 'x-a': 'b' }, cookies: ['c=1'] });
  s.write('body');
  s.end();
});
exports.fails = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial;');
  await new Promise((r) => setTimeout(r, 1));
  const e = new Error('the stream broke'); e.name = 'StreamError'; throw e;
});
exports.plain = async () => ({ buffered: true });
`

// A streamified Node handler reaches the caller as it writes: its first write
// arrives while the function is still waiting for the test.
func TestNodeStreamifyResponse(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"index.js": nodeStreamCode})
	env := h.start(nodeSpec("stream-gated", "index.gated", dir))
	g := newGate(t)

	s := newRecStream()
	id := newReqID()
	done := make(chan Result, 1)
	go func() {
		r, err := env.Invoke(context.Background(), Invocation{RequestID: id, Payload: []byte(`{"gate":"` + g.srv.URL + `"}`), Stream: s})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	select {
	case first := <-s.got:
		if first != "first;" {
			t.Fatalf("first piece %q", first)
		}
	case <-done:
		t.Fatal("the invocation ended before its first write reached the caller")
	case <-time.After(time.Minute):
		t.Fatal("nothing reached the caller")
	}
	close(g.open) // only now can the function go on
	r := <-done
	if !r.Streamed || r.FunctionError != "" || r.ContentType != "text/plain" {
		t.Errorf("result %+v", r)
	}
	if got := s.text(); got != "first;then open;"+id || s.starts != 1 {
		t.Errorf("caller got %q (%d starts)", got, s.starts)
	}

	// A caller that does not stream gets the whole response.
	r = invoke(t, env, `{"gate":"`+g.srv.URL+`"}`, false)
	if r.Streamed || !strings.HasPrefix(string(r.Payload), "first;then open;") {
		t.Errorf("buffered result %+v %q", r, r.Payload)
	}
}

func TestNodeStreamHTTPAndErrors(t *testing.T) {
	needTool(t, "node")
	h := newHarness(t)
	dir := writeCode(t, map[string]string{"index.js": nodeStreamCode})

	s := newRecStream()
	env := h.start(nodeSpec("stream-http", "index.http", dir))
	r, err := env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(`{}`), Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"statusCode":201,"headers":{"x-a":"b"},"cookies":["c=1"]}` + strings.Repeat("\x00", 8) + "body"
	if s.ct != "application/vnd.awslambda.http-integration-response" || s.text() != want || !r.Streamed {
		t.Errorf("caller got %q as %q, result %+v", s.text(), s.ct, r)
	}

	s = newRecStream()
	env = h.start(nodeSpec("stream-fails", "index.fails", dir))
	r, err = env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(`{}`), Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	e := decodeErr(t, r.Payload)
	if r.FunctionError != "Unhandled" || r.ErrorType != "StreamError" || e.ErrorMessage != "the stream broke" || s.text() != "partial;" {
		t.Errorf("failed stream: result %+v %q, caller got %q", r, r.Payload, s.text())
	}

	// A handler that is not streamified answers at once, as one piece.
	s = newRecStream()
	env = h.start(nodeSpec("stream-plain", "index.plain", dir))
	r, err = env.Invoke(context.Background(), Invocation{RequestID: newReqID(), Payload: []byte(`{}`), Stream: s})
	if err != nil {
		t.Fatal(err)
	}
	if s.text() != `{"buffered":true}` || s.ct != "application/json" {
		t.Errorf("plain handler: caller got %q as %q (%+v)", s.text(), s.ct, r)
	}
}
